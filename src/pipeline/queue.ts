import { z } from 'zod'
import { GatewayError } from '../errors.js'
import type { ChatRequest, EmbedRequest } from '../core/types.js'
import type { CallContext, Provider, QueueStatus } from '../providers/types.js'
import { localError } from './local-error.js'
import { parseSection } from './routing-config.js'

/**
 * Requests wait here when a model or provider is at its concurrency cap. One
 * ordered list for all waiters: each gets the score `enqueuedAt + rank ×
 * agingMs`, so requests are FIFO within a priority class, a higher class goes
 * first, and a low-priority request that has waited `agingMs` per class of
 * difference overtakes newer high ones (aging: nothing starves). A freed slot
 * goes to the first waiter whose slots are all free.
 */
export const Priority = z.enum(['high', 'normal', 'low'])
export type Priority = z.infer<typeof Priority>
const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 }

export const QueueConfig = z.strictObject({
  /** When false, a request at a concurrency cap is refused at once (429). */
  enabled: z.boolean().default(true),
  /** Waiting requests in all, and per model. */
  maxSize: z.number().int().min(0).default(1000),
  maxPerModel: z.number().int().min(0).default(200),
  /** Longest wait before a 503 with Retry-After. */
  maxWaitMs: z.number().int().positive().default(60_000),
  /** Waiting this long counts as one priority class higher. */
  agingMs: z.number().int().positive().default(10_000),
  defaultPriority: Priority.default('normal'),
  /** The highest x-gateway-priority a key without its own entry (or anyone, on a gateway without keys) may ask for. */
  defaultMaxPriority: Priority.optional(),
  /** Per API key (the key or its `key_…` id): its priority, and the highest it may ask for with x-gateway-priority. */
  keys: z.record(z.string(), z.strictObject({ priority: Priority.optional(), maxPriority: Priority.optional() })).default(() => ({})),
  /** Weight of the newest sample in the service-time EWMA behind wait estimates. */
  serviceAlpha: z.number().gt(0).max(1).default(0.2),
})
export type QueueConfig = z.infer<typeof QueueConfig>

export const PRIORITY_HEADER = 'x-gateway-priority'

/** One capped thing: a model (`model:openai/gpt-4o`) or a provider (`provider:openai`). */
interface Resource {
  key: string
  cap: number
  active: number
  /** EWMA of how long a request holds a slot, ms. */
  serviceMs?: number
}

interface Waiter {
  seq: number
  score: number
  priority: Priority
  model: string
  resources: Resource[]
  enqueuedAt: number
  position: number
  estimate?: number
  onStatus?: (s: QueueStatus) => void
  admit(): void
  fail(err: GatewayError): void
}

export interface Slot {
  /** 0 when no wait was needed. */
  position: number
  estimatedWaitMs?: number
  waitedMs: number
  release(): void
}

export interface QueueOptions {
  now: () => number
  keyId: (key: string) => Promise<string>
}

export interface QueueSnapshot {
  waiting: number
  maxSize: number
  queues: Array<{
    scope: 'model' | 'provider'
    name: string
    concurrency: number
    active: number
    waiting: number
    byPriority: Record<Priority, number>
    serviceMs: number | null
    estimatedWaitMs: number | null
  }>
}

export class RequestQueue {
  private readonly resources = new Map<string, Resource>()
  private readonly waiters: Waiter[] = []
  private readonly perModel = new Map<string, number>()
  private readonly keyPriority = new Map<string, { priority?: Priority; maxPriority?: Priority }>()
  private seq = 0

  private constructor(
    readonly config: QueueConfig,
    private readonly now: () => number,
  ) {}

  static async create(raw: unknown, opts: QueueOptions): Promise<RequestQueue> {
    const q = new RequestQueue(parseSection(QueueConfig, raw, 'queue'), opts.now)
    for (const [name, p] of Object.entries(q.config.keys)) q.keyPriority.set(/^key_[0-9a-f]{16}$/.test(name) ? name : await opts.keyId(name), p)
    return q
  }

  /**
   * The request's priority: the key's own, or what it asks for in
   * x-gateway-priority, never above what the key may use.
   */
  priorityFor(ctx: CallContext): Priority {
    const key = ctx.keyId ? this.keyPriority.get(ctx.keyId) : undefined
    const own = key?.priority ?? this.config.defaultPriority
    const asked = ctx.headers?.get(PRIORITY_HEADER)
    if (asked == null || asked === '') return own
    const parsed = Priority.safeParse(asked.trim().toLowerCase())
    if (!parsed.success) {
      throw new GatewayError('invalid_request', `Invalid ${PRIORITY_HEADER} header "${asked.slice(0, 40)}": expected one of high, normal, low.`, { param: PRIORITY_HEADER, code: 'invalid_priority' })
    }
    const ceiling = key?.maxPriority ?? (key ? own : (this.config.defaultMaxPriority ?? own))
    return RANK[parsed.data] < RANK[ceiling] ? ceiling : parsed.data
  }

  resource(scope: 'model' | 'provider', name: string, cap: number): Resource {
    const key = `${scope}:${name}`
    let r = this.resources.get(key)
    if (!r) {
      r = { key, cap, active: 0 }
      this.resources.set(key, r)
    }
    return r
  }

  /** Waits (or not) for a slot on every resource; rejects with queue_full, queue_timeout or cancelled. */
  acquire(model: string, resources: Resource[], priority: Priority, signal: AbortSignal, onStatus?: (s: QueueStatus) => void): Promise<Slot> {
    if (signal.aborted) return Promise.reject(new GatewayError('cancelled', 'The request was cancelled.'))
    const start = this.now()
    if (resources.every((r) => r.active < r.cap)) return Promise.resolve(this.take(resources, 0, undefined, start))
    if (!this.config.enabled) {
      return Promise.reject(
        localError(new GatewayError('rate_limit', `"${model}" is at its concurrency limit; try again shortly.`, { code: 'concurrency_limit_exceeded', retryAfter: this.retryAfterS(resources, 1) })),
      )
    }
    if (this.waiters.length >= this.config.maxSize || (this.perModel.get(model) ?? 0) >= this.config.maxPerModel) {
      const full = this.waiters.length >= this.config.maxSize ? `the gateway's queue is full (${this.config.maxSize} waiting)` : `the queue for "${model}" is full (${this.config.maxPerModel} waiting)`
      return Promise.reject(localError(new GatewayError('rate_limit', `Too many requests: ${full}. Try again later.`, { code: 'queue_full', retryAfter: this.retryAfterS(resources, this.waiters.length + 1) })))
    }
    return new Promise<Slot>((resolve, reject) => {
      let first: { position: number; estimate?: number } = { position: 1 }
      const settle = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const waiter: Waiter = {
        seq: this.seq++,
        score: start + RANK[priority] * this.config.agingMs,
        priority,
        model,
        resources,
        enqueuedAt: start,
        position: 0,
        onStatus,
        admit: () => {
          settle()
          resolve(this.take(resources, first.position, first.estimate, start))
        },
        fail: (err) => {
          settle()
          reject(err)
        },
      }
      const onAbort = () => this.leave(waiter, new GatewayError('cancelled', 'The request was cancelled while queued.'))
      const timer = setTimeout(() => {
        const retry = this.retryAfterS(resources, waiter.position)
        this.leave(
          waiter,
          localError(new GatewayError('unavailable', `Waited ${this.config.maxWaitMs} ms in the queue for "${model}" without getting a slot. Try again later.`, { code: 'queue_timeout', retryAfter: retry })),
        )
      }, this.config.maxWaitMs)
      signal.addEventListener('abort', onAbort, { once: true })
      this.insert(waiter)
      this.perModel.set(model, (this.perModel.get(model) ?? 0) + 1)
      this.reposition()
      first = { position: waiter.position, estimate: waiter.estimate }
    })
  }

  private take(resources: Resource[], position: number, estimate: number | undefined, enqueuedAt: number): Slot {
    for (const r of resources) r.active++
    const admittedAt = this.now()
    let released = false
    return {
      position,
      ...(estimate !== undefined ? { estimatedWaitMs: estimate } : {}),
      waitedMs: admittedAt - enqueuedAt,
      release: () => {
        if (released) return
        released = true
        const held = this.now() - admittedAt
        for (const r of resources) {
          r.active--
          r.serviceMs = r.serviceMs === undefined ? held : this.config.serviceAlpha * held + (1 - this.config.serviceAlpha) * r.serviceMs
        }
        this.dispatch()
      },
    }
  }

  private insert(w: Waiter): void {
    let lo = 0
    let hi = this.waiters.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const m = this.waiters[mid]
      if (m.score < w.score || (m.score === w.score && m.seq < w.seq)) lo = mid + 1
      else hi = mid
    }
    this.waiters.splice(lo, 0, w)
  }

  private leave(w: Waiter, err: GatewayError): void {
    const i = this.waiters.indexOf(w)
    if (i === -1) return
    this.waiters.splice(i, 1)
    this.forget(w)
    w.fail(err)
    this.dispatch()
  }

  private forget(w: Waiter): void {
    const n = (this.perModel.get(w.model) ?? 1) - 1
    if (n <= 0) this.perModel.delete(w.model)
    else this.perModel.set(w.model, n)
  }

  /** Admits, in order, every waiter whose slots are all free; then tells the rest where they stand. */
  private dispatch(): void {
    let admitted = false
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]
      if (w.resources.every((r) => r.active < r.cap)) {
        this.waiters.splice(i--, 1)
        this.forget(w)
        w.admit() // takes the slots synchronously, so the next waiters see them taken

        admitted = true
      }
    }
    if (admitted) this.reposition()
  }

  /** Positions count the waiters ahead that compete for one of the same slots. */
  private reposition(): void {
    const ahead = new Map<string, number>()
    for (const w of this.waiters) {
      let position = 1
      let estimate: number | undefined = 0
      for (const r of w.resources) {
        const n = (ahead.get(r.key) ?? 0) + 1
        position = Math.max(position, n)
        if (estimate !== undefined) estimate = r.serviceMs === undefined ? undefined : Math.max(estimate, Math.round((n * r.serviceMs) / r.cap))
      }
      for (const r of w.resources) ahead.set(r.key, (ahead.get(r.key) ?? 0) + 1)
      if (position !== w.position || w.estimate === undefined) {
        w.position = position
        w.estimate = estimate
        w.onStatus?.({ position, ...(estimate !== undefined ? { estimatedWaitMs: estimate } : {}) })
      }
    }
  }

  private retryAfterS(resources: Resource[], position: number): number {
    let ms = 0
    for (const r of resources) if (r.serviceMs !== undefined) ms = Math.max(ms, (position * r.serviceMs) / r.cap)
    return Math.max(1, Math.ceil(ms / 1000))
  }

  /** Requests waiting per provider (each waiter once), for the queue-depth gauge. */
  depthByProvider(): Map<string, number> {
    const out = new Map<string, number>()
    for (const r of this.resources.values()) {
      const [scope, ...rest] = r.key.split(':')
      const name = rest.join(':')
      out.set(scope === 'provider' ? name : name.slice(0, name.indexOf('/')), 0)
    }
    for (const w of this.waiters) {
      const provider = w.model.slice(0, w.model.indexOf('/'))
      out.set(provider, (out.get(provider) ?? 0) + 1)
    }
    return out
  }

  snapshot(): QueueSnapshot {
    const waiting = new Map<string, Record<Priority, number>>()
    for (const w of this.waiters) {
      for (const r of w.resources) {
        let counts = waiting.get(r.key)
        if (!counts) waiting.set(r.key, (counts = { high: 0, normal: 0, low: 0 }))
        counts[w.priority]++
      }
    }
    const queues: QueueSnapshot['queues'] = []
    for (const r of this.resources.values()) {
      const byPriority = waiting.get(r.key) ?? { high: 0, normal: 0, low: 0 }
      const depth = byPriority.high + byPriority.normal + byPriority.low
      const [scope, ...rest] = r.key.split(':')
      const full = r.active >= r.cap
      queues.push({
        scope: scope as 'model' | 'provider',
        name: rest.join(':'),
        concurrency: r.cap,
        active: r.active,
        waiting: depth,
        byPriority,
        serviceMs: r.serviceMs === undefined ? null : Math.round(r.serviceMs),
        estimatedWaitMs: !full && depth === 0 ? 0 : r.serviceMs === undefined ? null : Math.round(((depth + 1) * r.serviceMs) / r.cap),
      })
    }
    return { waiting: this.waiters.length, maxSize: this.config.maxSize, queues }
  }
}

/**
 * The outer stage that settles a request's priority once, before routing, so
 * that a bad x-gateway-priority header is a 400 whichever target it reaches.
 */
export function withPriority(inner: Provider, queue: RequestQueue): Provider {
  return {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    chat(req, ctx) {
      try {
        if (ctx.meta) ctx.meta.priority = queue.priorityFor(ctx)
      } catch (err) {
        return new ReadableStream({ start: (c) => c.error(err) })
      }
      return inner.chat(req, ctx)
    },
    ...(inner.embed ? { embed: (req: EmbedRequest, ctx: CallContext) => inner.embed!(req, ctx) } : {}),
    ...(inner.countTokens ? { countTokens: (req: ChatRequest, ctx: CallContext) => inner.countTokens!(req, ctx) } : {}),
  }
}
