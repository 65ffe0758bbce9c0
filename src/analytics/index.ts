import type { Storage } from 'unstorage'
import type { Logger } from '../logger.js'
import { Collector } from './collector.js'
import type { AnalyticsConfig } from './config.js'
import { costModel, type CostModel } from './prices.js'
import { resolveWindow, summarize, timeseries, type RangeName, type Summary, type Timeseries } from './query.js'
import { COLLECTED_FIELDS, NOT_COLLECTED, type UsageRecord } from './record.js'
import type { Dimension, Granularity } from './rollup.js'

export interface AnalyticsQueryInput {
  range?: RangeName
  from?: number
  to?: number
  granularity?: Granularity | 'auto'
  groupBy?: Dimension
}

export interface Privacy {
  collected: Array<{ field: string; description: string }>
  not_collected: string[]
  retention_days: number
  minute_retention_hours: number
  storage: string
}

export interface Analytics {
  record(r: UsageRecord): Promise<void>
  summary(q: AnalyticsQueryInput): Promise<Summary & { privacy: Privacy }>
  timeseries(q: AnalyticsQueryInput): Promise<Timeseries>
  wipe(): Promise<number>
  prune(): Promise<number>
  flush(): Promise<void>
  close(): Promise<void>
}

export interface AnalyticsOptions {
  config: AnalyticsConfig
  /** The `analytics:` storage mount. */
  storage: Storage
  /** Where the mount lives, for the privacy panel (no secrets). */
  storageDescription: string
  logger: Logger
  /** Provider ids counted in Copilot premium requests when the config does not list them. */
  premiumProviders: string[]
  onWriteFailure?: () => void
  now?: () => number
}

/** Usage analytics: collection into rollups, and the queries the API and dashboard run. */
export function createAnalytics(options: AnalyticsOptions): Analytics {
  const { config } = options
  const now = options.now ?? Date.now
  const collector = new Collector({
    storage: options.storage,
    logger: options.logger,
    retentionDays: config.retentionDays,
    minuteRetentionHours: config.minuteRetentionHours,
    flushIntervalMs: config.flushIntervalMs,
    onWriteFailure: options.onWriteFailure,
    now,
  })
  const cost: CostModel = costModel({
    prices: config.prices,
    premiumProviders: config.premiumRequests.providers ?? options.premiumProviders,
    premiumMultipliers: config.premiumRequests.multipliers,
    premiumRequestUsd: config.premiumRequests.usdPerRequest,
  })
  const privacy: Privacy = {
    collected: COLLECTED_FIELDS.map((f) => ({ field: f.field, description: f.description })),
    not_collected: [...NOT_COLLECTED],
    retention_days: config.retentionDays,
    minute_retention_hours: collector.minuteRetentionMs / 3_600_000,
    storage: options.storageDescription,
  }
  const window = (q: AnalyticsQueryInput) => resolveWindow(q, now(), collector.minuteRetentionMs)
  return {
    record: (r) => collector.record(r),
    async summary(q) {
      const w = window(q)
      const buckets = await collector.read(w.granularity, w.from, w.to)
      return { ...summarize(buckets, w, q.groupBy, cost), privacy }
    },
    async timeseries(q) {
      const w = window(q)
      return timeseries(await collector.read(w.granularity, w.from, w.to), w, q.groupBy, cost)
    },
    wipe: () => collector.wipe(),
    prune: () => collector.prune(),
    flush: () => collector.flush(),
    close: () => collector.close(),
  }
}
