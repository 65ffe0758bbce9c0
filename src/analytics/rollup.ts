import { emptyHistogram, mergeHistogram, observe, type Histogram } from './histogram.js'
import type { UsageRecord } from './record.js'

export type Granularity = 'minute' | 'hour' | 'day'
export const GRANULARITIES: readonly Granularity[] = ['minute', 'hour', 'day']
export const BUCKET_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }

/** UTC start of the bucket holding `time`. */
export function bucketStart(time: number, g: Granularity): number {
  return Math.floor(time / BUCKET_MS[g]) * BUCKET_MS[g]
}

/** The dimensions a rollup keeps requests apart by; everything a breakdown can group on. */
export interface Dimensions {
  model: string
  provider: string
  key: string
  endpoint: string
}
export type Dimension = keyof Dimensions
export const DIMENSIONS: readonly Dimension[] = ['model', 'provider', 'key', 'endpoint']

/** The counters of one series in one bucket. Plain JSON: stored as is, merged by addition. */
export interface Stats {
  requests: number
  /** Status ≥ 400, or an error after the stream started (client cancellations excluded). */
  errors: number
  cancelled: number
  errorKinds: Record<string, number>
  statuses: Record<string, number>
  streamed: number
  cacheHits: number
  inputTokens: number
  outputTokens: number
  cachedTokens: number
  latency: Histogram
  ttft: Histogram
  queueWait: Histogram
}

export function emptyStats(): Stats {
  return {
    requests: 0,
    errors: 0,
    cancelled: 0,
    errorKinds: {},
    statuses: {},
    streamed: 0,
    cacheHits: 0,
    inputTokens: 0,
    outputTokens: 0,
    cachedTokens: 0,
    latency: emptyHistogram(),
    ttft: emptyHistogram(),
    queueWait: emptyHistogram(),
  }
}

export const NONE = '(none)'

export function dimensionsOf(r: UsageRecord): Dimensions {
  return { model: r.servedModel || r.requestedModel || NONE, provider: r.provider || NONE, key: r.keyId || NONE, endpoint: r.endpoint }
}

export function seriesKey(d: Dimensions): string {
  return JSON.stringify([d.model, d.provider, d.key, d.endpoint])
}

export function parseSeriesKey(key: string): Dimensions {
  const [model, provider, k, endpoint] = JSON.parse(key) as string[]
  return { model, provider, key: k, endpoint }
}

export function isError(r: Pick<UsageRecord, 'status' | 'errorKind'>): boolean {
  return r.status >= 400 ? r.errorKind !== 'cancelled' : r.errorKind !== undefined && r.errorKind !== 'cancelled'
}

export function addRecord(s: Stats, r: UsageRecord): void {
  s.requests++
  if (r.errorKind === 'cancelled') s.cancelled++
  else if (isError(r)) s.errors++
  if (r.errorKind) s.errorKinds[r.errorKind] = (s.errorKinds[r.errorKind] ?? 0) + 1
  s.statuses[r.status] = (s.statuses[r.status] ?? 0) + 1
  if (r.streamed) s.streamed++
  if (r.cacheHit) s.cacheHits++
  s.inputTokens += r.inputTokens
  s.outputTokens += r.outputTokens
  s.cachedTokens += r.cachedTokens
  observe(s.latency, r.latencyMs)
  if (r.ttftMs !== undefined) observe(s.ttft, r.ttftMs)
  if (r.queueWaitMs !== undefined) observe(s.queueWait, r.queueWaitMs)
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n
}

export function mergeStats(into: Stats, from: Stats): Stats {
  into.requests += from.requests
  into.errors += from.errors
  into.cancelled += from.cancelled
  addCounts(into.errorKinds, from.errorKinds)
  addCounts(into.statuses, from.statuses)
  into.streamed += from.streamed
  into.cacheHits += from.cacheHits
  into.inputTokens += from.inputTokens
  into.outputTokens += from.outputTokens
  into.cachedTokens += from.cachedTokens
  mergeHistogram(into.latency, from.latency)
  mergeHistogram(into.ttft, from.ttft)
  mergeHistogram(into.queueWait, from.queueWait)
  return into
}

/** One stored rollup document: the series of one bucket, written by one gateway instance. */
export interface RollupDoc {
  v: 1
  granularity: Granularity
  start: number
  series: Record<string, Stats>
}
