import { z } from 'zod'
import type { ProviderConfig } from '../../config.js'
import { ConfigError } from '../../config.js'
import { headerDeadline, send, upstreamError, type HttpClient } from '../../providers/shared/http.js'

/** An upstream that runs OpenAI's fine-tuning API for real. */
export interface FineTuningUpstream {
  readonly provider: string
  uploadFile(content: string, filename: string, signal: AbortSignal): Promise<{ id: string }>
  /** `path` below the fine-tuning root, e.g. `/jobs`, `/jobs/{id}/events?limit=5`. */
  call(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, signal: AbortSignal): Promise<unknown>
  fileContent(id: string, signal: AbortSignal): Promise<string>
  deleteModel(model: string, signal: AbortSignal): Promise<unknown>
}

const OpenAIOptions = z.looseObject({ id: z.string(), baseURL: z.string().url(), apiKey: z.string().optional(), headers: z.record(z.string(), z.string()).optional() })
const AzureOptions = z.looseObject({
  id: z.string(),
  endpoint: z.string().url().optional(),
  resourceName: z.string().optional(),
  apiVersion: z.string().default('2024-10-21'),
  apiKey: z.string().optional(),
  azureADToken: z.string().optional(),
  bearerToken: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
})

const TIMEOUT_MS = 60_000

/**
 * The fine-tuning client for a configured provider: OpenAI's routes
 * (`/files`, `/fine_tuning/jobs…`, `/models/{id}`) on an openai-compatible
 * base URL, or on Azure OpenAI's `/openai/…?api-version=` data plane.
 */
export function fineTuningUpstream(config: ProviderConfig, http: HttpClient): FineTuningUpstream {
  let url: (path: string) => string
  const headers: Record<string, string> = { accept: 'application/json' }
  if (config.type === 'openai-compatible') {
    const o = OpenAIOptions.parse(config)
    const base = o.baseURL.replace(/\/+$/, '')
    url = (path) => base + path
    Object.assign(headers, o.headers)
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`
  } else if (config.type === 'azure-openai') {
    const o = AzureOptions.parse(config)
    const endpoint = (o.endpoint ?? `https://${o.resourceName}.openai.azure.com`).replace(/\/+$/, '').replace(/\/openai$/, '')
    const v1 = o.apiVersion === 'v1'
    url = (path) => {
      if (v1) return `${endpoint}/openai/v1${path}`
      const [p, q] = path.split('?')
      return `${endpoint}/openai${p}?api-version=${encodeURIComponent(o.apiVersion)}${q ? `&${q}` : ''}`
    }
    Object.assign(headers, o.headers)
    if (o.apiKey) headers['api-key'] = o.apiKey
    else if (o.azureADToken ?? o.bearerToken) headers.authorization = `Bearer ${o.azureADToken ?? o.bearerToken}`
  } else {
    throw new ConfigError(`invalid gateway config:\n  - fineTuning.passThrough: provider "${config.id}" is of type ${config.type}, which has no fine-tuning API the gateway can pass jobs to (openai-compatible and azure-openai do).`)
  }
  const id = config.id

  async function request(method: 'GET' | 'POST' | 'DELETE', path: string, body: string | Uint8Array | undefined, extra: Record<string, string>, signal: AbortSignal) {
    const deadline = headerDeadline(signal, TIMEOUT_MS, id)
    try {
      const res = await send(http, id, url(path), { method, headers: { ...headers, ...extra }, body, signal: deadline.signal })
      if (res.status >= 400) throw await upstreamError(id, res)
      return res
    } finally {
      deadline.headersReceived()
    }
  }

  return {
    provider: id,
    async uploadFile(content, filename, signal) {
      const form = new FormData()
      form.set('purpose', 'fine-tune')
      form.set('file', new Blob([content], { type: 'application/jsonl' }), filename)
      // Response serialises the form with its boundary, the same way on every runtime.
      const encoded = new Response(form)
      const bytes = new Uint8Array(await encoded.arrayBuffer())
      const res = await request('POST', '/files', bytes, { 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data' }, signal)
      const file = (await res.json()) as { id?: unknown }
      if (typeof file.id !== 'string') throw new Error('upload answer has no file id')
      return { id: file.id }
    },
    async call(method, path, body, signal) {
      const res = await request(method, `/fine_tuning${path}`, body === undefined ? undefined : JSON.stringify(body), body === undefined ? {} : { 'content-type': 'application/json' }, signal)
      return res.json()
    },
    async fileContent(fileId, signal) {
      const res = await request('GET', `/files/${encodeURIComponent(fileId)}/content`, undefined, {}, signal)
      return res.text()
    },
    async deleteModel(model, signal) {
      const res = await request('DELETE', `/models/${encodeURIComponent(model)}`, undefined, {}, signal)
      return res.json()
    },
  }
}
