import { z } from 'zod'
import type { ChatRequest, EmbedRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedBatchOptions } from '../shared/embed-batches.js'
import { healthFromModels, type HttpClient, sendWithin } from '../shared/http.js'
import type { CallContext, Provider } from '../types.js'
import { geminiEmbed } from './embed.js'
import { googleHttpError } from './errors.js'
import { googleChat, googleCountTokens, type GoogleTransport } from './transport.js'

export const GeminiOptions = z.looseObject({
  id: z.string(),
  /** Defaults to GEMINI_API_KEY, then GOOGLE_API_KEY. */
  apiKey: z.string().min(1).optional(),
  baseURL: z.string().url().default('https://generativelanguage.googleapis.com'),
  apiVersion: z.string().default('v1beta'),
  /** Models to serve; without them the service's own list (GET models) is used. */
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  timeoutMs: z.number().int().positive().default(120_000),
  ...embedBatchOptions(100),
})
export type GeminiOptions = z.input<typeof GeminiOptions>

type Env = Record<string, string | undefined>

const ModelList = z.looseObject({
  models: z
    .array(
      z.looseObject({
        name: z.string(),
        displayName: z.string().optional(),
        inputTokenLimit: z.number().optional(),
        outputTokenLimit: z.number().optional(),
        supportedGenerationMethods: z.array(z.string()).optional(),
        thinking: z.boolean().optional(),
      }),
    )
    .default(() => []),
  nextPageToken: z.string().optional(),
})

/** The Gemini API (generativelanguage.googleapis.com) with an API key: the same wire format as Vertex AI. */
export function geminiProvider(input: GeminiOptions, http: HttpClient, env: Env = (globalThis as { process?: { env?: Env } }).process?.env ?? {}): Provider {
  const opts = GeminiOptions.parse(input)
  const id = opts.id
  const apiKey = opts.apiKey ?? env.GEMINI_API_KEY ?? env.GOOGLE_API_KEY
  if (!apiKey) throw new Error(`Gemini provider "${id}": no API key: set "apiKey" or GEMINI_API_KEY.`)
  const base = `${opts.baseURL.replace(/\/+$/, '')}/${opts.apiVersion}`
  const keyHeader = { 'x-goog-api-key': apiKey }
  const staticModels = opts.models?.map((m) => (typeof m === 'string' ? m : m.id))
  const bare = (model: string) => model.replace(/^models\//, '')

  const transport: GoogleTransport = {
    id,
    label: 'Gemini',
    http,
    timeoutMs: opts.timeoutMs,
    methodUrl: (model, method) => `${base}/models/${encodeURIComponent(bare(model))}:${method}`,
    authHeaders: async () => keyHeader,
  }

  return {
    id,
    type: 'gemini',
    async models(signal) {
      if (staticModels) return staticModels.map((m) => ({ id: m, ownedBy: 'google' }))
      const out: ModelInfo[] = []
      let page: string | undefined
      // A handful of pages at most: the list is ~50 models today.
      for (let i = 0; i < 5; i++) {
        const url = `${base}/models?pageSize=1000${page ? `&pageToken=${encodeURIComponent(page)}` : ''}`
        const res = await sendWithin(http, id, url, { method: 'GET', headers: { ...keyHeader, accept: 'application/json' }, signal: signal ?? AbortSignal.timeout(10_000) }, opts.timeoutMs)
        if (res.status >= 400) throw await googleHttpError(id, 'Gemini', res)
        const parsed = ModelList.safeParse(await res.json().catch(() => undefined))
        if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" sent a model list of an unexpected shape.`)
        for (const m of parsed.data.models) {
          const methods = m.supportedGenerationMethods ?? []
          const chat = methods.includes('generateContent')
          const embeds = methods.includes('embedContent') || methods.includes('batchEmbedContents')
          if (!chat && !embeds) continue
          out.push({
            id: bare(m.name),
            name: m.displayName,
            ownedBy: 'google',
            contextWindow: m.inputTokenLimit,
            maxOutputTokens: m.outputTokenLimit,
            capabilities: chat ? { streaming: true, tools: true, vision: true, json: true, thinking: m.thinking } : { embeddings: true },
          })
        }
        page = parsed.data.nextPageToken
        if (!page) break
      }
      return out
    },
    chat: (req: ChatRequest, ctx: CallContext) => googleChat(transport, { ...req, model: bare(req.model) }, ctx),
    countTokens: (req: ChatRequest, ctx: CallContext) => googleCountTokens(transport, { ...req, model: bare(req.model) }, ctx.signal, 'gemini'),
    embed: (req: EmbedRequest, ctx: CallContext) => geminiEmbed(transport, { ...req, model: bare(req.model) }, { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }, ctx.signal),
    health(signal) {
      return healthFromModels((sig) => this.models(sig), signal)
    },
  }
}
