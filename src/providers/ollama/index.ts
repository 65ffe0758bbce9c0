import { z } from 'zod'
import type { ChatEvent, ChatRequest, EmbedRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { decodeNdjson } from '../../streaming/decode.js'
import { embedBatchOptions, embedInBatches, Vector } from '../shared/embed-batches.js'
import { type HttpClient, type HttpResponse, send, sendWithin } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { ollamaError } from './errors.js'
import { OllamaLineMapper } from './from-ollama.js'
import { toOllamaChatBody } from './to-ollama.js'

export const OllamaOptions = z.looseObject({
  id: z.string(),
  baseURL: z.string().url().default('http://127.0.0.1:11434'),
  /** For Ollama behind an authenticating proxy, or ollama.com's API: sent as a bearer token. */
  apiKey: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  /** Serve only these models instead of /api/tags. */
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  /** How long Ollama keeps a model loaded after a call ("5m", "1h", seconds, -1 = forever). */
  keepAlive: z.union([z.string(), z.number()]).optional(),
  /** Default model options (num_ctx, temperature …) for every call. */
  options: z.record(z.string(), z.unknown()).optional(),
  /** Time allowed until response headers, in ms: Ollama answers only once the model is loaded. */
  timeoutMs: z.number().int().positive().default(300_000),
  ...embedBatchOptions(64),
})
export type OllamaOptions = z.input<typeof OllamaOptions>

const Tags = z.looseObject({
  models: z.array(z.looseObject({ name: z.string(), model: z.string().optional(), modified_at: z.string().optional(), details: z.looseObject({ family: z.string().optional() }).optional() })),
})

const EmbedAnswer = z.looseObject({ model: z.string().optional(), embeddings: z.array(Vector), prompt_eval_count: z.number().optional() })

/** Ollama's native API: /api/chat (NDJSON stream), /api/tags, /api/embed. */
export function ollamaProvider(input: OllamaOptions, http: HttpClient): Provider {
  const opts = OllamaOptions.parse(input)
  const id = opts.id
  const base = opts.baseURL.replace(/\/+$/, '')
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...opts.headers }
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`
  const staticModels = opts.models?.map((m) => (typeof m === 'string' ? m : m.id))
  const defaults = { options: opts.options, keepAlive: opts.keepAlive }
  const batching = { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }

  async function post(path: string, model: string, body: unknown, signal: AbortSignal): Promise<HttpResponse> {
    const res = await sendWithin(http, id, base + path, { method: 'POST', headers, body: JSON.stringify(body), signal }, opts.timeoutMs)
    if (res.status >= 400) throw await ollamaError(id, base, model, res)
    return res
  }

  async function get(path: string, signal?: AbortSignal): Promise<unknown> {
    const res = await send(http, id, base + path, { method: 'GET', headers, signal })
    if (res.status >= 400) throw await ollamaError(id, base, undefined, res)
    return res.json()
  }

  return {
    id,
    type: 'ollama',
    async models(signal) {
      if (staticModels) return staticModels.map((m) => ({ id: m, ownedBy: id }))
      const parsed = Tags.safeParse(await get('/api/tags', signal))
      if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" sent a model list this gateway cannot read.`)
      return parsed.data.models.map(
        (m): ModelInfo => ({
          // "llama3.2:latest" is what `ollama run llama3.2` pulls: list it under the name people type.
          id: m.name.endsWith(':latest') ? m.name.slice(0, -7) : m.name,
          name: m.name,
          ownedBy: id,
          ...(m.modified_at && !Number.isNaN(Date.parse(m.modified_at)) ? { created: Math.floor(Date.parse(m.modified_at) / 1000) } : {}),
        }),
      )
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
        // Linked images arrive here already downloaded by the media stage (src/pipeline/media.ts), SSRF-checked.
        const res = await post('/api/chat', req.model, toOllamaChatBody(req, defaults), signal)
        const mapper = new OllamaLineMapper(id)
        const out: ChatEvent[] = []
        let done = false
        if (!req.stream) {
          let body: unknown
          try {
            body = await res.json()
          } catch (err) {
            throw new GatewayError('upstream', `Provider "${id}" sent a body that is not JSON.`, { cause: err })
          }
          mapper.map(body, out)
          done = (body as { done?: unknown }).done === true
          mapper.end(done)
          yield* out
          return
        }
        try {
          for await (const line of decodeNdjson(res.body)) {
            mapper.map(line, out)
            if ((line as { done?: unknown }).done === true) done = true
            for (const e of out) yield e
            out.length = 0
          }
        } catch (err) {
          if (err instanceof SyntaxError) throw new GatewayError('upstream', `Provider "${id}" sent a stream line that is not JSON.`, { cause: err })
          throw err
        }
        mapper.end(done)
      })
    },
    async embed(req: EmbedRequest, ctx: CallContext) {
      return embedInBatches(id, req.input, batching, ctx.signal, async (batch, signal) => {
        const body: Record<string, unknown> = { model: req.model, input: batch }
        if (req.dimensions) body.dimensions = req.dimensions
        if (opts.keepAlive !== undefined) body.keep_alive = opts.keepAlive
        if (opts.options) body.options = opts.options
        const res = await post('/api/embed', req.model, body, signal)
        const parsed = EmbedAnswer.safeParse(await res.json())
        if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" sent an embeddings answer this gateway cannot read.`)
        return { model: parsed.data.model, embeddings: parsed.data.embeddings, inputTokens: parsed.data.prompt_eval_count }
      })
    },
    async health(signal) {
      try {
        const v = (await get('/api/version', signal)) as { version?: string }
        return { ok: true, ...(v.version ? { detail: `ollama ${v.version}` } : {}) }
      } catch (err) {
        return { ok: false, detail: GatewayError.from(err).message }
      }
    },
  }
}
