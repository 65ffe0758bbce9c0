/**
 * The one SSE writer. Dialects hand it frames; it owns the framing, the
 * bytes, and the link between the client going away and the source being
 * cancelled (which aborts the upstream call).
 */
export interface SseFrame {
  event?: string
  /** Already-serialised data (JSON text, or `[DONE]`). */
  data: string
  id?: string
}

const encoder = new TextEncoder()

export function formatFrame(frame: SseFrame, id: string | undefined = frame.id): string {
  // Data never contains a bare newline: it is compact JSON or a sentinel.
  if (frame.event === undefined) return id === undefined ? `data: ${frame.data}\n\n` : `id: ${id}\ndata: ${frame.data}\n\n`
  return id === undefined ? `event: ${frame.event}\ndata: ${frame.data}\n\n` : `id: ${id}\nevent: ${frame.event}\ndata: ${frame.data}\n\n`
}

/** The reconnection delay hint a stream starts with (no event is dispatched for it). */
export function retryLine(ms: number): string {
  return `retry: ${ms}\n\n`
}

/** A comment: keeps proxies and tunnels from closing an idle stream; every SSE parser skips it. */
export const HEARTBEAT = ': keep-alive\n\n'

export const SSE_HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text)
}

/**
 * A byte stream of SSE frames pulled from `next`. `next` returns the frames
 * of one step (possibly none) or null at the end; `cancel` runs when the
 * client disconnects.
 */
export function sseStream(
  next: () => Promise<SseFrame[] | null>,
  cancel: (reason: unknown) => void | Promise<void>,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const frames = await next()
          if (frames === null) {
            controller.close()
            return
          }
          if (frames.length === 0) continue
          let text = ''
          for (const f of frames) text += formatFrame(f)
          controller.enqueue(encoder.encode(text))
          return
        }
      },
      cancel,
    },
    { highWaterMark: 0 },
  )
}
