import { z } from 'zod'
import type { ChatEvent, ChatRequest, EmbedRequest } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedBatchOptions, embedInBatches } from '../shared/embed-batches.js'
import { type HttpClient, type HttpResponse, send, sendWithin } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { embeddingsFromOpenAI, eventsFromOpenAIResponse } from '../openai-compatible/from-openai.js'
import { toOpenAIChatBody } from '../openai-compatible/to-openai.js'
import { azureError } from './errors.js'

export const AzureOpenAIOptions = z
  .looseObject({
    id: z.string(),
    /** The resource endpoint, e.g. https://my-resource.openai.azure.com (or a custom subdomain / APIM URL). */
    endpoint: z.string().url().optional(),
    /** Shorthand for endpoint https://<resourceName>.openai.azure.com. */
    resourceName: z.string().regex(/^[A-Za-z0-9-]+$/, 'letters, digits and "-" only').optional(),
    /** The data-plane api-version query; "v1" uses the version-less /openai/v1 API instead. */
    apiVersion: z.string().min(1).default('2024-10-21'),
    /** Sent as the `api-key` header. */
    apiKey: z.string().min(1).optional(),
    /** A Microsoft Entra ID access token (scope https://cognitiveservices.azure.com/.default), sent as a bearer token. */
    azureADToken: z.string().min(1).optional(),
    bearerToken: z.string().min(1).optional(),
    /** Client model names → deployment names; a model not listed is used as the deployment name. */
    deployments: z.record(z.string(), z.string().min(1)).default(() => ({})),
    models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    timeoutMs: z.number().int().positive().default(120_000),
    // Azure takes up to 2048 inputs per call, but also caps tokens per call: stay well below.
    ...embedBatchOptions(256),
  })
  .superRefine((o, ctx) => {
    if (!o.endpoint && !o.resourceName) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'set "endpoint" (https://<resource>.openai.azure.com) or "resourceName"' })
    if (!o.apiKey && !o.azureADToken && !o.bearerToken) ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'set "apiKey", or an Entra ID token as "azureADToken"' })
  })
export type AzureOpenAIOptions = z.input<typeof AzureOpenAIOptions>

/**
 * Azure OpenAI: the OpenAI wire format on per-deployment paths
 * (`/openai/deployments/{deployment}/chat/completions?api-version=…`), keyed
 * with `api-key` or an Entra bearer token. The body and chunks are OpenAI's;
 * content-filter results come as finish_reason `content_filter`.
 */
export function azureOpenAIProvider(input: AzureOpenAIOptions, http: HttpClient): Provider {
  const opts = AzureOpenAIOptions.parse(input)
  const id = opts.id
  const endpoint = (opts.endpoint ?? `https://${opts.resourceName}.openai.azure.com`).replace(/\/+$/, '').replace(/\/openai$/, '')
  const v1 = opts.apiVersion === 'v1'
  const query = `?api-version=${encodeURIComponent(opts.apiVersion)}`
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...opts.headers }
  if (opts.apiKey) headers['api-key'] = opts.apiKey
  else headers.authorization = `Bearer ${opts.azureADToken ?? opts.bearerToken}`
  const listed = [...new Set([...Object.keys(opts.deployments), ...(opts.models ?? []).map((m) => (typeof m === 'string' ? m : m.id))])]
  const batching = { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }

  const deploymentFor = (model: string) => opts.deployments[model] ?? model
  const url = (deployment: string, op: 'chat/completions' | 'embeddings') =>
    v1 ? `${endpoint}/openai/v1/${op}` : `${endpoint}/openai/deployments/${encodeURIComponent(deployment)}/${op}${query}`

  async function post(model: string, op: 'chat/completions' | 'embeddings', body: Record<string, unknown>, signal: AbortSignal): Promise<HttpResponse> {
    const deployment = deploymentFor(model)
    // The deployment path names the model; the v1 API reads it from the body.
    body.model = deployment
    const res = await sendWithin(http, id, url(deployment, op), { method: 'POST', headers, body: JSON.stringify(body), signal }, opts.timeoutMs)
    if (res.status >= 400) throw await azureError(id, res, { model, deployment })
    return res
  }

  return {
    id,
    type: 'azure-openai',
    // Azure has no data-plane call listing deployments: the config names them.
    async models() {
      return listed.map((m) => ({ id: m, ownedBy: id }))
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
        const res = await post(req.model, 'chat/completions', toOpenAIChatBody(req, req.model, req.stream), signal)
        yield* eventsFromOpenAIResponse(id, res, req.stream)
      })
    },
    embedsTokens: true,
    async embed(req: EmbedRequest, ctx: CallContext) {
      const items: Array<string | number[]> = req.tokens ?? req.input
      return embedInBatches(id, items, batching, ctx.signal, async (batch, signal) => {
        const body: Record<string, unknown> = { input: batch, encoding_format: 'float' }
        if (req.dimensions) body.dimensions = req.dimensions
        if (req.user) body.user = req.user
        const res = await post(req.model, 'embeddings', body, signal)
        return embeddingsFromOpenAI(id, await res.json())
      })
    },
    async health(signal) {
      try {
        const res = await send(http, id, v1 ? `${endpoint}/openai/v1/models` : `${endpoint}/openai/models${query}`, { method: 'GET', headers, signal })
        const ok = res.status < 400
        const detail = ok ? undefined : (await azureError(id, res, { model: '', deployment: '' })).message
        if (ok) await res.discard()
        return { ok, ...(detail ? { detail } : {}) }
      } catch (err) {
        return { ok: false, detail: GatewayError.from(err).message }
      }
    },
  }
}
