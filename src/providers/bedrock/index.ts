import { z } from 'zod'
import type { ChatEvent, ChatRequest, EmbedRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { healthFromModels, type HttpClient, type HttpResponse, sendWithin } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { embedBatchOptions } from '../shared/embed-batches.js'
import { bedrockEmbed, COHERE_MAX_BATCH } from './embed.js'
import { bedrockError, bedrockHttpError } from './errors.js'
import { decodeEventStream } from './event-stream.js'
import { ConverseStreamMapper, eventsFromConverse, type ConverseResponse, type StreamPayload } from './from-converse.js'
import { sigV4Signer } from './sigv4.js'
import { toConverseBody } from './to-converse.js'

export const BedrockOptions = z.looseObject({
  id: z.string(),
  /** Defaults to AWS_REGION, then AWS_DEFAULT_REGION. */
  region: z.string().min(1).optional(),
  /** Default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. */
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  sessionToken: z.string().min(1).optional(),
  /** bedrock-runtime endpoint override (VPC endpoints, tests). */
  endpoint: z.string().url().optional(),
  /** bedrock (control plane) endpoint override, for ListFoundationModels. */
  controlEndpoint: z.string().url().optional(),
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  /** Ask ListFoundationModels for the models; the default when no `models` are configured. */
  listModels: z.boolean().optional(),
  timeoutMs: z.number().int().positive().default(120_000),
  ...embedBatchOptions(COHERE_MAX_BATCH),
  cohereInputType: z.enum(['search_document', 'search_query', 'classification', 'clustering']).default('search_document'),
})
export type BedrockOptions = z.input<typeof BedrockOptions>

type Env = Record<string, string | undefined>

function processEnv(): Env {
  return (globalThis as { process?: { env?: Env } }).process?.env ?? {}
}

const ListAnswer = z.looseObject({
  modelSummaries: z.array(
    z.looseObject({
      modelId: z.string(),
      modelName: z.string().optional(),
      providerName: z.string().optional(),
      inputModalities: z.array(z.string()).optional(),
      outputModalities: z.array(z.string()).optional(),
      responseStreamingSupported: z.boolean().optional(),
    }),
  ),
})

/**
 * AWS Bedrock through the Converse API (one request shape for every model
 * family), signed with SigV4. Streaming uses ConverseStream's binary
 * event-stream; non-streamed requests use Converse.
 */
export function bedrockProvider(input: BedrockOptions, http: HttpClient, env: Env = processEnv()): Provider {
  const opts = BedrockOptions.parse(input)
  const id = opts.id
  const region = opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION
  if (!region) throw new Error(`Bedrock provider "${id}": no region: set "region" or AWS_REGION.`)
  const accessKeyId = opts.accessKeyId ?? env.AWS_ACCESS_KEY_ID
  const secretAccessKey = opts.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY
  if (!accessKeyId || !secretAccessKey) {
    throw new Error(`Bedrock provider "${id}": no AWS credentials: set accessKeyId/secretAccessKey or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.`)
  }
  // A session token from the environment only belongs to the environment's keys.
  const sessionToken = opts.sessionToken ?? (opts.accessKeyId ? undefined : env.AWS_SESSION_TOKEN)
  const signer = sigV4Signer({ accessKeyId, secretAccessKey, sessionToken })
  const runtime = (opts.endpoint ?? `https://bedrock-runtime.${region}.amazonaws.com`).replace(/\/+$/, '')
  const control = (opts.controlEndpoint ?? `https://bedrock.${region}.amazonaws.com`).replace(/\/+$/, '')
  const staticModels = opts.models?.map((m) => (typeof m === 'string' ? m : m.id))
  const listModels = opts.listModels ?? !staticModels

  async function call(method: 'GET' | 'POST', url: string, body: unknown, accept: string, signal: AbortSignal): Promise<HttpResponse> {
    const payload = body === undefined ? '' : JSON.stringify(body)
    const base: Record<string, string> = { accept }
    if (method === 'POST') base['content-type'] = 'application/json'
    const headers = await signer.sign({ method, url, headers: base, body: payload, region: region!, service: 'bedrock' })
    const res = await sendWithin(http, id, url, { method, headers, body: method === 'POST' ? payload : undefined, signal }, opts.timeoutMs)
    if (res.status >= 400) throw await bedrockHttpError(id, res)
    return res
  }

  const modelPath = (model: string) => `${runtime}/model/${encodeURIComponent(model)}`

  async function* converseStream(req: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const res = await call('POST', `${modelPath(req.model)}/converse-stream`, toConverseBody(req, { thinkingProvider: id }), 'application/vnd.amazon.eventstream', signal)
    const mapper = new ConverseStreamMapper(req.model)
    const out: ChatEvent[] = []
    const text = new TextDecoder()
    for await (const msg of decodeEventStream(res.body, id)) {
      const type = msg.headers[':message-type']
      if (type === 'exception') {
        const exception = String(msg.headers[':exception-type'] ?? 'exception')
        throw bedrockError(id, exception, undefined, messageOf(text.decode(msg.payload)))
      }
      if (type === 'error') {
        throw bedrockError(id, String(msg.headers[':error-code'] ?? 'error'), undefined, String(msg.headers[':error-message'] ?? ''))
      }
      const eventType = String(msg.headers[':event-type'] ?? '')
      let payload: StreamPayload
      try {
        payload = JSON.parse(text.decode(msg.payload)) as StreamPayload
      } catch (err) {
        throw new GatewayError('upstream', `Provider "${id}" sent a ${eventType} event that is not JSON.`, { cause: err })
      }
      mapper.map(eventType, payload, out)
      for (const e of out) yield e
      out.length = 0
    }
    mapper.end(out)
    yield* out
  }

  async function* converse(req: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const res = await call('POST', `${modelPath(req.model)}/converse`, toConverseBody(req, { thinkingProvider: id }), 'application/json', signal)
    let body: unknown
    try {
      body = await res.json()
    } catch (err) {
      throw new GatewayError('upstream', `Provider "${id}" sent a Converse answer that is not JSON.`, { cause: err })
    }
    yield* eventsFromConverse(body as ConverseResponse, req.model)
  }

  return {
    id,
    type: 'bedrock',
    async models(signal) {
      if (!listModels) return (staticModels ?? []).map((m) => ({ id: m, ownedBy: id }))
      const res = await call('GET', `${control}/foundation-models`, undefined, 'application/json', signal ?? AbortSignal.timeout(10_000))
      const parsed = ListAnswer.safeParse(await res.json().catch(() => undefined))
      if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" sent a ListFoundationModels answer of an unexpected shape.`)
      const listed = parsed.data.modelSummaries.map(
        (m): ModelInfo => ({
          id: m.modelId,
          name: m.modelName,
          ownedBy: m.providerName ?? id,
          capabilities: {
            vision: m.inputModalities?.includes('IMAGE'),
            streaming: m.responseStreamingSupported,
            embeddings: m.outputModalities?.includes('EMBEDDING'),
          },
        }),
      )
      // Configured ids (e.g. inference profiles such as us.anthropic.…) are served even if not listed.
      for (const m of staticModels ?? []) if (!listed.some((l) => l.id === m)) listed.push({ id: m, ownedBy: id })
      return listed
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, (signal) => (req.stream ? converseStream(req, signal) : converse(req, signal)))
    },
    /** Bedrock's CountTokens (the models that support it); others answer ValidationException. */
    async countTokens(req: ChatRequest, ctx: CallContext) {
      const { messages, system } = toConverseBody(req, { thinkingProvider: id })
      const res = await call('POST', `${modelPath(req.model)}/count-tokens`, { input: { converse: { messages, ...(system ? { system } : {}) } } }, 'application/json', ctx.signal)
      const json = (await res.json().catch(() => undefined)) as { inputTokens?: unknown } | undefined
      if (typeof json?.inputTokens !== 'number') throw new GatewayError('upstream', `Provider "${id}" sent a CountTokens answer without inputTokens.`)
      return json.inputTokens
    },
    async embed(req: EmbedRequest, ctx: CallContext) {
      const invoke = async (model: string, body: unknown, signal: AbortSignal) => {
        const res = await call('POST', `${modelPath(model)}/invoke`, body, 'application/json', signal)
        const count = res.header('x-amzn-bedrock-input-token-count')
        let json: unknown
        try {
          json = await res.json()
        } catch (err) {
          throw new GatewayError('upstream', `Provider "${id}" sent an InvokeModel answer that is not JSON.`, { cause: err })
        }
        return { json, inputTokens: count !== null && Number.isFinite(Number(count)) ? Number(count) : undefined }
      }
      return bedrockEmbed(id, req, invoke, { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }, opts.cohereInputType, ctx.signal)
    },
    health(signal) {
      return healthFromModels((sig) => this.models(sig), signal)
    },
  }
}

function messageOf(payload: string): string | undefined {
  try {
    const m = (JSON.parse(payload) as { message?: unknown; Message?: unknown }).message
    return typeof m === 'string' ? m : undefined
  } catch {
    return payload.slice(0, 300) || undefined
  }
}
