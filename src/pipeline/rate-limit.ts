import { z } from 'zod'
import { ConfigError } from '../config.js'
import { estimateRequestTokens, estimateTextTokens } from '../core/tokens.js'
import type { ChatEvent, ChatRequest, EmbedRequest, Usage } from '../core/types.js'
import { GatewayError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { CallContext, Provider } from '../providers/types.js'
import { memoryLimitStore, type BucketSpec, type BucketState, type LimitStore } from './limit-store.js'
import { localError } from './local-error.js'
import { parseSection } from './routing-config.js'
import { tapStream } from './stream-tap.js'

/**
 * Requests-per-minute and tokens-per-minute token buckets per API key, per
 * model (`provider/model`) and per provider, and concurrency caps. Tokens are
 * estimated up front (prompt estimate plus max_tokens, as OpenAI counts them)
 * and corrected with the real usage when the answer ends.
 */
const Limit = z.strictObject({
  rpm: z.number().int().positive().optional(),
  tpm: z.number().int().positive().optional(),
  /** Requests in flight at once; above it, requests wait in the queue (models, providers) or get a 429 (keys). */
  concurrency: z.number().int().positive().optional(),
})
export type Limit = z.infer<typeof Limit>

export const LimitsConfig = z.strictObject({
  store: z
    .discriminatedUnion('driver', [
      z.strictObject({ driver: z.literal('memory') }),
      z.strictObject({ driver: z.literal('redis'), url: z.string().min(1), prefix: z.string().default('gw:rl:') }),
      /** Cloudflare Workers: buckets in one Durable Object (binding of the Worker's env), exact across isolates. */
      z.strictObject({ driver: z.literal('durable-object'), binding: z.string().min(1).default('RATE_LIMITS'), name: z.string().min(1).default('limits') }),
    ])
    .default({ driver: 'memory' }),
  /** By API key (the key itself, or its id `key_…` as shown in logs). */
  keys: z.record(z.string(), Limit).default(() => ({})),
  /** For every key without its own entry (and for all callers when the gateway has no keys). */
  defaultKey: Limit.optional(),
  /** By `provider/model`. */
  models: z.record(z.string(), Limit).default(() => ({})),
  providers: z.record(z.string(), Limit).default(() => ({})),
})
export type LimitsConfig = z.infer<typeof LimitsConfig>

/** What the route layer turns into OpenAI's x-ratelimit-* headers. */
export interface RateLimitInfo {
  requests?: { limit: number; remaining: number; resetMs: number }
  tokens?: { limit: number; remaining: number; resetMs: number }
}

interface Scope {
  /** Bucket key prefix: `k:<keyId>`, `m:<provider/model>`, `p:<provider>`. */
  id: string
  label: string
  limit: Limit
}

export interface RateLimiterOptions {
  now: () => number
  /** The id a key gets in logs (`key_…`); config may name keys either way. */
  keyId: (key: string) => Promise<string>
  logger?: Logger
  /** The Worker's env, where a `durable-object` store finds its namespace. */
  bindings?: Record<string, unknown>
}

export interface Admission {
  /**
   * Corrects the token estimate: to the real usage when known; a request that
   * failed without usage gets its tokens back (the model did no work).
   */
  settle(usage: Usage | undefined, failed: boolean): void
  /** Gives back everything (the request never reached the model). */
  refund(): void
}

const PER_MINUTE = 60_000

export class RateLimiter {
  private readonly keyLimits = new Map<string, Limit>()
  private readonly keyInFlight = new Map<string, number>()
  private storeFailing = false

  private constructor(
    readonly config: LimitsConfig,
    private readonly store: LimitStore,
    private readonly opts: RateLimiterOptions,
  ) {}

  static async create(raw: unknown, opts: RateLimiterOptions, store?: LimitStore): Promise<RateLimiter> {
    const config = parseSection(LimitsConfig, raw, 'limits')
    let s = store
    if (!s) {
      if (config.store.driver === 'redis') {
        const { redisLimitStore } = await import('./redis-limit-store.js')
        s = await redisLimitStore({ url: config.store.url, prefix: config.store.prefix })
      } else if (config.store.driver === 'durable-object') {
        const { durableObjectLimitStore, isDurableObjectNamespace } = await import('./durable-object-limit-store.js')
        const ns = opts.bindings?.[config.store.binding]
        if (!isDurableObjectNamespace(ns)) {
          throw new ConfigError(`invalid gateway config:\n  - limits.store: no Durable Object namespace binding named "${config.store.binding}" in the Worker's env. Add it to wrangler.toml ([[durable_objects.bindings]] name = "${config.store.binding}", class_name = "RateLimitCounter").`)
        }
        s = durableObjectLimitStore(ns, config.store.name)
      } else s = memoryLimitStore()
    }
    const limiter = new RateLimiter(config, s, opts)
    for (const [name, limit] of Object.entries(config.keys)) {
      limiter.keyLimits.set(/^key_[0-9a-f]{16}$/.test(name) ? name : await opts.keyId(name), limit)
    }
    return limiter
  }

  /** True when any API-key limit is configured (the outer stage is needed). */
  get limitsKeys(): boolean {
    return this.keyLimits.size > 0 || this.config.defaultKey !== undefined
  }

  keyScope(keyId: string | undefined): Scope | undefined {
    const id = keyId ?? 'anonymous'
    const limit = (keyId && this.keyLimits.get(keyId)) || this.config.defaultKey
    return limit ? { id: `k:${id}`, label: keyId ? `API key ${keyId}` : 'this gateway', limit } : undefined
  }

  /** The model and provider scopes of a target; empty when neither is limited. */
  targetScopes(provider: string, model: string): Scope[] {
    const out: Scope[] = []
    const key = `${provider}/${model}`
    const m = this.config.models[key]
    if (m && (m.rpm || m.tpm)) out.push({ id: `m:${key}`, label: `model ${key}`, limit: m })
    const p = this.config.providers[provider]
    if (p && (p.rpm || p.tpm)) out.push({ id: `p:${provider}`, label: `provider ${provider}`, limit: p })
    return out
  }

  /** Concurrency cap of a model and of its provider, for the queue. */
  concurrency(provider: string, model: string): { model?: number; provider?: number } {
    return { model: this.config.models[`${provider}/${model}`]?.concurrency, provider: this.config.providers[provider]?.concurrency }
  }

  /**
   * Debits one request and `tokens` from every scope, all or nothing. On
   * success the tightest remaining budget goes to `ctx.meta.rateLimit`; on
   * failure a 429 naming the limit, with Retry-After, is thrown.
   */
  async admit(scopes: Scope[], tokens: number, ctx: CallContext): Promise<Admission> {
    const specs: BucketSpec[] = []
    const owners: Array<{ scope: Scope; kind: 'requests' | 'tokens' }> = []
    for (const scope of scopes) {
      const { rpm, tpm } = scope.limit
      if (rpm) {
        specs.push({ key: `${scope.id}:r`, capacity: rpm, perMs: rpm / PER_MINUTE, cost: 1 })
        owners.push({ scope, kind: 'requests' })
      }
      if (tpm) {
        if (tokens > tpm) {
          throw localError(
            new GatewayError('rate_limit', `Request too large for ${scope.label}: about ${tokens} tokens (prompt estimate plus max_tokens), but the limit is ${tpm} tokens per minute. Send a shorter prompt or a lower max_tokens.`, {
              code: 'rate_limit_exceeded',
              param: 'messages',
              retryable: false,
            }),
          )
        }
        specs.push({ key: `${scope.id}:t`, capacity: tpm, perMs: tpm / PER_MINUTE, cost: tokens })
        owners.push({ scope, kind: 'tokens' })
      }
    }
    const none: Admission = { settle() {}, refund() {} }
    if (specs.length === 0) return none
    const now = this.opts.now()
    let result
    try {
      result = await this.store.take(specs, now)
      this.storeFailing = false
    } catch (err) {
      // A limit store that is down must not take the gateway down with it: let requests through and say so once.
      if (!this.storeFailing) this.opts.logger?.warn('rate-limit store unavailable; not limiting', { error: (err as Error).message })
      this.storeFailing = true
      return none
    }
    const info = tightest(result.states, owners)
    if (!result.ok) {
      const owner = owners[result.failed]
      const state = result.states[result.failed]
      if (ctx.meta) ctx.meta.rateLimitError = info
      const what = owner.kind === 'requests' ? `${owner.scope.limit.rpm} requests per minute` : `${owner.scope.limit.tpm} tokens per minute (this request needs about ${tokens})`
      throw localError(
        new GatewayError('rate_limit', `Rate limit reached for ${owner.scope.label}: ${what}. Try again in ${Math.ceil(state.waitMs / 1000)} s.`, {
          code: 'rate_limit_exceeded',
          retryAfter: Math.max(1, Math.ceil(state.waitMs / 1000)),
        }),
      )
    }
    if (ctx.meta) ctx.meta.rateLimit = merge(ctx.meta.rateLimit as RateLimitInfo | undefined, info)
    const tokenSpecs = specs.filter((s) => s.key.endsWith(':t'))
    let settled = false
    const give = (delta: (s: BucketSpec) => number) => {
      if (settled) return
      settled = true
      const at = this.opts.now()
      for (const s of tokenSpecs) {
        const d = delta(s)
        if (d !== 0) this.store.adjust(s, d, at).catch(() => {})
      }
    }
    return {
      settle: (usage, failed) => {
        if (usage) give(() => tokens - (usage.inputTokens + usage.outputTokens))
        else give((s) => (failed ? s.cost : 0))
      },
      refund: () => {
        if (settled) return
        give((s) => s.cost)
        const reqSpecs = specs.filter((s) => s.key.endsWith(':r'))
        const at = this.opts.now()
        for (const s of reqSpecs) this.store.adjust(s, 1, at).catch(() => {})
      },
    }
  }

  /** Takes one of the key's concurrent slots, or throws a 429. */
  enterKey(scope: Scope): () => void {
    const cap = scope.limit.concurrency
    if (!cap) return () => {}
    const n = this.keyInFlight.get(scope.id) ?? 0
    if (n >= cap) {
      throw localError(
        new GatewayError('rate_limit', `Too many concurrent requests for ${scope.label}: at most ${cap} at a time. Wait for one to finish.`, {
          code: 'concurrency_limit_exceeded',
          retryAfter: 1,
        }),
      )
    }
    this.keyInFlight.set(scope.id, n + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const left = (this.keyInFlight.get(scope.id) ?? 1) - 1
      if (left <= 0) this.keyInFlight.delete(scope.id)
      else this.keyInFlight.set(scope.id, left)
    }
  }

  close(): Promise<void> {
    return this.store.close()
  }
}

function tightest(states: BucketState[], owners: Array<{ kind: 'requests' | 'tokens' }>): RateLimitInfo {
  const info: RateLimitInfo = {}
  states.forEach((s, i) => {
    const kind = owners[i].kind
    const cur = info[kind]
    const remaining = Math.max(0, Math.floor(s.remaining))
    if (!cur || remaining < cur.remaining) info[kind] = { limit: s.capacity, remaining, resetMs: Math.ceil(s.resetMs) }
  })
  return info
}

function merge(a: RateLimitInfo | undefined, b: RateLimitInfo): RateLimitInfo {
  if (!a) return b
  const out: RateLimitInfo = { ...a }
  for (const kind of ['requests', 'tokens'] as const) {
    const x = b[kind]
    if (x && (!out[kind] || x.remaining < out[kind]!.remaining)) out[kind] = x
  }
  return out
}

/** Tokens a chat request is counted for before it runs. */
export function chatTokenEstimate(req: ChatRequest): number {
  return estimateRequestTokens(req) + (req.maxTokens ?? 0)
}

export function embedTokenEstimate(req: EmbedRequest): number {
  let n = 0
  for (const t of req.input) n += estimateTextTokens(t)
  for (const t of req.tokens ?? []) n += t.length
  return n
}

/** Usage seen on a stream, for settling the token estimate. */
export function usageOf(event: ChatEvent, last: Usage | undefined): Usage | undefined {
  return event.type === 'usage' ? { ...last, ...event.usage } : last
}

/**
 * The outer stage: per-API-key limits, checked once per client request
 * whatever model it resolves to.
 */
export function keyRateLimit(inner: Provider, limiter: RateLimiter): Provider {
  return {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    chat(req, ctx) {
      const scope = limiter.keyScope(ctx.keyId)
      if (!scope) return inner.chat(req, ctx)
      let admission: Admission | undefined
      let leave: (() => void) | undefined
      let usage: Usage | undefined
      return tapStream(() => inner.chat(req, ctx), {
        async before() {
          leave = limiter.enterKey(scope)
          admission = await limiter.admit([scope], chatTokenEstimate(req), ctx)
        },
        event(e) {
          usage = usageOf(e, usage)
        },
        end(err) {
          leave?.()
          admission?.settle(usage, err !== undefined)
        },
      })
    },
    embed: inner.embed
      ? async (req, ctx) => {
          const scope = limiter.keyScope(ctx.keyId)
          if (!scope) return inner.embed!(req, ctx)
          const leave = limiter.enterKey(scope)
          try {
            const admission = await limiter.admit([scope], embedTokenEstimate(req), ctx)
            let result
            try {
              result = await inner.embed!(req, ctx)
            } catch (err) {
              admission.settle(undefined, true)
              throw err
            }
            admission.settle(result.usage ? { inputTokens: result.usage.inputTokens, outputTokens: 0 } : undefined, false)
            return result
          } finally {
            leave()
          }
        }
      : undefined,
    countTokens: inner.countTokens ? (req, ctx) => inner.countTokens!(req, ctx) : undefined,
  }
}
