import type { ChatEvent } from '../core/types.js'
import { GatewayError } from '../errors.js'

export interface TapHooks {
  /** Runs before the inner stream is opened; throwing fails the stream before any event. */
  before?(): Promise<void>
  event?(event: ChatEvent): void
  /** Runs exactly once: at the end, on an error (with it), or when the consumer cancels (with nothing). */
  end?(err?: unknown): void
}

/**
 * Wraps a stream that is opened after async admission work (a rate-limit
 * check, a queue slot) and reports its end, whichever way it ends.
 */
export function tapStream(open: () => ReadableStream<ChatEvent>, hooks: TapHooks): ReadableStream<ChatEvent> {
  let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
  let ended = false
  const end = (err?: unknown) => {
    if (ended) return
    ended = true
    hooks.end?.(err)
  }
  let opening: Promise<void> | undefined
  return new ReadableStream<ChatEvent>(
    {
      // Opened in the first pull, not in start(): workerd may pull before an async start() settles.
      async pull(controller) {
        opening ??= (async () => {
          try {
            await hooks.before?.()
            reader = open().getReader()
          } catch (err) {
            end(err)
            throw GatewayError.from(err)
          }
        })()
        await opening
        try {
          const { done, value } = await reader!.read()
          if (done) {
            end()
            controller.close()
            return
          }
          hooks.event?.(value)
          controller.enqueue(value)
        } catch (err) {
          end(err)
          throw err
        }
      },
      async cancel(reason) {
        end()
        await reader?.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
}
