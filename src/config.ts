import { z } from 'zod'

/**
 * gateway.config.json, validated. Provider, alias and stage sections are
 * loose objects: each provider and stage validates its own options, so a new
 * provider adds its fields without touching this file.
 */
const ProviderConfig = z.looseObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'provider ids may use letters, digits, "_", "." and "-"'),
  type: z.string(),
  /** Models the provider serves when it cannot list them itself (or to restrict the list). */
  models: z.array(z.union([z.string(), z.looseObject({ id: z.string() })])).optional(),
})

const AliasConfig = z.looseObject({
  strategy: z.enum(['fallback', 'round-robin', 'weighted', 'least-busy', 'lowest-latency']).default('fallback'),
  targets: z.array(z.union([z.string(), z.looseObject({ model: z.string(), weight: z.number().positive().optional() })])).min(1),
})

const DriverConfig = z.looseObject({
  driver: z.enum(['memory', 'fs', 'redis', 'cloudflare-kv-binding']).default('memory'),
})

export const ConfigSchema = z.object({
  server: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(4000),
      apiKeys: z.array(z.string().min(1)).default(() => []),
      /** Keys allowed to use admin endpoints (cache invalidation, analytics wipe); defaults to apiKeys. */
      adminKeys: z.array(z.string().min(1)).optional(),
      /** Start even when bound to a non-loopback address with no API keys. */
      allowOpen: z.boolean().default(false),
      cors: z.object({ origins: z.array(z.string()).default(() => []) }).prefault({}),
      bodyLimit: z.number().int().positive().default(20 * 1024 * 1024),
      /** Let clients send http(s) image URLs (otherwise data: URLs only). */
      allowRemoteMedia: z.boolean().default(false),
      logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
      /** Proxies (CIDRs) whose X-Forwarded-For is believed, e.g. a local cloudflared: ["127.0.0.1/32", "::1/128"]. */
      trustedProxies: z.array(z.string()).default(() => []),
      /** Client addresses (CIDRs, IPv4 and IPv6) allowed in; empty allows all. Applied after trustedProxies. */
      ipAllow: z.array(z.string()).default(() => []),
    })
    .prefault({}),
  providers: z.array(ProviderConfig).default(() => []),
  models: z.record(z.string(), AliasConfig).default(() => ({})),
  /** Client model names mapped onto provider models, e.g. dated Claude ids. */
  modelMap: z.record(z.string(), z.string()).default(() => ({})),
  storage: z.record(z.string(), DriverConfig).default(() => ({})),
  cache: z.looseObject({ enabled: z.boolean().default(false) }).prefault({}),
  analytics: z.looseObject({ enabled: z.boolean().default(false) }).prefault({}),
  streaming: z.looseObject({}).default(() => ({})),
  /** The WebSocket API (GET /v1/ws): limits, liveness, notices (src/ws/options.ts validates it). */
  websocket: z.looseObject({}).default(() => ({})),
  routing: z.looseObject({}).default(() => ({})),
  /** Images, documents, audio, video: size caps, type checks, remote links, conversions (src/pipeline/media.ts validates it). */
  media: z.looseObject({}).default(() => ({})),
  /** What clients in the field need (src/pipeline/model-names.ts, src/routes/tool-pairs.ts). */
  compat: z
    .object({
      /** Repair orphaned tool calls/results in a client's history instead of answering 400. */
      repairToolPairs: z.boolean().default(false),
      /** Dated Claude ids and other field names → the closest served model; false turns it off. */
      modelNames: z.union([z.literal(false), z.looseObject({ map: z.record(z.string(), z.string()).optional(), families: z.boolean().optional() })]).default(() => ({})),
    })
    .prefault({}),
  /** POST /v1/batch and the Batches API. */
  batch: z
    .object({
      /** Requests one POST /v1/batch call may hold. */
      maxItems: z.number().int().positive().default(1000),
      /** Items of one background batch in flight at once. */
      concurrency: z.number().int().positive().max(256).default(4),
      /**
       * Seconds a runner's lease on a background batch lasts (renewed every third of it while the
       * batch runs). Another runner takes over a batch only once its lease has expired: this is how
       * long a batch stalls after the process running it dies.
       */
      leaseSec: z.number().min(1).max(3600).default(60),
    })
    .prefault({}),
  files: z.object({ maxBytes: z.number().int().positive().default(200 * 1024 * 1024) }).prefault({}),
  /** Fine-tuning jobs: in-context adapters and pass-through (src/jobs/fine-tuning/config.ts validates it). */
  fineTuning: z.looseObject({}).default(() => ({})),
  limits: z.looseObject({}).default(() => ({})),
  queue: z.looseObject({}).default(() => ({})),
})

export type GatewayConfig = z.infer<typeof ConfigSchema>
export type ProviderConfig = z.infer<typeof ProviderConfig>
export type AliasConfig = z.infer<typeof AliasConfig>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Replaces `${NAME}` (and `${NAME:-default}`) in every string of a parsed JSON value. */
export function substituteEnv(value: unknown, env: Record<string, string | undefined>, path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (fallback !== undefined) return fallback
      throw new ConfigError(`${path || 'config'}: environment variable ${name} is not set`)
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, path ? `${path}.${k}` : k)
    return out
  }
  return value
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out ? `.${String(seg)}` : String(seg)
  }
  return out
}

/** Provider entries derived from environment variables alone (the quick start). */
export function providersFromEnv(env: Record<string, string | undefined>): ProviderConfig[] {
  const out: ProviderConfig[] = []
  if (env.VSCODE_BRIDGE_URL || env.VSCODE_BRIDGE_TOKEN) {
    out.push({ id: 'vscode', type: 'vscode-bridge', url: env.VSCODE_BRIDGE_URL ?? 'http://127.0.0.1:3775', token: env.VSCODE_BRIDGE_TOKEN ?? '' })
  }
  if (env.OLLAMA_BASE_URL) out.push({ id: 'ollama', type: 'ollama', baseURL: env.OLLAMA_BASE_URL })
  if (env.OPENAI_COMPATIBLE_BASE_URL) {
    out.push({ id: 'openai', type: 'openai-compatible', baseURL: env.OPENAI_COMPATIBLE_BASE_URL, apiKey: env.OPENAI_COMPATIBLE_API_KEY })
  }
  return out
}

/**
 * Builds the config from an optional parsed file and the environment. With no
 * provider configured anywhere, the deterministic `mock` provider is added so
 * that a fresh install answers requests at once.
 */
export function loadConfig(raw: unknown, env: Record<string, string | undefined>): GatewayConfig {
  const substituted = substituteEnv(raw ?? {}, env) as Record<string, unknown>
  const parsed = ConfigSchema.safeParse(substituted)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${formatPath(i.path) || '(root)'}: ${i.message}`)
    throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
  }
  const config = parsed.data
  if (env.PORT) {
    const port = Number(env.PORT)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT: not a port number: ${env.PORT}`)
    config.server.port = port
  }
  if (env.HOST) config.server.host = env.HOST
  if (env.GATEWAY_API_KEYS) {
    config.server.apiKeys = [...config.server.apiKeys, ...env.GATEWAY_API_KEYS.split(',').map((k) => k.trim()).filter(Boolean)]
  }
  const fromEnv = providersFromEnv(env).filter((p) => !config.providers.some((q) => q.id === p.id))
  config.providers.push(...fromEnv)
  if (config.providers.length === 0) config.providers.push({ id: 'mock', type: 'mock' })
  const ids = new Set<string>()
  for (const [i, p] of config.providers.entries()) {
    if (ids.has(p.id)) throw new ConfigError(`invalid gateway config:\n  - providers[${i}].id: duplicate provider id "${p.id}"`)
    ids.add(p.id)
  }
  return config
}
