import type { MiddlewareHandler } from 'hono'
import { compressStream, negotiate, type Compressor } from '../streaming/compress.js'
import type { AppEnv } from '../routes/env.js'

export interface CompressionOptions {
  compressor: Compressor
  /** JSON answers below this size are sent as they are. */
  minBytes: number
}

/**
 * Compresses SSE streams (flushed per event) and JSON answers when the
 * client's Accept-Encoding allows. Other bodies (docs, assets) are left
 * alone. Registered only where the runtime supplies a compressor.
 */
export function compression(options: CompressionOptions): MiddlewareHandler<AppEnv> {
  const { compressor, minBytes } = options
  return async (c, next) => {
    await next()
    const accept = c.req.raw.headers.get('accept-encoding')
    if (!accept || c.req.method === 'HEAD') return
    // A JSON answer known to be small stays as it is, unread (reading it back would rebuild the whole Response).
    const known = c.get('jsonLength')
    if (known !== undefined && known < minBytes) return
    const res = c.res
    if (!res.body || res.headers.has('content-encoding')) return
    const type = res.headers.get('content-type') ?? ''
    const sse = type.startsWith('text/event-stream')
    if (!sse && !type.startsWith('application/json')) return
    const encoding = negotiate(accept, compressor.encodings)
    if (!encoding) return
    let body: ReadableStream<Uint8Array> | Uint8Array
    if (sse) body = compressStream(res.body, compressor.codec(encoding))
    else {
      const bytes = new Uint8Array(await res.arrayBuffer())
      if (bytes.byteLength < minBytes) {
        c.res = new Response(bytes as BodyInit, res)
        return
      }
      body = await compressor.bytes(encoding, bytes)
    }
    const headers = new Headers(res.headers)
    headers.delete('content-length')
    headers.set('content-encoding', encoding)
    headers.append('vary', 'accept-encoding')
    // Assigning c.res would merge the old headers back in (content-length included); replace it whole.
    ;(c as { res: Response | undefined }).res = undefined
    c.res = new Response(body as BodyInit, { status: res.status, headers })
  }
}
