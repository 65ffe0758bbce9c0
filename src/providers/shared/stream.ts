import type { ChatEvent } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * Turns a provider's async generator into the event stream of the Provider
 * contract. The generator gets a signal that aborts when the consumer cancels
 * (client gone) or the caller's signal aborts, so the upstream call ends too.
 */
export function eventStream(parent: AbortSignal, run: (signal: AbortSignal) => AsyncGenerator<ChatEvent, void, undefined>): ReadableStream<ChatEvent> {
  const ctrl = new AbortController()
  const onAbort = () => ctrl.abort(parent.reason)
  if (parent.aborted) ctrl.abort(parent.reason)
  else parent.addEventListener('abort', onAbort, { once: true })
  let gen: AsyncGenerator<ChatEvent, void, undefined> | undefined
  const cleanup = () => parent.removeEventListener('abort', onAbort)
  return new ReadableStream<ChatEvent>(
    {
      async pull(controller) {
        gen ??= run(ctrl.signal)
        try {
          const { done, value } = await gen.next()
          if (done) {
            cleanup()
            controller.close()
          } else controller.enqueue(value)
        } catch (err) {
          cleanup()
          controller.error(ctrl.signal.aborted && !(err instanceof GatewayError) ? new GatewayError('cancelled', 'The request was cancelled.', { cause: err }) : GatewayError.from(err))
        }
      },
      async cancel(reason) {
        cleanup()
        ctrl.abort(reason)
        await gen?.return(undefined).catch(() => {})
      },
    },
    { highWaterMark: 0 },
  )
}
