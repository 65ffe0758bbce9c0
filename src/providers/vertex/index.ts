import { z } from 'zod'
import type { ChatRequest, EmbedRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedBatchOptions } from '../shared/embed-batches.js'
import type { HttpClient } from '../shared/http.js'
import type { CallContext, Provider } from '../types.js'
import { vertexEmbed } from './embed.js'
import { ServiceAccount, serviceAccountTokens, type TokenSource } from './service-account.js'
import { googleChat, googleCountTokens, type GoogleTransport } from './transport.js'

export const VertexOptions = z.looseObject({
  id: z.string(),
  /** Defaults to the service account's project_id, then GOOGLE_CLOUD_PROJECT. */
  project: z.string().min(1).optional(),
  /** A region such as us-central1, or "global". Defaults to GOOGLE_CLOUD_LOCATION, then us-central1. */
  location: z.string().min(1).optional(),
  /** The service-account key: the JSON object, or its text (e.g. "${GOOGLE_SERVICE_ACCOUNT_JSON}"). */
  credentials: z.union([z.string().min(1), z.looseObject({})]).optional(),
  /** A ready OAuth token (e.g. from `gcloud auth print-access-token`) instead of a service account. */
  accessToken: z.string().min(1).optional(),
  /** Endpoint override (Private Service Connect, tests). */
  baseURL: z.string().url().optional(),
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
  /** Where fine-tuning pass-through stages training files: gs://bucket or gs://bucket/prefix. */
  tuningBucket: z
    .string()
    .regex(/^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/[^\s]*)?$/, { message: 'must be gs://<bucket> or gs://<bucket>/<prefix> (a Cloud Storage bucket name: lowercase letters, digits, "-", "_", ".")' })
    .optional(),
  /** Cloud Storage JSON API endpoint override (tests). */
  storageBaseURL: z.string().url().default('https://storage.googleapis.com'),
  timeoutMs: z.number().int().positive().default(120_000),
  ...embedBatchOptions(250),
})
export type VertexOptions = z.input<typeof VertexOptions>

type Env = Record<string, string | undefined>

/** Served when no models are configured: Vertex has no stable list call for publisher models. */
export const VERTEX_DEFAULT_MODELS = ['gemini-2.5-pro', 'gemini-2.5-flash', 'gemini-2.5-flash-lite', 'gemini-2.0-flash-001', 'text-embedding-005', 'gemini-embedding-001']

function processEnv(): Env {
  return (globalThis as { process?: { env?: Env } }).process?.env ?? {}
}

export interface VertexDeps {
  env?: Env
  /** Clock for token expiry. */
  now?: () => number
}

/** What every Vertex AI call needs: the project's resource prefix and an authorisation header. */
export interface VertexAccess {
  id: string
  project: string
  location: string
  /** https://{location}-aiplatform.googleapis.com, or the baseURL override. */
  host: string
  /** {host}/v1/projects/{project}/locations/{location} */
  prefix: string
  tokens: TokenSource | undefined
  authHeaders(signal: AbortSignal): Promise<Record<string, string>>
  onUnauthenticated(): void
}

/** Credentials, project and location of a vertex provider's (parsed) options. */
export function vertexAccess(opts: z.output<typeof VertexOptions>, http: HttpClient, deps: VertexDeps = {}): VertexAccess {
  const env = deps.env ?? processEnv()
  const id = opts.id
  const rawCredentials = opts.credentials ?? env.GOOGLE_SERVICE_ACCOUNT_JSON
  let tokens: TokenSource | undefined
  let saProject: string | undefined
  if (rawCredentials !== undefined) {
    let json: unknown = rawCredentials
    if (typeof rawCredentials === 'string') {
      try {
        json = JSON.parse(rawCredentials)
      } catch {
        throw new Error(`Vertex provider "${id}": credentials is not JSON (expected the service-account key file's content).`)
      }
    }
    const sa = ServiceAccount.safeParse(json)
    if (!sa.success) throw new Error(`Vertex provider "${id}": credentials is not a service-account key: ${sa.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
    saProject = sa.data.project_id
    tokens = serviceAccountTokens(id, sa.data, http, { now: deps.now })
  } else if (!opts.accessToken) {
    throw new Error(`Vertex provider "${id}": no credentials: set "credentials" to a service-account key (or GOOGLE_SERVICE_ACCOUNT_JSON), or "accessToken".`)
  }
  const project = opts.project ?? saProject ?? env.GOOGLE_CLOUD_PROJECT
  if (!project) throw new Error(`Vertex provider "${id}": no project: set "project" or GOOGLE_CLOUD_PROJECT.`)
  const location = opts.location ?? env.GOOGLE_CLOUD_LOCATION ?? 'us-central1'
  const host = opts.baseURL?.replace(/\/+$/, '') ?? (location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${location}-aiplatform.googleapis.com`)
  const staticToken = opts.accessToken
  return {
    id,
    project,
    location,
    host,
    prefix: `${host}/v1/projects/${encodeURIComponent(project)}/locations/${encodeURIComponent(location)}`,
    tokens,
    async authHeaders(signal) {
      return { authorization: `Bearer ${tokens ? await tokens.token(signal) : staticToken}` }
    },
    onUnauthenticated: () => tokens?.invalidate(),
  }
}

/** Google Vertex AI: Gemini models of the google publisher, authorised with a service account. */
export function vertexProvider(input: VertexOptions, http: HttpClient, deps: VertexDeps = {}): Provider {
  const opts = VertexOptions.parse(input)
  const access = vertexAccess(opts, http, deps)
  const { id, host, prefix, tokens } = access
  const modelIds = opts.models?.map((m) => (typeof m === 'string' ? m : m.id)) ?? VERTEX_DEFAULT_MODELS

  const transport: GoogleTransport = {
    id,
    label: 'Vertex AI',
    http,
    timeoutMs: opts.timeoutMs,
    methodUrl(model, method) {
      // Full resource names (tuned models, other publishers) pass through; bare ids are Google's.
      const path = model.startsWith('projects/') ? `${host}/v1/${model}` : model.startsWith('publishers/') ? `${prefix}/${model}` : `${prefix}/publishers/google/models/${encodeURIComponent(model)}`
      return `${path}:${method}`
    },
    authHeaders: access.authHeaders,
    onUnauthenticated: access.onUnauthenticated,
  }

  return {
    id,
    type: 'vertex',
    async models() {
      return modelIds.map((m): ModelInfo => ({ id: m, ownedBy: 'google', ...(m.includes('embedding') ? { capabilities: { embeddings: true } } : {}) }))
    },
    chat: (req: ChatRequest, ctx: CallContext) => googleChat(transport, req, ctx),
    countTokens: (req: ChatRequest, ctx: CallContext) => googleCountTokens(transport, req, ctx.signal, 'vertex'),
    embed: (req: EmbedRequest, ctx: CallContext) => vertexEmbed(transport, req, { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }, ctx.signal),
    async health(signal) {
      if (!tokens) return { ok: true }
      try {
        await tokens.token(signal ?? AbortSignal.timeout(10_000))
        return { ok: true }
      } catch (err) {
        return { ok: false, detail: GatewayError.from(err).message }
      }
    },
  }
}
