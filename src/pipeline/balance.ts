import type { Strategy } from './routing-config.js'

/** Live numbers about one target that the balancing strategies read. */
export class TargetStats {
  inFlight = 0
  /** EWMA of the time to first event, ms; undefined until the first sample. */
  latencyMs: number | undefined
  samples = 0

  constructor(private readonly alpha: number) {}

  recordLatency(ms: number): void {
    this.latencyMs = this.latencyMs === undefined ? ms : this.alpha * ms + (1 - this.alpha) * this.latencyMs
    this.samples++
  }
}

export interface Weighted {
  weight: number
  stats: TargetStats
}

export interface BalanceState {
  /** Round-robin cursor of one alias. */
  cursor: number
}

/**
 * The order in which a request tries the candidates: the strategy picks the
 * first, the others follow as fallbacks (a request survives a failing target
 * whatever the strategy).
 */
export function order<T extends Weighted>(strategy: Strategy, candidates: T[], state: BalanceState, random: () => number, explore: number): T[] {
  const n = candidates.length
  if (n <= 1) return candidates
  switch (strategy) {
    case 'fallback':
      return candidates
    case 'round-robin':
      return rotate(candidates, state.cursor++ % n)
    case 'weighted':
      return weightedShuffle(candidates, random)
    case 'least-busy': {
      // Ties rotate, so that an idle pool is used evenly rather than always first-listed.
      const start = state.cursor++ % n
      return rotate(candidates, start)
        .map((c, i) => ({ c, i }))
        .sort((a, b) => a.c.stats.inFlight - b.c.stats.inFlight || a.i - b.i)
        .map((x) => x.c)
    }
    case 'lowest-latency': {
      // Unmeasured targets go first (in rotation, so a burst spreads) so that every target gets a measurement.
      const sorted = rotate(candidates, state.cursor++ % n).sort((a, b) => (a.stats.latencyMs ?? -1) - (b.stats.latencyMs ?? -1))
      if (sorted[0].stats.latencyMs !== undefined && random() < explore) {
        const pick = 1 + Math.floor(random() * (n - 1))
        const [explored] = sorted.splice(pick, 1)
        sorted.unshift(explored)
      }
      return sorted
    }
  }
}

function rotate<T>(items: T[], start: number): T[] {
  // Always a copy: callers sort the result, and the plan's own list must keep its order.
  return [...items.slice(start), ...items.slice(0, start)]
}

/** Sampling without replacement in proportion to weight. */
function weightedShuffle<T extends Weighted>(items: T[], random: () => number): T[] {
  const pool = [...items]
  const out: T[] = []
  while (pool.length) {
    let total = 0
    for (const p of pool) total += p.weight
    let r = random() * total
    let i = 0
    for (; i < pool.length - 1; i++) {
      r -= pool[i].weight
      if (r < 0) break
    }
    out.push(pool.splice(i, 1)[0])
  }
  return out
}

/** Exponential backoff with full jitter in [delay/2, delay], at least the upstream's Retry-After. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number, retryAfterS?: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** attempt)
  const jittered = exp / 2 + random() * (exp / 2)
  return Math.max(jittered, (retryAfterS ?? 0) * 1000)
}
