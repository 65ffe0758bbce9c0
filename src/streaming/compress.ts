/**
 * Response compression for SSE and JSON. Streams must stay live, so every
 * chunk written (one or more whole events) is compressed and flushed at once:
 * Web `CompressionStream` cannot flush, so the runtime supplies a `Compressor`
 * (Node and Bun: zlib with Z_SYNC_FLUSH, see src/entry/zlib-compressor.ts).
 * Workers get none: the platform compresses there.
 */
export type Encoding = 'gzip' | 'br'

/** One stream's compressor: each push returns the bytes for everything pushed so far. */
export interface Codec {
  push(chunk: Uint8Array): Promise<Uint8Array>
  finish(): Promise<Uint8Array>
  destroy(): void
}

export interface Compressor {
  readonly encodings: readonly Encoding[]
  codec(encoding: Encoding): Codec
  /** A whole body at once (JSON answers). */
  bytes(encoding: Encoding, data: Uint8Array): Promise<Uint8Array>
}

/**
 * The encoding to use for an Accept-Encoding header: the highest q-value the
 * runtime offers; on a tie gzip, whose per-event flushes cost less CPU than
 * brotli's for the same small frames.
 */
export function negotiate(header: string | null | undefined, available: readonly Encoding[]): Encoding | undefined {
  if (!header) return undefined
  let best: Encoding | undefined
  let bestQ = 0
  let star = -1
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    let q = 1
    for (const p of params) {
      const [k, v] = p.trim().split('=')
      if (k === 'q') q = Number(v)
    }
    if (!(q > 0)) q = 0
    if (name === '*') star = q
    const enc = name === 'gzip' || name === 'x-gzip' ? 'gzip' : name === 'br' ? 'br' : undefined
    // q=0 means "not acceptable".
    if (!enc || q <= 0 || !available.includes(enc)) continue
    if (q > bestQ || (q === bestQ && enc === 'gzip')) {
      best = enc
      bestQ = q
    }
  }
  if (!best && star > 0 && available.includes('gzip')) best = 'gzip'
  return best
}

/** A compressed view of `source`, flushed after every chunk; cancelling it cancels the source. */
export function compressStream(source: ReadableStream<Uint8Array>, codec: Codec): ReadableStream<Uint8Array> {
  const reader = source.getReader()
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const { done, value } = await reader.read()
            if (done) {
              const tail = await codec.finish()
              if (tail.byteLength) controller.enqueue(tail)
              controller.close()
              return
            }
            const out = await codec.push(value)
            if (out.byteLength) {
              controller.enqueue(out)
              return
            }
          }
        } catch (err) {
          codec.destroy()
          throw err
        }
      },
      cancel(reason) {
        codec.destroy()
        return reader.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
}
