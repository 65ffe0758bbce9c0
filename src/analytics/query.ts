import { GatewayError } from '../errors.js'
import { quantile } from './histogram.js'
import type { CostModel } from './prices.js'
import { BUCKET_MS, bucketStart, emptyStats, mergeStats, parseSeriesKey, type Dimension, type Granularity, type Stats } from './rollup.js'
import type { Buckets } from './collector.js'

export const RANGES = { '15m': 15 * 60_000, '1h': 3_600_000, '6h': 6 * 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const
export type RangeName = keyof typeof RANGES

export interface Window {
  from: number
  to: number
  granularity: Granularity
}

const MAX_POINTS = 5000

/** Picks the window and granularity of a query; precise errors for windows that cannot be answered. */
export function resolveWindow(q: { range?: RangeName; from?: number; to?: number; granularity?: Granularity | 'auto' }, now: number, minuteRetentionMs: number): Window {
  const to = q.to ?? now
  const from = q.from ?? to - RANGES[q.range ?? '24h']
  if (!(to > from)) throw new GatewayError('invalid_request', "'from' must be before 'to'.", { param: 'from', code: 'invalid_value' })
  const span = to - from
  let g: Granularity
  if (!q.granularity || q.granularity === 'auto') g = span <= 6 * 3_600_000 ? 'minute' : span <= 7 * 86_400_000 ? 'hour' : 'day'
  else g = q.granularity
  if (g === 'minute' && from < now - minuteRetentionMs - BUCKET_MS.minute) {
    throw new GatewayError('invalid_request', `granularity=minute only covers the last ${Math.round(minuteRetentionMs / 3_600_000)} hours; use hour or day for older data.`, {
      param: 'granularity',
      code: 'invalid_value',
    })
  }
  if ((to - bucketStart(from, g)) / BUCKET_MS[g] > MAX_POINTS) {
    throw new GatewayError('invalid_request', `That range has more than ${MAX_POINTS} ${g} buckets; pick a coarser granularity.`, { param: 'granularity', code: 'invalid_value' })
  }
  return { from, to, granularity: g }
}

/** What one set of requests adds up to, as the API shows it. */
export interface Totals {
  requests: number
  errors: number
  cancelled: number
  error_rate: number
  streamed: number
  cache_hits: number
  input_tokens: number
  output_tokens: number
  cached_tokens: number
  latency_ms: { p50: number | null; p95: number | null; avg: number | null }
  ttft_ms: { p50: number | null; p95: number | null }
  queue_wait_ms: { avg: number | null; p95: number | null }
  cost_usd: number
  premium_requests: number
  /** Requests on models with no known price or multiplier (counted as 0 USD). */
  unpriced_requests: number
  error_kinds: Record<string, number>
  statuses: Record<string, number>
}

interface Acc {
  stats: Stats
  usd: number
  premium: number
  unpriced: number
}

function newAcc(): Acc {
  return { stats: emptyStats(), usd: 0, premium: 0, unpriced: 0 }
}

function round(n: number | null, digits = 1): number | null {
  if (n === null) return null
  const f = 10 ** digits
  return Math.round(n * f) / f
}

function totalsOf(a: Acc): Totals {
  const s = a.stats
  return {
    requests: s.requests,
    errors: s.errors,
    cancelled: s.cancelled,
    error_rate: s.requests ? s.errors / s.requests : 0,
    streamed: s.streamed,
    cache_hits: s.cacheHits,
    input_tokens: s.inputTokens,
    output_tokens: s.outputTokens,
    cached_tokens: s.cachedTokens,
    latency_ms: { p50: round(quantile(s.latency, 0.5)), p95: round(quantile(s.latency, 0.95)), avg: s.latency.count ? round(s.latency.sum / s.latency.count) : null },
    ttft_ms: { p50: round(quantile(s.ttft, 0.5)), p95: round(quantile(s.ttft, 0.95)) },
    queue_wait_ms: { avg: s.queueWait.count ? round(s.queueWait.sum / s.queueWait.count) : null, p95: round(quantile(s.queueWait, 0.95)) },
    cost_usd: Math.round(a.usd * 1e6) / 1e6,
    premium_requests: Math.round(a.premium * 100) / 100,
    unpriced_requests: a.unpriced,
    error_kinds: s.errorKinds,
    statuses: s.statuses,
  }
}

function add(acc: Acc, seriesKey: string, s: Stats, cost: CostModel): void {
  mergeStats(acc.stats, s)
  const d = parseSeriesKey(seriesKey)
  const c = cost({ model: d.model, provider: d.provider, requests: s.requests - s.errors, inputTokens: s.inputTokens, outputTokens: s.outputTokens, cachedTokens: s.cachedTokens })
  acc.usd += c.usd
  acc.premium += c.premiumRequests
  if (!c.priced) acc.unpriced += s.requests
}

export interface Summary {
  from: string
  to: string
  granularity: Granularity
  group_by: Dimension | null
  totals: Totals
  groups: Array<{ key: string } & Totals>
}

export function summarize(buckets: Buckets, w: Window, groupBy: Dimension | undefined, cost: CostModel): Summary {
  const total = newAcc()
  const groups = new Map<string, Acc>()
  for (const bucket of buckets.values()) {
    for (const [k, s] of bucket) {
      add(total, k, s, cost)
      if (!groupBy) continue
      const g = parseSeriesKey(k)[groupBy]
      let acc = groups.get(g)
      if (!acc) groups.set(g, (acc = newAcc()))
      add(acc, k, s, cost)
    }
  }
  return {
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
    granularity: w.granularity,
    group_by: groupBy ?? null,
    totals: totalsOf(total),
    groups: [...groups.entries()].map(([key, acc]) => ({ key, ...totalsOf(acc) })).sort((a, b) => b.requests - a.requests || a.key.localeCompare(b.key)),
  }
}

/** Column arrays, one value per bucket: the shape charting libraries take as is. */
export interface SeriesColumns {
  requests: number[]
  errors: number[]
  error_rate: number[]
  input_tokens: number[]
  output_tokens: number[]
  cost_usd: number[]
  latency_p50_ms: Array<number | null>
  latency_p95_ms: Array<number | null>
}

export interface Timeseries {
  from: string
  to: string
  granularity: Granularity
  bucket_ms: number
  group_by: Dimension | null
  /** Bucket starts, epoch milliseconds. */
  timestamps: number[]
  totals: SeriesColumns
  groups: Array<{ key: string } & SeriesColumns>
}

const MAX_GROUPS = 12

export function timeseries(buckets: Buckets, w: Window, groupBy: Dimension | undefined, cost: CostModel): Timeseries {
  const step = BUCKET_MS[w.granularity]
  const timestamps: number[] = []
  for (let t = bucketStart(w.from, w.granularity); t < w.to; t += step) timestamps.push(t)
  const index = new Map(timestamps.map((t, i) => [t, i]))
  const totals = timestamps.map(newAcc)
  const byGroup = new Map<string, Acc[]>()
  for (const [start, bucket] of buckets) {
    const i = index.get(start)
    if (i === undefined) continue
    for (const [k, s] of bucket) {
      add(totals[i], k, s, cost)
      if (!groupBy) continue
      const g = parseSeriesKey(k)[groupBy]
      let accs = byGroup.get(g)
      if (!accs) byGroup.set(g, (accs = timestamps.map(newAcc)))
      add(accs[i], k, s, cost)
    }
  }
  // Most-used groups first; the tail folds into one "(other)" line so a chart stays readable.
  const ranked = [...byGroup.entries()].map(([key, accs]) => ({ key, accs, n: accs.reduce((x, a) => x + a.stats.requests, 0) })).sort((a, b) => b.n - a.n || a.key.localeCompare(b.key))
  const shown = ranked.slice(0, MAX_GROUPS)
  if (ranked.length > MAX_GROUPS) {
    const other = timestamps.map(newAcc)
    for (const g of ranked.slice(MAX_GROUPS)) g.accs.forEach((a, i) => mergeAcc(other[i], a))
    shown.push({ key: '(other)', accs: other, n: 0 })
  }
  return {
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
    granularity: w.granularity,
    bucket_ms: step,
    group_by: groupBy ?? null,
    timestamps,
    totals: columns(totals),
    groups: shown.map((g) => ({ key: g.key, ...columns(g.accs) })),
  }
}

function mergeAcc(into: Acc, from: Acc): void {
  mergeStats(into.stats, from.stats)
  into.usd += from.usd
  into.premium += from.premium
  into.unpriced += from.unpriced
}

function columns(accs: Acc[]): SeriesColumns {
  const out: SeriesColumns = { requests: [], errors: [], error_rate: [], input_tokens: [], output_tokens: [], cost_usd: [], latency_p50_ms: [], latency_p95_ms: [] }
  for (const a of accs) {
    const s = a.stats
    out.requests.push(s.requests)
    out.errors.push(s.errors)
    out.error_rate.push(s.requests ? s.errors / s.requests : 0)
    out.input_tokens.push(s.inputTokens)
    out.output_tokens.push(s.outputTokens)
    out.cost_usd.push(Math.round(a.usd * 1e6) / 1e6)
    out.latency_p50_ms.push(round(quantile(s.latency, 0.5)))
    out.latency_p95_ms.push(round(quantile(s.latency, 0.95)))
  }
  return out
}

