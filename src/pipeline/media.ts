import { z } from 'zod'
import { base64Bytes, base64Head, base64ToBytes, bareMime, isBase64, mimeFromName, mimeMatches, sniffMime } from '../core/media.js'
import type { ChatEvent, ChatRequest, ContentPart, DocumentPart, Message, Part, TextPart } from '../core/types.js'
import { GatewayError } from '../errors.js'
import { inlineMediaUrls, MAX_MEDIA_BYTES, remoteMediaFetcher, type RemoteMediaOptions } from '../providers/shared/inline-media.js'
import { eventStream } from '../providers/shared/stream.js'
import type { CallContext, Provider } from '../providers/types.js'
import { pdfText } from './pdf-text.js'
import { parseSection } from './routing-config.js'

/**
 * The gateway's media policy, in one place for every dialect and provider:
 * what a request may carry (kinds, types, sizes), where linked media may come
 * from, and which conversions a target may get instead of a 400.
 *
 * - `mediaStage` (above routing, once per request): resolves Files API
 *   references, downloads allowed links (SSRF-guarded, see inline-media.ts),
 *   then checks every part: base64, per-part and per-request size (413),
 *   declared type against the bytes' magic numbers.
 * - routing then skips models lacking a needed input kind (capabilities.ts).
 * - `mediaTarget` (per provider, below routing): converts documents to text
 *   for a target that cannot read them, when media.conversions allow it, and
 *   notes it for the `x-gateway-conversions` header.
 */
export const MediaConfig = z.strictObject({
  /** Most decoded bytes one image, document, audio or video part may have. */
  maxPartBytes: z.number().int().positive().default(MAX_MEDIA_BYTES),
  /** Most decoded media bytes in one request, all parts together (links included, once downloaded). */
  maxRequestBytes: z.number().int().positive().default(50 * 1024 * 1024),
  /** Check declared media types against the data's magic numbers. */
  sniff: z.boolean().default(true),
  remote: z
    .strictObject({
      /** Fetch http(s) links clients send; defaults to server.allowRemoteMedia. */
      enabled: z.boolean().optional(),
      /** Hosts links may point to: `example.com`, `*.example.com`, `*` (any public host). */
      allowHosts: z.array(z.string().min(1)).default(() => ['*']),
      timeoutMs: z.number().int().positive().default(10_000),
      maxBytes: z.number().int().positive().default(MAX_MEDIA_BYTES),
      maxRedirects: z.number().int().min(0).max(10).default(3),
    })
    .prefault({}),
  conversions: z
    .strictObject({
      /** Give text-only models the text of PDFs (and base64 text files) instead of answering 400. */
      pdfToText: z.boolean().default(false),
      /** Pages converted at most per PDF. */
      maxPages: z.number().int().positive().default(100),
    })
    .prefault({}),
})
export type MediaConfig = z.infer<typeof MediaConfig> & { remote: { enabled: boolean } }

export function parseMediaConfig(raw: unknown, allowRemoteMedia: boolean): MediaConfig {
  const parsed = parseSection(MediaConfig, raw, 'media')
  return { ...parsed, remote: { ...parsed.remote, enabled: parsed.remote.enabled ?? allowRemoteMedia } }
}

/** A Files API upload as the media stage reads it: its bytes (base64) and name, for the caller's key only. */
export type ResolveFile = (fileId: string, keyId: string | undefined) => Promise<{ data: string; filename: string }>

export interface MediaStageOptions {
  config: MediaConfig
  /** Downloads links; built from config.remote (remoteMediaFetcher). */
  remote: Pick<RemoteMediaOptions, 'http' | 'resolveHost'>
  files?: ResolveFile
}

type MediaPart = Exclude<ContentPart, TextPart>

const KIND_PREFIX: Record<MediaPart['type'], string | undefined> = { image: 'image/', audio: 'audio/', video: 'video/', document: undefined }

function isMedia(p: Part): p is MediaPart {
  return p.type === 'image' || p.type === 'document' || p.type === 'audio' || p.type === 'video'
}

/** Media parts needing work (binary, linked or referenced); text documents need none. */
function needsWork(p: Part): boolean {
  if (isMedia(p)) return !(p.type === 'document' && p.text !== undefined)
  return p.type === 'tool_result' && p.content.some(needsWork)
}

export function hasMedia(req: ChatRequest): boolean {
  for (const m of req.messages) for (const p of m.content) if (needsWork(p)) return true
  return false
}

/** Each media part with where it is (`messages[i].content[j]`, tool results' parts included). */
function* mediaParts(messages: Message[]): Generator<[MediaPart, string]> {
  for (const [i, m] of messages.entries()) {
    for (const [j, p] of m.content.entries()) {
      const at = `messages[${i}].content[${j}]`
      if (isMedia(p)) yield [p, at]
      else if (p.type === 'tool_result') for (const [k, c] of p.content.entries()) if (isMedia(c)) yield [c, `${at}.content[${k}]`]
    }
  }
}

function article(kind: string): string {
  return kind === 'image' || kind === 'audio' ? 'an' : 'a'
}

/** What the media stage does to one request before routing. Exported for the batch and WebSocket paths' tests. */
export function mediaPreparer(opts: MediaStageOptions): (req: ChatRequest, ctx: CallContext) => Promise<ChatRequest> {
  const { config } = opts
  const fetchMedia = remoteMediaFetcher({ ...opts.remote, allowHosts: config.remote.allowHosts, timeoutMs: config.remote.timeoutMs, maxBytes: config.remote.maxBytes, maxRedirects: config.remote.maxRedirects })

  async function resolveFiles(messages: Message[], ctx: CallContext): Promise<Message[]> {
    const refs = [...mediaParts(messages)].filter(([p]) => p.fileId !== undefined && p.data === undefined)
    if (!refs.length) return messages
    const out = structuredClone(messages)
    await Promise.all(
      [...mediaParts(out)]
        .filter(([p]) => p.fileId !== undefined && p.data === undefined)
        .map(async ([p, at]) => {
          if (!opts.files) throw new GatewayError('invalid_request', `${at}: file_id references cannot be resolved on this gateway (no Files API storage).`, { param: at, code: 'invalid_file_id' })
          const file = await opts.files(p.fileId!, ctx.keyId).catch((err: unknown) => {
            if (err instanceof GatewayError && err.kind === 'not_found') {
              throw new GatewayError('invalid_request', `${at}: file_id "${p.fileId}" names no file uploaded with this API key (POST /v1/files).`, { param: at, code: 'invalid_file_id' })
            }
            throw err
          })
          const sniffed = sniffMime(base64Head(file.data) ?? new Uint8Array())
          p.mimeType = sniffed ?? mimeFromName(file.filename) ?? p.mimeType
          p.data = file.data
          delete p.fileId
          if (p.type === 'document' && !p.title) p.title = file.filename
        }),
    )
    return out
  }

  function check(messages: Message[]): void {
    let total = 0
    for (const [p, at] of mediaParts(messages)) {
      if (p.type === 'document' && p.text !== undefined) continue
      if (p.url !== undefined && p.data === undefined) {
        throw new GatewayError('invalid_request', `${at}: linked media is disabled on this gateway; send the data inline (base64), or enable media.remote (server.allowRemoteMedia).`, { param: at, code: 'invalid_media_url' })
      }
      if (p.data === undefined) throw new GatewayError('invalid_request', `${at}: the ${p.type} part has no data.`, { param: at, code: 'invalid_media' })
      const mime = bareMime(p.mimeType)
      const prefix = KIND_PREFIX[p.type]
      if (prefix ? !mime.startsWith(prefix) : /^(image|audio|video)\//.test(mime)) {
        throw new GatewayError('invalid_request', `${at}: ${article(p.type)} ${p.type} part cannot be of type ${mime || '(none)'}${prefix ? `; expected ${prefix}*` : `; send it as ${article(mime.split('/')[0])} ${mime.split('/')[0]} part`}.`, { param: at, code: 'unsupported_media_type' })
      }
      if (!isBase64(p.data)) throw new GatewayError('invalid_request', `${at}: the ${p.type} data is not valid base64.`, { param: at, code: 'invalid_base64' })
      const bytes = base64Bytes(p.data)
      if (bytes > config.maxPartBytes) {
        throw new GatewayError('payload_too_large', `${at}: the ${p.type} is ${bytes} bytes, more than this gateway's limit of ${config.maxPartBytes} bytes per part.`, { param: at, code: 'media_too_large' })
      }
      total += bytes
      if (total > config.maxRequestBytes) {
        throw new GatewayError('payload_too_large', `The request carries more than this gateway's limit of ${config.maxRequestBytes} bytes of media (images, documents, audio, video together).`, { param: at, code: 'request_media_too_large' })
      }
      if (config.sniff) {
        const sniffed = sniffMime(base64Head(p.data) ?? new Uint8Array())
        if (!mimeMatches(mime, sniffed)) {
          throw new GatewayError('invalid_request', `${at}: the ${p.type} is declared as ${mime}, but its data is not ${mime}${sniffed ? ` (it looks like ${sniffed})` : ''}.`, { param: at, code: 'media_type_mismatch' })
        }
      }
    }
  }

  return async (req, ctx) => {
    let messages = await resolveFiles(req.messages, ctx)
    const linked = [...mediaParts(messages)].some(([p]) => p.data === undefined && p.url !== undefined && !(p.type === 'document' && p.text !== undefined))
    if (linked && config.remote.enabled) messages = await inlineMediaUrls(messages, fetchMedia, ctx.signal)
    check(messages)
    return messages === req.messages ? req : { ...req, messages }
  }
}

/** Reads a provider stream inside another generator, cancelling it when the outer one ends early. */
async function* relay(stream: ReadableStream<ChatEvent>): AsyncGenerator<ChatEvent, void, undefined> {
  const reader = stream.getReader()
  let done = false
  try {
    for (;;) {
      const next = await reader.read()
      if (next.done) {
        done = true
        return
      }
      yield next.value
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {})
  }
}

/** The stage above routing: requests without media pass straight through. */
export function mediaStage(inner: Provider, opts: MediaStageOptions): Provider {
  const prepare = mediaPreparer(opts)
  // Delegated by hand: the router is a class, whose methods a spread would not copy.
  const stage: Provider = {
    id: inner.id,
    type: inner.type,
    embedsTokens: inner.embedsTokens,
    models: (signal) => inner.models(signal),
    chat(req, ctx) {
      if (!hasMedia(req)) return inner.chat(req, ctx)
      return eventStream(ctx.signal, async function* (signal) {
        const prepared = await prepare(req, { ...ctx, signal })
        yield* relay(inner.chat(prepared, ctx))
      })
    },
  }
  if (inner.embed) stage.embed = (req, ctx) => inner.embed!(req, ctx)
  if (inner.countTokens) stage.countTokens = (req, ctx) => inner.countTokens!(req, ctx)
  if (inner.health) stage.health = (signal) => inner.health!(signal)
  return stage
}

const TEXT_TYPES = /^text\//

/** Binary documents → text documents (PDF text extraction, base64 text decoded), noting each for the response header. */
export async function documentsToText(req: ChatRequest, ctx: CallContext, maxPages: number): Promise<ChatRequest> {
  const conversions: string[] = []
  const convert = async (p: DocumentPart, at: string): Promise<DocumentPart> => {
    if (p.text !== undefined || p.data === undefined) return p
    const mime = bareMime(p.mimeType)
    const { data: _data, url: _url, fileId: _fileId, ...rest } = p
    if (mime === 'application/pdf') {
      const { text } = await pdfText(base64ToBytes(p.data), maxPages, at)
      conversions.push(`pdf-to-text ${at}`)
      return { ...rest, mimeType: 'text/plain', text }
    }
    if (TEXT_TYPES.test(mime)) {
      conversions.push(`text-decode ${at}`)
      return { ...rest, mimeType: mime, text: new TextDecoder().decode(base64ToBytes(p.data)) }
    }
    return p
  }
  const messages = await Promise.all(
    req.messages.map(async (m, i) => {
      if (!m.content.some((p) => p.type === 'document' || p.type === 'tool_result')) return m
      const content = await Promise.all(
        m.content.map(async (p, j): Promise<Part> => {
          const at = `messages[${i}].content[${j}]`
          if (p.type === 'document') return convert(p, at)
          if (p.type === 'tool_result') return { ...p, content: await Promise.all(p.content.map((c, k) => (c.type === 'document' ? convert(c, `${at}.content[${k}]`) : c))) }
          return p
        }),
      )
      return { ...m, content }
    }),
  )
  if (ctx.meta && conversions.length) ctx.meta.conversions = [...((ctx.meta.conversions as string[] | undefined) ?? []), ...conversions]
  const { documentsAsText: _flag, ...rest } = req
  return { ...rest, messages }
}

/**
 * The per-provider half: a target routing marked (`documentsAsText`, it
 * cannot read the documents and conversions are on) gets their text. Without
 * conversions configured the provider is returned as it is.
 */
export function mediaTarget(provider: Provider, config: MediaConfig): Provider {
  if (!config.conversions.pdfToText) return provider
  return {
    ...provider,
    chat(req, ctx) {
      if (!req.documentsAsText) return provider.chat(req, ctx)
      return eventStream(ctx.signal, async function* (signal) {
        const converted = await documentsToText(req, { ...ctx, signal }, config.conversions.maxPages)
        yield* relay(provider.chat(converted, ctx))
      })
    },
  }
}

/** `x-gateway-conversions`: what the gateway converted for the model, e.g. `pdf-to-text messages[0].content[1]`. */
export function conversionsHeader(meta: Record<string, unknown> | undefined): string | undefined {
  const list = meta?.conversions
  return Array.isArray(list) && list.length ? list.join(', ') : undefined
}
