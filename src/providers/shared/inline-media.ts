import { bareMime, bytesToBase64, sniffMime } from '../../core/media.js'
import type { ContentPart, Message, TextPart } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { ipLiteral, isBlockedAddress } from './address-guard.js'
import type { HttpClient } from './http.js'

/** Most bytes one linked file may have; the APIs that take inline media cap them near this. */
export const MAX_MEDIA_BYTES = 20 * 1024 * 1024

/** Resolves a DNS name to its addresses (node:dns `lookup(host, {all: true})` on Node and Bun). */
export type ResolveHost = (host: string) => Promise<string[]>

export interface RemoteMediaOptions {
  http: HttpClient
  /**
   * Without it, DNS names cannot be checked before the connection: only IP
   * literals are (Workers: the platform itself cannot reach private networks).
   */
  resolveHost?: ResolveHost
  /** Host patterns allowed: `example.com`, `*.example.com`, or `*` for any public host. */
  allowHosts: string[]
  timeoutMs: number
  maxBytes: number
  maxRedirects: number
}

export interface FetchedMedia {
  /** The served content-type, or what the bytes are when the server did not say. */
  mimeType: string
  data: string
  bytes: number
}

/**
 * Downloads media a client linked to, for the gateway to send inline. The
 * one way the gateway fetches a client-chosen URL: http(s) only, no
 * credentials in the URL, hosts from the allowlist, never a private,
 * loopback or link-local address (literal, or what the name resolves to),
 * redirects followed by hand with every hop checked again, a deadline for the
 * whole download and a byte cap counted as the body arrives.
 */
export function remoteMediaFetcher(opts: RemoteMediaOptions): (url: string, param: string, signal: AbortSignal) => Promise<FetchedMedia> {
  const exact = new Set<string>()
  const suffixes: string[] = []
  let any = false
  for (const pattern of opts.allowHosts.map((h) => h.toLowerCase())) {
    if (pattern === '*') any = true
    else if (pattern.startsWith('*.')) suffixes.push(pattern.slice(1))
    else exact.add(pattern)
  }
  const allowed = (host: string) => any || exact.has(host) || suffixes.some((s) => host.endsWith(s))

  async function check(url: URL, fail: (why: string) => GatewayError): Promise<void> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`only http and https URLs are fetched, not ${url.protocol}`)
    if (url.username || url.password) throw fail('URLs with credentials are not fetched')
    // [::1] → ::1, and a fully qualified name's trailing dot is the same host ("localhost." is localhost).
    const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')
    if (!allowed(host)) throw fail(`the host ${host} is not in this gateway's media.remote.allowHosts`)
    const literal = ipLiteral(host)
    if (literal !== undefined) {
      if (isBlockedAddress(literal)) throw fail(`${literal} is a private, loopback or link-local address`)
      return
    }
    if (host === 'localhost' || host.endsWith('.localhost')) throw fail(`${host} is a loopback name`)
    if (!opts.resolveHost) return
    let addresses: string[]
    try {
      addresses = await opts.resolveHost(host)
    } catch {
      throw fail(`the name ${host} does not resolve`)
    }
    const blocked = addresses.find(isBlockedAddress)
    if (blocked !== undefined || addresses.length === 0) throw fail(`${host} resolves to ${blocked ?? 'no address'}, a private, loopback or link-local address`)
  }

  return async (link, param, parent) => {
    const fail = (why: string, kind: 'invalid_request' | 'payload_too_large' | 'timeout' = 'invalid_request') =>
      new GatewayError(kind, `${param}: the file at ${safeUrl(link)} was not fetched: ${why}.`, { param, code: kind === 'payload_too_large' ? 'media_too_large' : 'invalid_media_url' })
    const deadline = AbortSignal.timeout(opts.timeoutMs)
    const signal = AbortSignal.any([parent, deadline])
    let url: URL
    try {
      url = new URL(link)
    } catch {
      throw fail('it is not a valid URL')
    }
    try {
      for (let hop = 0; ; hop++) {
        await check(url, fail)
        const res = await opts.http(url.href, { method: 'GET', headers: { accept: '*/*' }, signal, redirect: 'manual' })
        if (res.status >= 300 && res.status < 400) {
          await res.discard()
          const location = res.header('location')
          if (!location) throw fail(`the server answered ${res.status} with no Location`)
          if (hop >= opts.maxRedirects) throw fail(`more than ${opts.maxRedirects} redirects`)
          url = new URL(location, url)
          continue
        }
        if (res.status >= 400) {
          await res.discard()
          throw fail(`the server answered ${res.status}`)
        }
        const declared = Number(res.header('content-length') ?? 'NaN')
        if (declared > opts.maxBytes) {
          await res.discard()
          throw fail(`it is larger than ${opts.maxBytes} bytes`, 'payload_too_large')
        }
        const chunks: Uint8Array[] = []
        let size = 0
        for await (const chunk of res.body) {
          size += chunk.byteLength
          if (size > opts.maxBytes) {
            await res.discard()
            throw fail(`it is larger than ${opts.maxBytes} bytes`, 'payload_too_large')
          }
          chunks.push(chunk)
        }
        const served = bareMime(res.header('content-type') ?? '')
        const head = chunks[0]?.subarray(0, 48) ?? new Uint8Array()
        const mimeType = !served || served === 'application/octet-stream' || served === 'binary/octet-stream' ? (sniffMime(head) ?? 'application/octet-stream') : served
        return { mimeType, data: bytesToBase64(chunks), bytes: size }
      }
    } catch (err) {
      if (err instanceof GatewayError) throw err
      if (parent.aborted) throw new GatewayError('cancelled', 'The request was cancelled.', { cause: err })
      if (deadline.aborted) throw fail(`it took longer than ${opts.timeoutMs} ms`, 'timeout')
      throw fail((err as { code?: string }).code === 'ECONNREFUSED' ? 'the connection was refused' : 'it could not be downloaded')
    }
  }
}

/** Scheme, host and path: never the query (signed URLs carry secrets there). */
function safeUrl(link: string): string {
  try {
    const u = new URL(link)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return 'the given URL'
  }
}

type Fetch = ReturnType<typeof remoteMediaFetcher>

/**
 * Replaces every linked file (images, documents, audio, video, also inside
 * tool results) with its downloaded bytes. The served type wins over a type
 * guessed from the URL; the caller checks it against the bytes.
 */
export async function inlineMediaUrls(messages: Message[], fetchMedia: Fetch, signal: AbortSignal): Promise<Message[]> {
  const pending: Array<Promise<void>> = []
  const inline = <P extends ContentPart>(p: P, param: string): P => {
    if (p.type === 'text') return p
    const media = p as Exclude<ContentPart, TextPart>
    if (media.data !== undefined || !media.url) return p
    const part = { ...media }
    pending.push(
      fetchMedia(media.url, param, signal).then((got) => {
        part.data = got.data
        part.mimeType = got.mimeType
        delete part.url
      }),
    )
    return part as P
  }
  const out = messages.map((m, i): Message => {
    if (!m.content.some((p) => hasUrl(p) || (p.type === 'tool_result' && p.content.some(hasUrl)))) return m
    const content = m.content.map((p, j) => {
      const at = `messages[${i}].content[${j}]`
      if (p.type === 'tool_result') return p.content.some(hasUrl) ? { ...p, content: p.content.map((c, k) => inline(c, `${at}.content[${k}]`)) } : p
      if (p.type === 'tool_call' || p.type === 'thinking') return p
      return inline(p, at)
    })
    return { ...m, content }
  })
  await Promise.all(pending)
  return out
}

function hasUrl(p: Message['content'][number]): boolean {
  return (p.type === 'image' || p.type === 'document' || p.type === 'audio' || p.type === 'video') && p.data === undefined && typeof p.url === 'string'
}
