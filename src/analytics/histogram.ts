/**
 * A mergeable latency histogram: sparse log-spaced buckets (each 20% wider
 * than the previous, from 1 ms), so p50/p95 over any set of rollups are within
 * ~10% of the true value while a bucket stays a few dozen numbers at most.
 * Plain JSON, so it is stored as is.
 */
export interface Histogram {
  count: number
  sum: number
  min: number
  max: number
  /** Bucket index → count. Bucket i holds values in (R^(i-1), R^i] ms; index 0 holds ≤ 1 ms. */
  buckets: Record<string, number>
}

const R = 1.2
const LOG_R = Math.log(R)

export function emptyHistogram(): Histogram {
  return { count: 0, sum: 0, min: 0, max: 0, buckets: {} }
}

export function bucketIndex(value: number): number {
  return value <= 1 ? 0 : Math.ceil(Math.log(value) / LOG_R - 1e-9)
}

export function observe(h: Histogram, value: number): void {
  const v = Number.isFinite(value) && value > 0 ? value : 0
  h.min = h.count === 0 ? v : Math.min(h.min, v)
  h.max = h.count === 0 ? v : Math.max(h.max, v)
  h.count++
  h.sum += v
  const i = bucketIndex(v)
  h.buckets[i] = (h.buckets[i] ?? 0) + 1
}

export function mergeHistogram(into: Histogram, from: Histogram): void {
  if (from.count === 0) return
  into.min = into.count === 0 ? from.min : Math.min(into.min, from.min)
  into.max = into.count === 0 ? from.max : Math.max(into.max, from.max)
  into.count += from.count
  into.sum += from.sum
  for (const [i, n] of Object.entries(from.buckets)) into.buckets[i] = (into.buckets[i] ?? 0) + n
}

/** The q-quantile (0..1), interpolated inside its bucket and clamped to the observed min/max; null when empty. */
export function quantile(h: Histogram, q: number): number | null {
  if (h.count === 0) return null
  const rank = q * h.count
  const indices = Object.keys(h.buckets)
    .map(Number)
    .sort((a, b) => a - b)
  let seen = 0
  for (const i of indices) {
    const n = h.buckets[i]
    if (seen + n >= rank) {
      const lower = i === 0 ? 0 : R ** (i - 1)
      const upper = i === 0 ? 1 : R ** i
      const frac = n === 0 ? 0 : Math.max(0, rank - seen) / n
      const v = lower + (upper - lower) * frac
      return Math.min(h.max, Math.max(h.min, v))
    }
    seen += n
  }
  return h.max
}
