/**
 * POST /v1/chat: one model call streamed back as NDJSON.
 *
 * The first response part is awaited before the HTTP status is committed, so a
 * refusal that VS Code only reports when the stream is first read (consent,
 * quota) still becomes a 403/429 the gateway can route on. After that, failures
 * travel as a terminal `{type:"error"}` line.
 */
import { linkCancellation } from './cancellation.js'
import { toChatMessages, toRequestOptions, toWireEvent } from './convert.js'
import { toBridgeError, toErrorEvent } from './errors.js'
import type { ChatBody, WireEvent } from './protocol.js'
import type { ChatModel, LmApi } from './vscode-api.js'

const encoder = new TextEncoder()

function ndjsonLine(event: WireEvent): Uint8Array {
  return encoder.encode(`${JSON.stringify(event)}\n`)
}

export const NDJSON_HEADERS: Record<string, string> = {
  'content-type': 'application/x-ndjson',
  'cache-control': 'no-store',
  // Tunnels and reverse proxies (nginx, cloudflared) must not buffer the stream.
  'x-accel-buffering': 'no',
}

/** `release` is called exactly once, when the model call is over for whatever reason. */
export async function streamChat(
  api: LmApi,
  model: ChatModel,
  body: ChatBody,
  signal: AbortSignal,
  release: () => void,
): Promise<Response> {
  let cancellation: ReturnType<typeof linkCancellation> | undefined
  const finish = (): void => {
    cancellation?.dispose()
    release()
  }

  let iterator: AsyncIterator<unknown>
  let pending: IteratorResult<unknown> | undefined
  try {
    const messages = toChatMessages(api, body.messages)
    const options = toRequestOptions(api, body)
    cancellation = linkCancellation(api, signal)
    const response = await model.sendRequest(messages, options, cancellation.token)
    iterator = response.stream[Symbol.asyncIterator]()
    pending = await iterator.next()
  } catch (err) {
    finish()
    throw toBridgeError(err)
  }
  const token = cancellation.token

  let closed = false
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const close = (last?: WireEvent): void => {
        if (closed) return
        closed = true
        // After cancellation nobody is listening: no terminal event is owed.
        if (last && !token.isCancellationRequested) controller.enqueue(ndjsonLine(last))
        controller.close()
        finish()
      }
      try {
        for (;;) {
          const step = pending ?? (await iterator.next())
          pending = undefined
          if (closed) return
          if (step.done) return close({ type: 'end' })
          const event = toWireEvent(api, step.value)
          if (event) {
            controller.enqueue(ndjsonLine(event))
            return
          }
        }
      } catch (err) {
        close(toErrorEvent(err))
      }
    },
    cancel() {
      closed = true
      cancellation?.cancel()
      finish()
      // Not awaited: a generator suspended inside next() only honours return() after that next settles.
      void Promise.resolve(iterator.return?.()).catch(() => {})
    },
  })
  return new Response(stream, { status: 200, headers: NDJSON_HEADERS })
}
