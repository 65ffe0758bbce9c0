import { createHash, createHmac } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { crc32 } from 'node:zlib'
import type { RecordedRequest } from '../helpers/upstream.js'

/**
 * The server half of Bedrock's protocols, written independently of the
 * gateway's code (node:crypto and zlib's CRC-32): event-stream frames as
 * AWS encodes them, and SigV4 verification as AWS performs it.
 */

/** One event-stream message: prelude (lengths + CRC), string headers, payload, message CRC. */
export function encodeMessage(headers: Array<[string, string]>, payload: Buffer): Buffer {
  const hparts: Buffer[] = []
  for (const [name, value] of headers) {
    const n = Buffer.from(name, 'utf8')
    const v = Buffer.from(value, 'utf8')
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length)
    h.writeUInt8(n.length, 0)
    n.copy(h, 1)
    h.writeUInt8(7, 1 + n.length) // string
    h.writeUInt16BE(v.length, 2 + n.length)
    v.copy(h, 4 + n.length)
    hparts.push(h)
  }
  const hbuf = Buffer.concat(hparts)
  const total = 12 + hbuf.length + payload.length + 4
  const out = Buffer.alloc(total)
  out.writeUInt32BE(total, 0)
  out.writeUInt32BE(hbuf.length, 4)
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8)
  hbuf.copy(out, 12)
  payload.copy(out, 12 + hbuf.length)
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4)
  return out
}

export function eventFrame(eventType: string, payload: unknown): Buffer {
  return encodeMessage(
    [
      [':event-type', eventType],
      [':content-type', 'application/json'],
      [':message-type', 'event'],
    ],
    Buffer.from(JSON.stringify(payload)),
  )
}

export function exceptionFrame(exceptionType: string, message: string): Buffer {
  return encodeMessage(
    [
      [':exception-type', exceptionType],
      [':content-type', 'application/json'],
      [':message-type', 'exception'],
    ],
    Buffer.from(JSON.stringify({ message })),
  )
}

export function writeEventStream(res: ServerResponse, frames: Buffer[], requestId = 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111'): void {
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': requestId, 'transfer-encoding': 'chunked' })
  for (const f of frames) res.write(f)
  res.end()
}

export function writeAwsError(res: ServerResponse, e: { status: number; type: string; body: unknown }, headers: Record<string, string> = {}): void {
  res.writeHead(e.status, { 'content-type': 'application/json', 'x-amzn-errortype': e.type, 'x-amzn-requestid': 'e1e2e3e4-0000-1111-2222-EXAMPLE22222', ...headers }).end(JSON.stringify(e.body))
}

export interface AwsKeys {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')

/**
 * Recomputes the SigV4 signature of an incoming request; returns why it is
 * invalid, or null. Mirrors AWS: credential scope, signed headers present,
 * payload hash, clock skew (15 min), session token, then the signature.
 */
export function verifySigV4(req: RecordedRequest, keys: AwsKeys, region: string, service: string, now = Date.now()): string | null {
  const auth = String(req.headers.authorization ?? '')
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth)
  if (!m) return `malformed authorization header: ${auth.slice(0, 40)}`
  const [, akid, date, r, s, signedHeaders, signature] = m
  if (akid !== keys.accessKeyId) return 'unknown access key'
  if (r !== region || s !== service) return `wrong scope ${r}/${s}`
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) return 'bad x-amz-date'
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15))
  if (Math.abs(now - t) > 15 * 60_000) return 'signature expired (clock skew)'
  const names = signedHeaders.split(';')
  for (const required of ['host', 'x-amz-date']) if (!names.includes(required)) return `${required} not signed`
  if (keys.sessionToken) {
    if (req.headers['x-amz-security-token'] !== keys.sessionToken) return 'missing or wrong session token'
    if (!names.includes('x-amz-security-token')) return 'session token not signed'
  }
  const payloadHash = sha256(Buffer.from(req.body, 'utf8'))
  const claimed = req.headers['x-amz-content-sha256']
  if (claimed !== undefined && claimed !== payloadHash) return 'x-amz-content-sha256 does not match the body'
  const url = new URL(req.url, 'http://fake')
  const path = url.pathname.split('/').map(rfc3986).join('/')
  const query = [...url.searchParams].map(([k, v]) => [rfc3986(k), rfc3986(v)]).sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&')
  let headerBlock = ''
  for (const n of names) {
    const v = req.headers[n]
    if (v === undefined) return `signed header ${n} missing`
    headerBlock += `${n}:${String(v).trim().replace(/\s+/g, ' ')}\n`
  }
  const canonical = `${req.method}\n${path}\n${query}\n${headerBlock}\n${signedHeaders}\n${payloadHash}`
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256(canonical)}`
  let key: Buffer = createHmac('sha256', `AWS4${keys.secretAccessKey}`).update(date).digest()
  for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest()
  const expected = createHmac('sha256', key).update(toSign).digest('hex')
  return expected === signature ? null : 'signature mismatch'
}
