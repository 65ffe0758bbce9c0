/**
 * Where token buckets live. One bucket per scope and kind (`m:openai/gpt-4o:r`
 * for a model's requests); `take` debits several buckets all-or-nothing, so a
 * request that fails one limit spends nothing from the others.
 */
export interface BucketSpec {
  key: string
  capacity: number
  /** Refill rate, tokens per millisecond. */
  perMs: number
  cost: number
}

export interface BucketState {
  capacity: number
  /** Tokens left after this take (or now, when the take failed). */
  remaining: number
  /** Milliseconds until the bucket is full again. */
  resetMs: number
  /** Milliseconds until `cost` tokens are available (0 when they are). */
  waitMs: number
}

export interface TakeResult {
  ok: boolean
  states: BucketState[]
  /** Index of the first spec that had too few tokens; -1 when ok. */
  failed: number
}

export interface LimitStore {
  take(specs: BucketSpec[], now: number): Promise<TakeResult>
  /** Adds `delta` tokens (negative: debt), e.g. to correct an estimate with the real usage. */
  adjust(spec: BucketSpec, delta: number, now: number): Promise<void>
  close(): Promise<void>
}

export function stateOf(spec: BucketSpec, tokens: number): BucketState {
  return {
    capacity: spec.capacity,
    remaining: tokens,
    resetMs: Math.max(0, (spec.capacity - tokens) / spec.perMs),
    waitMs: tokens >= spec.cost ? 0 : (spec.cost - tokens) / spec.perMs,
  }
}

/** Buckets in this process's memory: exact, for one instance. */
export function memoryLimitStore(): LimitStore {
  const buckets = new Map<string, { tokens: number; ts: number }>()
  const current = (spec: BucketSpec, now: number) => {
    let b = buckets.get(spec.key)
    if (!b) {
      b = { tokens: spec.capacity, ts: now }
      buckets.set(spec.key, b)
    } else if (now > b.ts) {
      b.tokens = Math.min(spec.capacity, b.tokens + (now - b.ts) * spec.perMs)
      b.ts = now
    }
    return b
  }
  return {
    async take(specs, now) {
      const current_ = specs.map((s) => current(s, now))
      const failed = specs.findIndex((s, i) => current_[i].tokens < s.cost)
      if (failed === -1) for (const [i, s] of specs.entries()) current_[i].tokens -= s.cost
      return { ok: failed === -1, failed, states: specs.map((s, i) => stateOf(s, current_[i].tokens)) }
    },
    async adjust(spec, delta, now) {
      const b = current(spec, now)
      b.tokens = Math.min(spec.capacity, b.tokens + delta)
    },
    async close() {},
  }
}
