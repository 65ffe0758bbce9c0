import { z } from 'zod'
import type { ProviderConfig } from '../../config.js'
import { ConfigError } from '../../config.js'
import { sendWithin, upstreamError, type HttpClient } from '../../providers/shared/http.js'
import type { FineTuningJob, JobCheckpoint, JobEvent } from './job.js'
import type { CreateJobInput } from './runner.js'
import { vertexFineTuning } from './vertex.js'

/** A job as the provider reports it, in OpenAI's shape, with the provider's ids, file ids and model names. */
export type RemoteJob = Partial<FineTuningJob> & { id?: unknown }

export interface Page<T> {
  data: T[]
  has_more: boolean
}

/** A training or validation file of ours, to be put where the provider's jobs read it. */
export interface SourceFile {
  id: string
  filename: string
  content: string
}

/**
 * An upstream that really fine-tunes, seen through OpenAI's job objects:
 * OpenAI's own API (openai-compatible, Azure OpenAI) maps one to one; other
 * APIs (Vertex AI) translate to and from it.
 */
export interface FineTuningUpstream {
  readonly provider: string
  /**
   * Stages the files and creates the job from OpenAI's create body (with the
   * provider's model name). `files` maps each staged file's id there to ours.
   */
  createJob(body: CreateJobInput, source: { training: SourceFile; validation: SourceFile | null }, signal: AbortSignal): Promise<{ job: RemoteJob; files: Record<string, string> }>
  getJob(id: string, signal: AbortSignal): Promise<RemoteJob>
  cancelJob(id: string, signal: AbortSignal): Promise<RemoteJob>
  /** Newest first; `after` is the last event id of the previous page. */
  listEvents(id: string, page: { after?: string; limit: number }, signal: AbortSignal): Promise<Page<JobEvent>>
  listCheckpoints(id: string, page: { after?: string; limit: number }, signal: AbortSignal): Promise<Page<JobCheckpoint>>
  /** A result file's content. */
  fileContent(id: string, signal: AbortSignal): Promise<string>
  /** Deletes the model job `jobId` made there (`model`: its name there); whether it was deleted. */
  deleteModel(model: string, jobId: string, signal: AbortSignal): Promise<boolean>
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
 * base URL, or on Azure OpenAI's `/openai/…?api-version=` data plane; Vertex
 * AI's tuningJobs with datasets staged in Cloud Storage.
 */
export function fineTuningUpstream(config: ProviderConfig, http: HttpClient): FineTuningUpstream {
  if (config.type === 'vertex') return vertexFineTuning(config, http)
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
    throw new ConfigError(`invalid gateway config:\n  - fineTuning.passThrough: provider "${config.id}" is of type ${config.type}, which has no fine-tuning API the gateway can pass jobs to (openai-compatible, azure-openai and vertex do).`)
  }
  const id = config.id

  async function request(method: 'GET' | 'POST' | 'DELETE', path: string, body: string | Uint8Array | undefined, extra: Record<string, string>, signal: AbortSignal) {
    const res = await sendWithin(http, id, url(path), { method, headers: { ...headers, ...extra }, body, signal }, TIMEOUT_MS)
    if (res.status >= 400) throw await upstreamError(id, res)
    return res
  }

  async function uploadFile(file: SourceFile, signal: AbortSignal): Promise<string> {
    const form = new FormData()
    form.set('purpose', 'fine-tune')
    form.set('file', new Blob([file.content], { type: 'application/jsonl' }), file.filename)
    // Response serialises the form with its boundary, the same way on every runtime.
    const encoded = new Response(form)
    const bytes = new Uint8Array(await encoded.arrayBuffer())
    const res = await request('POST', '/files', bytes, { 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data' }, signal)
    const answer = (await res.json()) as { id?: unknown }
    if (typeof answer.id !== 'string') throw new Error('upload answer has no file id')
    return answer.id
  }

  async function call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    const res = await request(method, `/fine_tuning${path}`, body === undefined ? undefined : JSON.stringify(body), body === undefined ? {} : { 'content-type': 'application/json' }, signal)
    return res.json()
  }

  async function page<T>(path: string, opts: { after?: string; limit: number }, signal: AbortSignal): Promise<Page<T>> {
    const q = new URLSearchParams({ limit: String(opts.limit), ...(opts.after ? { after: opts.after } : {}) })
    const answer = (await call('GET', `${path}?${q}`, undefined, signal)) as { data?: T[]; has_more?: boolean }
    return { data: Array.isArray(answer.data) ? answer.data : [], has_more: answer.has_more === true }
  }

  const job = (id: string) => `/jobs/${encodeURIComponent(id)}`
  return {
    provider: id,
    async createJob(body, source, signal) {
      const files: Record<string, string> = {}
      const training = await uploadFile(source.training, signal)
      files[training] = source.training.id
      const validation = source.validation ? await uploadFile(source.validation, signal) : undefined
      if (validation) files[validation] = source.validation!.id
      const answer = (await call('POST', '/jobs', { ...body, training_file: training, ...(validation ? { validation_file: validation } : {}) }, signal)) as RemoteJob
      return { job: answer, files }
    },
    getJob: (remote, signal) => call('GET', job(remote), undefined, signal) as Promise<RemoteJob>,
    cancelJob: (remote, signal) => call('POST', `${job(remote)}/cancel`, undefined, signal) as Promise<RemoteJob>,
    listEvents: (remote, opts, signal) => page<JobEvent>(`${job(remote)}/events`, opts, signal),
    listCheckpoints: (remote, opts, signal) => page<JobCheckpoint>(`${job(remote)}/checkpoints`, opts, signal),
    async fileContent(fileId, signal) {
      const res = await request('GET', `/files/${encodeURIComponent(fileId)}/content`, undefined, {}, signal)
      return res.text()
    },
    async deleteModel(model, _jobId, signal) {
      const res = await request('DELETE', `/models/${encodeURIComponent(model)}`, undefined, {}, signal)
      const answer = (await res.json()) as { deleted?: unknown } | null
      return answer?.deleted !== false
    },
  }
}
