import { z } from 'zod'
import type { Storage } from 'unstorage'
import { ConfigError, formatPath } from '../config.js'
import type { ChatEvent, ChatRequest, Usage } from '../core/types.js'
import { GatewayError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { CallContext, Provider } from '../providers/types.js'
import { cacheKey, modelTag, scopeOf } from './cache-key.js'
import { aesGcmSealer, isSealed, type Sealer } from './cache-crypto.js'
import { Flight, type FlightReader } from './cache-flight.js'

/** The `cache` section of gateway.config.json. TTLs are in seconds. */
export const CacheConfig = z.object({
  enabled: z.boolean().default(false),
  /** How long an answer stays; per model in `ttlByModel` (by the name clients send), per request in `x-gateway-cache-ttl`. */
  ttl: z.number().int().positive().default(3600),
  ttlByModel: z.record(z.string(), z.number().int().positive()).default(() => ({})),
  /** The largest `x-gateway-cache-ttl` a client may ask for. */
  maxTtl: z.number().int().positive().default(30 * 24 * 3600),
  /** Also cache answers sampled with a temperature other than 0 (by default only deterministic requests are). */
  anyTemperature: z.boolean().default(false),
  /** Answers larger than this (as stored) are passed through but not stored. */
  maxEntryBytes: z.number().int().positive().default(1024 * 1024),
  /** Secret for AES-GCM encryption at rest (e.g. `openssl rand -base64 32`); unset = entries stored as JSON. */
  encryptionKey: z.string().min(16, 'use at least 16 characters (e.g. openssl rand -base64 32)').optional(),
  /** A storage read slower than this counts as a miss, so a slow Redis never slows answers down much. */
  lookupTimeoutMs: z.number().int().positive().default(250),
})
export type CacheConfig = z.infer<typeof CacheConfig>

export function parseCacheConfig(raw: unknown): CacheConfig {
  const parsed = CacheConfig.safeParse(raw ?? {})
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  - cache.${formatPath(i.path)}: ${i.message}`)
  throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
}

export type CacheStatus = 'hit' | 'miss' | 'bypass'
export type CacheMode = 'use' | 'bypass' | 'refresh'

export interface CacheStageOptions {
  config: CacheConfig
  /** The `cache` storage mount. */
  store: Storage
  logger: Logger
  /** Clock in ms; injectable so tests can expire entries. */
  now?: () => number
}

export interface InvalidateFilter {
  /** The model name as clients send it. */
  model?: string
  /** An API key's id (`key_…`, as in logs), or `open` for a gateway without keys. */
  keyId?: string
}

export interface CacheStage extends Provider {
  invalidate(filter: InvalidateFilter): Promise<number>
}

const Num = z.number()
const UsageSchema = z.object({
  inputTokens: Num,
  outputTokens: Num,
  cacheReadTokens: Num.optional(),
  cacheWriteTokens: Num.optional(),
  reasoningTokens: Num.optional(),
  estimated: z.boolean().optional(),
})
const EventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), id: z.string().optional(), model: z.string().optional() }),
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('thinking'), text: z.string(), signature: z.string().optional(), redacted: z.string().optional() }),
  z.object({ type: z.literal('tool_call_start'), index: Num, id: z.string(), name: z.string() }),
  z.object({ type: z.literal('tool_call_delta'), index: Num, arguments: z.string() }),
  z.object({ type: z.literal('usage'), usage: UsageSchema }),
  z.object({
    type: z.literal('finish'),
    reason: z.enum(['stop', 'length', 'tool_calls', 'content_filter', 'stop_sequence', 'error']),
    stopSequence: z.string().optional(),
  }),
])
/** A stored answer: the event stream exactly as the provider produced it. */
const Entry = z.object({
  v: z.literal(1),
  createdAt: Num,
  expiresAt: Num,
  servedModel: z.string().optional(),
  provider: z.string().optional(),
  events: z.array(EventSchema),
})
type Entry = z.infer<typeof Entry>

const MODES = new Set<string>(['use', 'bypass', 'refresh'])

/**
 * The response cache: a pipeline stage in front of the router. Deterministic
 * requests (temperature 0, unless `anyTemperature`) are answered from storage
 * when an identical request of the same API key was answered before; a client
 * steers it per request with `x-gateway-cache: use|bypass|refresh`,
 * `x-gateway-cache-ttl: <seconds>` and `Cache-Control: no-store|no-cache`.
 *
 * A miss streams through untouched while it is recorded, and is stored only
 * once it completed. Identical requests that arrive meanwhile share that one
 * upstream call. Storage failures are logged and count as misses: the cache
 * never fails a request.
 */
export function cacheStage(inner: Provider, options: CacheStageOptions): CacheStage {
  const { config, store, logger } = options
  const now = options.now ?? Date.now
  const flights = new Map<string, Flight>()
  let sealer: Promise<Sealer> | undefined = config.encryptionKey ? aesGcmSealer(config.encryptionKey) : undefined
  const warned = new Map<string, number>()

  /** Storage trouble is logged at most once a minute per kind: a Redis outage must not flood the log. */
  const warn = (what: string, err: unknown) => {
    const t = now()
    if ((warned.get(what) ?? -Infinity) > t - 60_000) return
    warned.set(what, t)
    logger.warn(`cache ${what} failed; serving without the cache`, { error: err instanceof Error ? err.message : String(err) })
  }

  async function load(key: string): Promise<Entry | undefined> {
    let raw: unknown
    try {
      raw = await withTimeout(store.getItem(key), config.lookupTimeoutMs)
    } catch (err) {
      warn('lookup', err)
      return undefined
    }
    if (raw === null || raw === undefined) return undefined
    let value: unknown = raw
    try {
      if (sealer) {
        // With a key configured, only sealed entries count: a plaintext one was not written by us.
        if (!isSealed(raw)) throw new Error('entry is not encrypted')
        value = JSON.parse(await (await sealer).open(raw, key))
      } else if (typeof raw === 'string') value = JSON.parse(raw)
    } catch (err) {
      warn('decode', err)
      void store.removeItem(key).catch(() => {})
      return undefined
    }
    const entry = Entry.safeParse(value)
    if (!entry.success) {
      warn('decode', new Error('stored entry has an unexpected shape'))
      void store.removeItem(key).catch(() => {})
      return undefined
    }
    if (entry.data.expiresAt <= now()) {
      void store.removeItem(key).catch(() => {})
      return undefined
    }
    return entry.data
  }

  async function save(key: string, flight: Flight, meta: Record<string, unknown>, ttl: number): Promise<void> {
    const createdAt = now()
    const entry: Entry = {
      v: 1,
      createdAt,
      expiresAt: createdAt + ttl * 1000,
      ...(typeof meta.servedModel === 'string' ? { servedModel: meta.servedModel } : {}),
      ...(typeof meta.provider === 'string' ? { provider: meta.provider } : {}),
      events: flight.events as Entry['events'],
    }
    const json = JSON.stringify(entry)
    const value = sealer ? await (await sealer).seal(json, key) : json
    if (value.length > config.maxEntryBytes) return
    await store.setItem(key, value, { ttl })
  }

  function open(req: ChatRequest, ctx: CallContext, key: string, mode: CacheMode, ttl: number): () => Promise<Source> {
    const meta = ctx.meta
    return async () => {
      if (mode === 'use') {
        const flying = flights.get(key)
        if (flying) return follow(flying, ctx)
        const entry = await load(key)
        if (entry) return replay(entry, ctx)
        // Another identical request may have taken off while this one looked.
        const late = flights.get(key)
        if (late) return follow(late, ctx)
      }
      if (meta) meta.cache = 'miss'
      const flight = new Flight()
      flight.meta = meta
      flights.set(key, flight)
      const land = () => {
        if (flights.get(key) === flight) flights.delete(key)
      }
      flight.start((signal) => inner.chat(req, { ...ctx, signal }), land)
      const reader = flight.subscribe(ctx.signal)
      // On Workers the write may finish after the answer has gone: keep the invocation alive for it.
      const stored = flight.done.then(async (ok) => {
        try {
          const finished = flight.events.some((e) => e.type === 'finish' && e.reason !== 'error')
          if (ok && finished && flight.size <= config.maxEntryBytes) await save(key, flight, meta ?? {}, ttl)
        } catch (err) {
          warn('store', err)
        } finally {
          // Late arrivals keep joining the finished flight until the entry is readable.
          land()
        }
      })
      ctx.waitUntil?.(stored)
      return { next: () => reader.next(), cancel: () => reader.cancel() }
    }
  }

  function follow(flight: Flight, ctx: CallContext): Source {
    const reader: FlightReader = flight.subscribe(ctx.signal)
    if (ctx.meta) ctx.meta.cache = 'hit'
    let copied = false
    return {
      next: async () => {
        const r = await reader.next()
        if (!copied && ctx.meta) {
          copied = true
          // The router recorded the served model on the first request's meta; share it.
          const first = flight.meta
          if (first) {
            if (typeof first.servedModel === 'string') ctx.meta.servedModel = first.servedModel
            if (typeof first.provider === 'string') ctx.meta.provider = first.provider
          }
        }
        return r.done ? r : { done: false, value: asCached(r.value) }
      },
      cancel: () => reader.cancel(),
    }
  }

  function replay(entry: Entry, ctx: CallContext): Source {
    if (ctx.meta) {
      ctx.meta.cache = 'hit'
      if (entry.servedModel) ctx.meta.servedModel = entry.servedModel
      if (entry.provider) ctx.meta.provider = entry.provider
    }
    const events = (entry.events as ChatEvent[]).map(asCached)
    return {
      // The whole answer is at hand: hand it over in one pull, not one pull per event.
      rest: () => events,
      next: async () => ({ done: true, value: undefined }),
      cancel: () => {},
    }
  }

  return {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    ...(inner.embed ? { embed: inner.embed.bind(inner) } : {}),
    ...(inner.countTokens ? { countTokens: inner.countTokens.bind(inner) } : {}),
    ...(inner.health ? { health: inner.health.bind(inner) } : {}),

    chat(req, ctx) {
      let decision: { mode: CacheMode | 'skip'; ttl: number }
      try {
        decision = decide(req, ctx, config)
      } catch (err) {
        return failed(err)
      }
      if (decision.mode === 'skip' || decision.mode === 'bypass') {
        if (ctx.meta) ctx.meta.cache = 'bypass'
        return inner.chat(req, ctx)
      }
      const mode = decision.mode
      const ttl = decision.ttl
      return lazyStream(async () => open(req, ctx, await cacheKey(req, scopeOf(ctx.keyId)), mode, ttl)(), ctx.signal)
    },

    async invalidate(filter) {
      const tag = filter.model === undefined ? undefined : await modelTag(filter.model)
      const keys = await store.getKeys(filter.keyId ?? '')
      const doomed = keys.filter((k) => {
        const [scope, model] = k.split(':')
        return (filter.keyId === undefined || scope === filter.keyId) && (tag === undefined || model === tag)
      })
      await Promise.all(doomed.map((k) => store.removeItem(k)))
      return doomed.length
    },
  }
}

interface Source {
  /** Every event at once, when the source has them all (a replay). */
  rest?(): ChatEvent[]
  next(): Promise<IteratorResult<ChatEvent, undefined>>
  cancel(): void
}

/**
 * A stream whose source is found asynchronously. The lookup runs in the first
 * pull (not in start): workerd may pull before an async start settles.
 */
function lazyStream(find: () => Promise<Source>, signal: AbortSignal): ReadableStream<ChatEvent> {
  let source: Source | undefined
  let finding: Promise<Source> | undefined
  return new ReadableStream<ChatEvent>(
    {
      async pull(controller) {
        try {
          if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.')
          if (!source) {
            source = await (finding ??= find())
            if (source.rest) {
              for (const e of source.rest()) controller.enqueue(e)
              controller.close()
              return
            }
          }
          const r = await source.next()
          if (r.done) controller.close()
          else controller.enqueue(r.value)
        } catch (err) {
          controller.error(GatewayError.from(err))
        }
      },
      async cancel() {
        if (source) source.cancel()
        else void finding?.then((s) => s.cancel(), () => {})
      },
    },
    { highWaterMark: 0 },
  )
}

/**
 * A replayed answer cost no upstream tokens. The counts stay those of the
 * original answer (clients size context windows by them), with every prompt
 * token reported as read from cache and nothing written to one.
 */
function asCached(e: ChatEvent): ChatEvent {
  if (e.type !== 'usage') return e
  const { cacheWriteTokens: _written, ...usage } = e.usage
  return { type: 'usage', usage: { ...usage, cacheReadTokens: usage.inputTokens } satisfies Usage }
}

function decide(req: ChatRequest, ctx: CallContext, config: CacheConfig): { mode: CacheMode | 'skip'; ttl: number } {
  const headers = ctx.headers
  const asked = headers?.get('x-gateway-cache')?.trim().toLowerCase()
  if (asked !== undefined && asked !== '' && !MODES.has(asked)) {
    throw new GatewayError('invalid_request', `Invalid value for header 'x-gateway-cache': expected use, bypass or refresh, got "${asked.slice(0, 40)}".`, {
      param: 'x-gateway-cache',
      code: 'invalid_header',
    })
  }
  let ttl = config.ttlByModel[req.model] ?? config.ttl
  const ttlHeader = headers?.get('x-gateway-cache-ttl')?.trim()
  if (ttlHeader !== undefined && ttlHeader !== '') {
    const n = /^\d{1,10}$/.test(ttlHeader) ? Number(ttlHeader) : NaN
    if (!(n >= 1 && n <= config.maxTtl)) {
      throw new GatewayError('invalid_request', `Invalid value for header 'x-gateway-cache-ttl': expected whole seconds from 1 to ${config.maxTtl}.`, {
        param: 'x-gateway-cache-ttl',
        code: 'invalid_header',
      })
    }
    ttl = n
  }
  const control = headers?.get('cache-control')?.toLowerCase() ?? ''
  if (/(^|,)\s*no-store\s*(,|$)/.test(control)) return { mode: 'bypass', ttl }
  if (asked === 'bypass' || asked === 'refresh' || asked === 'use') return { mode: asked, ttl }
  if (/(^|,)\s*no-cache\s*(,|$)/.test(control)) return { mode: 'refresh', ttl }
  const deterministic = req.temperature === 0 || config.anyTemperature
  return { mode: deterministic && (req.n ?? 1) === 1 ? 'use' : 'skip', ttl }
}

function failed(err: unknown): ReadableStream<ChatEvent> {
  return new ReadableStream({ start: (c) => c.error(GatewayError.from(err)) })
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
