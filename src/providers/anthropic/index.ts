import { z } from 'zod'
import type { ChatEvent, ChatRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { decodeSse } from '../../streaming/decode.js'
import { healthFromModels, type HttpClient, send, sendWithin, upstreamError } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { AnthropicEventMapper, eventsFromMessage } from './from-anthropic.js'
import { toAnthropicBody } from './to-anthropic.js'

export const AnthropicOptions = z.looseObject({
  id: z.string(),
  baseURL: z.string().url().default('https://api.anthropic.com'),
  apiKey: z.string().optional(),
  /** Sent as `anthropic-version`. */
  version: z.string().default('2023-06-01'),
  /** Sent as `anthropic-beta` (comma-joined). */
  betas: z.array(z.string()).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  /** max_tokens when the client sets none (the API requires one). */
  defaultMaxTokens: z.number().int().positive().default(8192),
  /** Time allowed until the upstream's response headers, in ms. */
  timeoutMs: z.number().int().positive().default(120_000),
})
export type AnthropicOptions = z.input<typeof AnthropicOptions>

const ModelList = z.looseObject({
  data: z.array(z.looseObject({ id: z.string(), display_name: z.string().optional(), created_at: z.string().optional() })),
  has_more: z.boolean().optional(),
  last_id: z.string().nullable().optional(),
})

/**
 * The Anthropic Messages API upstream (api.anthropic.com or anything that
 * speaks it): prompt caching (`cache_control`) and thinking with signatures
 * pass through; the cache counters come back in usage.
 */
export function anthropicProvider(input: AnthropicOptions, http: HttpClient): Provider {
  const opts = AnthropicOptions.parse(input)
  const id = opts.id
  const base = opts.baseURL.replace(/\/+$/, '').replace(/\/v1$/, '')
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'anthropic-version': opts.version, ...opts.headers }
  if (opts.apiKey) headers['x-api-key'] = opts.apiKey
  if (opts.betas?.length) headers['anthropic-beta'] = opts.betas.join(',')
  const staticModels = opts.models?.map((m) => (typeof m === 'string' ? m : m.id))

  async function post(path: string, body: unknown, signal: AbortSignal) {
    const res = await sendWithin(http, id, base + path, { method: 'POST', headers, body: JSON.stringify(body), signal }, opts.timeoutMs)
    if (res.status >= 400) throw await upstreamError(id, res)
    return res
  }

  async function json(res: { json(): Promise<unknown> }): Promise<unknown> {
    try {
      return await res.json()
    } catch (err) {
      throw new GatewayError('upstream', `Provider "${id}" sent a body that is not JSON.`, { cause: err })
    }
  }

  return {
    id,
    type: 'anthropic',
    async models(signal) {
      if (staticModels) return staticModels.map((m) => ({ id: m, ownedBy: id }))
      const out: ModelInfo[] = []
      let after: string | undefined
      for (let page = 0; page < 10; page++) {
        const url = `${base}/v1/models?limit=1000${after ? `&after_id=${encodeURIComponent(after)}` : ''}`
        const res = await send(http, id, url, { method: 'GET', headers, signal })
        if (res.status >= 400) throw await upstreamError(id, res)
        const list = ModelList.parse(await json(res))
        for (const m of list.data) out.push({ id: m.id, name: m.display_name, ownedBy: 'anthropic', created: m.created_at ? Math.floor(Date.parse(m.created_at) / 1000) : undefined, capabilities: { tools: true, vision: true, streaming: true, thinking: true, documents: true } })
        if (!list.has_more || !list.last_id) break
        after = list.last_id
      }
      return out
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
        const res = await post('/v1/messages', toAnthropicBody(req, id, opts.defaultMaxTokens), signal)
        if (!req.stream) {
          yield* eventsFromMessage(id, await json(res))
          return
        }
        const mapper = new AnthropicEventMapper(id)
        const out: ChatEvent[] = []
        for await (const ev of decodeSse(res.body)) {
          let data: unknown
          try {
            data = JSON.parse(ev.data)
          } catch (err) {
            throw new GatewayError('upstream', `Provider "${id}" sent a stream event that is not JSON.`, { cause: err })
          }
          const type = ev.event ?? (data as { type?: string }).type ?? ''
          mapper.map(type, data, out)
          for (const e of out) yield e
          out.length = 0
          if (type === 'message_stop') break
        }
        mapper.end(out)
        yield* out
      })
    },
    async countTokens(req: ChatRequest, ctx: CallContext) {
      const body = toAnthropicBody({ ...req, stream: false }, id, opts.defaultMaxTokens)
      // count_tokens takes the prompt only.
      delete body.max_tokens
      delete body.stream
      delete body.temperature
      delete body.top_p
      delete body.top_k
      delete body.stop_sequences
      delete body.metadata
      const res = await post('/v1/messages/count_tokens', body, ctx.signal)
      const parsed = z.looseObject({ input_tokens: z.number() }).safeParse(await json(res))
      if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" answered count_tokens without input_tokens.`)
      return parsed.data.input_tokens
    },
    health(signal) {
      return healthFromModels((sig) => this.models(sig), signal)
    },
  }
}
