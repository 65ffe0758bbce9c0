import { z } from 'zod'
import type { ChatRequest, EmbedRequest, ModelInfo } from '../../core/types.js'
import { healthFromModels, type HttpClient, send, sendWithin, upstreamError } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { embedInBatches, embedBatchOptions } from '../shared/embed-batches.js'
import { embeddingsFromOpenAI, eventsFromOpenAIResponse } from './from-openai.js'
import { toOpenAIChatBody } from './to-openai.js'

export const OpenAICompatibleOptions = z.looseObject({
  id: z.string(),
  baseURL: z.string().url(),
  apiKey: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  /** Time allowed until the upstream's response headers, in ms. */
  timeoutMs: z.number().int().positive().default(120_000),
  ...embedBatchOptions(512),
})
export type OpenAICompatibleOptions = z.input<typeof OpenAICompatibleOptions>

export function openAICompatibleProvider(input: OpenAICompatibleOptions, http: HttpClient): Provider {
  const opts = OpenAICompatibleOptions.parse(input)
  const id = opts.id
  const base = opts.baseURL.replace(/\/+$/, '')
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...opts.headers }
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`
  const staticModels = opts.models?.map((m) => (typeof m === 'string' ? m : m.id))
  const batching = { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }

  async function post(path: string, body: unknown, signal: AbortSignal) {
    const res = await sendWithin(http, id, base + path, { method: 'POST', headers, body: JSON.stringify(body), signal }, opts.timeoutMs)
    if (res.status >= 400) throw await upstreamError(id, res)
    return res
  }

  return {
    id,
    type: 'openai-compatible',
    async models(signal) {
      if (staticModels) return staticModels.map((m) => ({ id: m, ownedBy: id }))
      const res = await send(http, id, `${base}/models`, { method: 'GET', headers, signal })
      if (res.status >= 400) throw await upstreamError(id, res)
      const body = (await res.json()) as { data?: Array<{ id: string; owned_by?: string; created?: number; context_length?: number; max_model_len?: number }> }
      return (body.data ?? []).map((m): ModelInfo => ({ id: m.id, ownedBy: m.owned_by ?? id, created: m.created, contextWindow: m.context_length ?? m.max_model_len }))
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, (signal) => eventsFromOpenAIResponse(id, post('/chat/completions', toOpenAIChatBody(req, req.model, req.stream), signal), req.stream))
    },
    // OpenAI's /embeddings takes token-id arrays as well as text.
    embedsTokens: true,
    async embed(req: EmbedRequest, ctx: CallContext) {
      const items: Array<string | number[]> = req.tokens ?? req.input
      return embedInBatches(id, items, batching, ctx.signal, async (batch, signal) => {
        const body: Record<string, unknown> = { model: req.model, input: batch, encoding_format: 'float' }
        if (req.dimensions) body.dimensions = req.dimensions
        if (req.user) body.user = req.user
        const res = await post('/embeddings', body, signal)
        return embeddingsFromOpenAI(id, await res.json())
      })
    },
    health(signal) {
      return healthFromModels((sig) => this.models(sig), signal)
    },
  }
}
