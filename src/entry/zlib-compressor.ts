import { constants, createBrotliCompress, createGzip, brotliCompress, gzip, type BrotliCompress, type Gzip } from 'node:zlib'
import type { Codec, Compressor, Encoding } from '../streaming/compress.js'

const EMPTY = new Uint8Array(0)

// Small windows: a stream holds its compressor for its whole life, and SSE
// frames repeat within a few KB (about 32 KB of zlib state per stream instead of 256 KB).
const GZIP_STREAM = { level: 6, windowBits: 12, memLevel: 5 }
const BROTLI_STREAM = { params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_LGWIN]: 16, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } }
const BROTLI_WHOLE = { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } }

/**
 * zlib codecs for Node and Bun. Each push writes the chunk and flushes
 * (Z_SYNC_FLUSH / BROTLI_OPERATION_FLUSH), so the client can decode every
 * event as soon as it is sent.
 */
function codec(encoding: Encoding): Codec {
  const z: Gzip | BrotliCompress = encoding === 'br' ? createBrotliCompress(BROTLI_STREAM) : createGzip(GZIP_STREAM)
  const flushKind = encoding === 'br' ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH
  const out: Buffer[] = []
  z.on('data', (d: Buffer) => out.push(d))
  z.on('error', () => {})
  const take = (): Uint8Array => {
    if (out.length === 0) return EMPTY
    const b = out.length === 1 ? out[0] : Buffer.concat(out)
    out.length = 0
    return b
  }
  return {
    push: (chunk) =>
      new Promise((resolve) => {
        z.write(chunk)
        z.flush(flushKind, () => resolve(take()))
      }),
    finish: () =>
      new Promise((resolve) => {
        z.once('end', () => resolve(take()))
        z.end()
      }),
    destroy: () => {
      z.destroy()
    },
  }
}

export const zlibCompressor: Compressor = {
  encodings: ['gzip', 'br'],
  codec,
  bytes: (encoding, data) =>
    new Promise((resolve, reject) => {
      const done = (err: Error | null, buf: Buffer) => (err ? reject(err) : resolve(buf))
      if (encoding === 'br') brotliCompress(data, BROTLI_WHOLE, done)
      else gzip(data, done)
    }),
}
