import type { ChatEvent, ChatRequest } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { decodeSse } from '../../streaming/decode.js'
import { type HttpClient, type HttpResponse, sendWithin } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext } from '../types.js'
import { googleError, googleHttpError, googleStatusOf } from './errors.js'
import { GeminiMapper, type GeminiResponse } from './from-gemini.js'
import { toGeminiBody } from './to-gemini.js'

/**
 * What differs between Vertex AI and the Gemini API: where a model's methods
 * live and how a request is authorised. Everything else (body, SSE stream,
 * errors) is the same wire format.
 */
export interface GoogleTransport {
  id: string
  label: string
  http: HttpClient
  timeoutMs: number
  /** URL of `model:method` (the query string is added by the caller). */
  methodUrl(model: string, method: string): string
  authHeaders(signal: AbortSignal): Promise<Record<string, string>>
  /** Called when the service rejects the credentials (drops a cached token). */
  onUnauthenticated?(): void
}

export function googlePost(t: GoogleTransport, url: string, body: unknown, signal: AbortSignal): Promise<HttpResponse> {
  return googleSend(t, 'POST', url, { body: JSON.stringify(body), contentType: 'application/json' }, signal)
}

/** An authorised call to a Google API; a 4xx/5xx answer (google.rpc.Status) throws its GatewayError. */
export async function googleSend(t: Omit<GoogleTransport, 'methodUrl'>, method: 'GET' | 'POST' | 'DELETE', url: string, payload: { body: string; contentType: string } | undefined, signal: AbortSignal): Promise<HttpResponse> {
  const headers = { accept: 'application/json', ...(payload ? { 'content-type': payload.contentType } : {}), ...(await t.authHeaders(signal)) }
  const res = await sendWithin(t.http, t.id, url, { method, headers, body: payload?.body, signal }, t.timeoutMs)
  if (res.status >= 400) {
    if (res.status === 401) t.onUnauthenticated?.()
    throw await googleHttpError(t.id, t.label, res)
  }
  return res
}

export function googleChat(t: GoogleTransport, req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
  return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
    const body = toGeminiBody(req)
    const mapper = new GeminiMapper(req.model)
    const out: ChatEvent[] = []
    if (!req.stream) {
      const res = await googlePost(t, t.methodUrl(req.model, 'generateContent'), body, signal)
      let json: unknown
      try {
        json = await res.json()
      } catch (err) {
        throw new GatewayError('upstream', `Provider "${t.id}" sent an answer that is not JSON.`, { cause: err })
      }
      mapper.map(json as GeminiResponse, out)
      mapper.end(out)
      yield* out
      return
    }
    const res = await googlePost(t, `${t.methodUrl(req.model, 'streamGenerateContent')}?alt=sse`, body, signal)
    for await (const ev of decodeSse(res.body)) {
      let chunk: unknown
      try {
        chunk = JSON.parse(ev.data)
      } catch (err) {
        throw new GatewayError('upstream', `Provider "${t.id}" sent a stream event that is not JSON.`, { cause: err })
      }
      const inband = googleStatusOf(chunk)
      if (inband) throw googleError(t.id, t.label, undefined, inband)
      mapper.map(chunk as GeminiResponse, out)
      for (const e of out) yield e
      out.length = 0
    }
    mapper.end(out)
    yield* out
  })
}

/**
 * The service's own count for a request's prompt (`:countTokens`). Vertex
 * takes the prompt fields directly; the Gemini API wants them wrapped in a
 * generateContentRequest naming the model.
 */
export async function googleCountTokens(t: GoogleTransport, req: ChatRequest, signal: AbortSignal, wrap: 'vertex' | 'gemini'): Promise<number> {
  const { contents, systemInstruction, tools } = toGeminiBody(req)
  const prompt = { contents, ...(systemInstruction ? { systemInstruction } : {}), ...(tools ? { tools } : {}) }
  const body = wrap === 'gemini' ? { generateContentRequest: { model: `models/${req.model}`, ...prompt } } : prompt
  const res = await googlePost(t, t.methodUrl(req.model, 'countTokens'), body, signal)
  const json = (await res.json().catch(() => undefined)) as { totalTokens?: unknown } | undefined
  if (typeof json?.totalTokens !== 'number') throw new GatewayError('upstream', `Provider "${t.id}" sent a countTokens answer without totalTokens.`)
  return json.totalTokens
}
