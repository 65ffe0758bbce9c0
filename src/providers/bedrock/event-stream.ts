import { GatewayError } from '../../errors.js'
import { crc32 } from './crc32.js'

/**
 * Decoder for AWS's binary `application/vnd.amazon.eventstream` framing
 * (ConverseStream, InvokeModelWithResponseStream). Each message is
 *   total length u32 · headers length u32 · prelude CRC u32 · headers · payload · message CRC u32
 * (big-endian; both CRCs are CRC-32 over everything before them). A corrupted
 * frame cannot be resynchronised, so a CRC mismatch ends the stream with an error.
 */
export type HeaderValue = string | number | bigint | boolean | Uint8Array | Date

export interface EventStreamMessage {
  headers: Record<string, HeaderValue>
  payload: Uint8Array
}

const PRELUDE = 12
const TRAILER = 4
/** AWS caps a single event-stream message at 16 MiB; anything larger is a corrupt length. */
const MAX_MESSAGE = 16 * 1024 * 1024

function corrupt(provider: string, what: string): GatewayError {
  return new GatewayError('upstream', `Provider "${provider}" sent a corrupt event-stream frame (${what}).`, { code: 'upstream_bad_frame' })
}

export async function* decodeEventStream(body: AsyncIterable<Uint8Array>, provider: string): AsyncGenerator<EventStreamMessage> {
  let buf: Uint8Array = new Uint8Array(0)
  for await (const chunk of body) {
    buf = buf.length ? concat(buf, chunk) : chunk
    let offset = 0
    while (buf.length - offset >= PRELUDE) {
      const view = new DataView(buf.buffer, buf.byteOffset + offset, PRELUDE)
      const total = view.getUint32(0)
      const headersLength = view.getUint32(4)
      if (crc32(buf, offset, offset + 8) !== view.getUint32(8)) throw corrupt(provider, 'prelude CRC mismatch')
      if (total < PRELUDE + TRAILER + headersLength || total > MAX_MESSAGE) throw corrupt(provider, `bad length ${total}`)
      if (buf.length - offset < total) break
      const end = offset + total
      const expected = new DataView(buf.buffer, buf.byteOffset + end - TRAILER, TRAILER).getUint32(0)
      if (crc32(buf, offset, end - TRAILER) !== expected) throw corrupt(provider, 'message CRC mismatch')
      const headersStart = offset + PRELUDE
      const headers = decodeHeaders(buf.subarray(headersStart, headersStart + headersLength), provider)
      yield { headers, payload: buf.slice(headersStart + headersLength, end - TRAILER) }
      offset = end
    }
    buf = offset === buf.length ? new Uint8Array(0) : buf.slice(offset)
  }
  if (buf.length) throw corrupt(provider, `stream ended inside a frame, ${buf.length} bytes left`)
}

const utf8 = new TextDecoder()

function decodeHeaders(bytes: Uint8Array, provider: string): Record<string, HeaderValue> {
  const out: Record<string, HeaderValue> = {}
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let i = 0
  const need = (n: number) => {
    if (i + n > bytes.length) throw corrupt(provider, 'truncated header')
  }
  while (i < bytes.length) {
    need(1)
    const nameLength = bytes[i++]
    need(nameLength + 1)
    const name = utf8.decode(bytes.subarray(i, i + nameLength))
    i += nameLength
    const type = bytes[i++]
    switch (type) {
      case 0:
        out[name] = true
        break
      case 1:
        out[name] = false
        break
      case 2:
        need(1)
        out[name] = view.getInt8(i)
        i += 1
        break
      case 3:
        need(2)
        out[name] = view.getInt16(i)
        i += 2
        break
      case 4:
        need(4)
        out[name] = view.getInt32(i)
        i += 4
        break
      case 5:
        need(8)
        out[name] = view.getBigInt64(i)
        i += 8
        break
      case 6:
      case 7: {
        need(2)
        const len = view.getUint16(i)
        i += 2
        need(len)
        const value = bytes.subarray(i, i + len)
        out[name] = type === 7 ? utf8.decode(value) : value.slice()
        i += len
        break
      }
      case 8:
        need(8)
        out[name] = new Date(Number(view.getBigInt64(i)))
        i += 8
        break
      case 9:
        need(16)
        out[name] = bytes.slice(i, i + 16)
        i += 16
        break
      default:
        throw corrupt(provider, `unknown header type ${type}`)
    }
  }
  return out
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}
