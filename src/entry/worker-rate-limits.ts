import { z } from 'zod'
import { stateOf, type BucketSpec } from '../pipeline/limit-store.js'

/** The part of workerd's Durable Object storage used here. */
interface StorageLike {
  get<T>(keys: string[]): Promise<Map<string, T>>
  put<T>(entries: Record<string, T>): Promise<void>
}
export interface LimitsStateLike {
  storage: StorageLike
}

const Spec = z.object({ key: z.string().min(1).max(512), capacity: z.number().positive(), perMs: z.number().positive(), cost: z.number() })
const Take = z.object({ specs: z.array(Spec).min(1).max(16), now: z.number() })
const Adjust = z.object({ spec: Spec, delta: z.number(), now: z.number() })

interface Bucket {
  tokens: number
  ts: number
}

/**
 * Cloudflare Workers: the token buckets of the RPM/TPM limits
 * (src/pipeline/rate-limit.ts), in one Durable Object so every isolate
 * debits the same buckets (the client is src/pipeline/durable-object-limit-store.ts).
 * The object handles one event at a time and its storage reads hold back
 * other events (input gates), so check-and-debit over several buckets is
 * atomic; buckets are persisted, so an evicted object forgets nothing.
 */
export class RateLimitCounter {
  constructor(private readonly state: LimitsStateLike) {}

  async fetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname
    let raw: unknown
    try {
      raw = await request.json()
    } catch {
      return new Response('malformed JSON', { status: 400 })
    }
    if (path === '/take') {
      const op = Take.safeParse(raw)
      if (!op.success) return new Response(op.error.message, { status: 400 })
      const { specs, now } = op.data
      const buckets = await this.load(specs, now)
      const failed = specs.findIndex((s, i) => buckets[i].tokens < s.cost)
      if (failed === -1) {
        for (const [i, s] of specs.entries()) buckets[i].tokens -= s.cost
      }
      // Not awaited: the output gate holds the answer until the write is durable.
      void this.save(specs, buckets)
      return Response.json({ ok: failed === -1, failed, states: specs.map((s, i) => stateOf(s, buckets[i].tokens)) })
    }
    if (path === '/adjust') {
      const op = Adjust.safeParse(raw)
      if (!op.success) return new Response(op.error.message, { status: 400 })
      const { spec, delta, now } = op.data
      const [bucket] = await this.load([spec], now)
      bucket.tokens = Math.min(spec.capacity, bucket.tokens + delta)
      void this.save([spec], [bucket])
      return Response.json({ ok: true })
    }
    return new Response('not found', { status: 404 })
  }

  /** The buckets refilled up to `now`; a bucket never seen starts full. */
  private async load(specs: BucketSpec[], now: number): Promise<Bucket[]> {
    const stored = await this.state.storage.get<Bucket>(specs.map((s) => s.key))
    return specs.map((s) => {
      const b = stored.get(s.key)
      if (!b) return { tokens: s.capacity, ts: now }
      if (now <= b.ts) return { ...b }
      return { tokens: Math.min(s.capacity, b.tokens + (now - b.ts) * s.perMs), ts: now }
    })
  }

  private save(specs: BucketSpec[], buckets: Bucket[]): Promise<void> {
    const entries: Record<string, Bucket> = {}
    for (const [i, s] of specs.entries()) entries[s.key] = buckets[i]
    return this.state.storage.put(entries)
  }
}
