import type { Storage } from 'unstorage'
import { newId } from '../core/ids.js'
import type { Logger } from '../logger.js'
import type { UsageRecord } from './record.js'
import {
  addRecord,
  BUCKET_MS,
  bucketStart,
  dimensionsOf,
  emptyStats,
  GRANULARITIES,
  mergeStats,
  seriesKey,
  type Granularity,
  type RollupDoc,
  type Stats,
} from './rollup.js'

export interface CollectorOptions {
  /** The `analytics:` mount (already scoped: `clear()` wipes analytics only). */
  storage: Storage
  logger: Logger
  /** Hour and day rollups older than this are pruned. */
  retentionDays: number
  /** Minute rollups are kept this long (capped by retentionDays). */
  minuteRetentionHours: number
  /** How long records wait in memory before one batched write. */
  flushIntervalMs: number
  /** Distinct series per bucket before new ones fold into one `(other)` series. */
  maxSeriesPerBucket?: number
  now?: () => number
  /** Called on each failed write (the failure metric). */
  onWriteFailure?: () => void
  /** Tells this instance's documents apart from other instances' sharing the storage. */
  instanceId?: string
}

interface OpenDoc {
  doc: RollupDoc
  /** Not yet reconciled with what storage may hold under the same key (written before an eviction). */
  fresh: boolean
  dirty: boolean
}

export type Buckets = Map<number, Map<string, Stats>>

const PRUNE_EVERY_MS = 10 * 60_000

/**
 * Keeps per-minute, per-hour and per-day rollups in memory and writes the
 * changed ones in one batch every `flushIntervalMs`. `record()` is
 * synchronous and never throws: the request path only adds to counters.
 * Each instance writes its own documents (`<granularity>:<start>:<instance>`),
 * so several gateways sharing one Redis never overwrite each other; reads
 * merge them.
 */
export class Collector {
  private readonly storage: Storage
  private readonly now: () => number
  private readonly instance: string
  private readonly open = new Map<string, OpenDoc>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private pending: Promise<void> | undefined
  private settlePending: (() => void) | undefined
  private flushing: Promise<void> | undefined
  private lastPrune = 0
  private lastWarn = 0
  private closed = false

  constructor(private readonly opts: CollectorOptions) {
    this.storage = opts.storage
    this.now = opts.now ?? Date.now
    this.instance = opts.instanceId ?? newId('i', 10)
  }

  get retentionDays(): number {
    return this.opts.retentionDays
  }

  get minuteRetentionMs(): number {
    return Math.min(this.opts.minuteRetentionHours * 3_600_000, this.opts.retentionDays * 86_400_000)
  }

  retentionMs(g: Granularity): number {
    return g === 'minute' ? this.minuteRetentionMs : this.opts.retentionDays * 86_400_000
  }

  /** Adds a record to the open rollups and schedules a write. Returns the scheduled write (for waitUntil). */
  record(r: UsageRecord): Promise<void> {
    if (this.closed) return Promise.resolve()
    const key = seriesKey(dimensionsOf(r))
    for (const g of GRANULARITIES) {
      const start = bucketStart(r.time, g)
      const docKey = `${g}:${start}:${this.instance}`
      let open = this.open.get(docKey)
      if (!open) {
        open = { doc: { v: 1, granularity: g, start, series: {} }, fresh: true, dirty: true }
        this.open.set(docKey, open)
      }
      open.dirty = true
      addRecord(this.series(open.doc, key), r)
    }
    return this.schedule()
  }

  private series(doc: RollupDoc, key: string): Stats {
    let s = doc.series[key]
    if (s) return s
    const max = this.opts.maxSeriesPerBucket ?? 2000
    if (Object.keys(doc.series).length >= max) {
      const other = JSON.stringify(['(other)', '(other)', '(other)', '(other)'])
      return (doc.series[other] ??= emptyStats())
    }
    s = emptyStats()
    doc.series[key] = s
    return s
  }

  private schedule(): Promise<void> {
    if (this.pending) return this.pending
    this.pending = new Promise<void>((resolve) => {
      this.settlePending = resolve
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.pending = undefined
        this.settlePending = undefined
        void this.flush().finally(resolve)
      }, this.opts.flushIntervalMs)
      // A pending analytics write must not keep a Node process alive on shutdown (close() flushes).
      ;(this.timer as { unref?: () => void }).unref?.()
    })
    return this.pending
  }

  /** Writes every changed rollup. Storage failures are logged and retried on the next flush. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined
    })
    return this.flushing
  }

  private async write(): Promise<void> {
    for (const [key, open] of this.open) {
      if (!open.dirty) continue
      try {
        if (open.fresh) {
          const stored = await this.storage.getItem<RollupDoc>(key)
          if (isDoc(stored)) for (const [k, s] of Object.entries(stored.series)) mergeStats(this.series(open.doc, k), s)
          open.fresh = false
        }
        open.dirty = false
        await this.storage.setItem(key, open.doc)
      } catch (err) {
        open.dirty = true
        this.opts.onWriteFailure?.()
        this.warn('analytics write failed; will retry', err)
      }
    }
    const now = this.now()
    for (const [key, open] of this.open) {
      const { granularity, start } = open.doc
      // Closed buckets are on storage now; keep memory to the current period.
      if (!open.dirty && start + BUCKET_MS[granularity] < now - 5_000) this.open.delete(key)
    }
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now
      await this.prune().catch((err) => this.warn('analytics pruning failed', err))
    }
  }

  private warn(msg: string, err: unknown): void {
    const now = this.now()
    if (now - this.lastWarn < 60_000) return
    this.lastWarn = now
    this.opts.logger.warn(msg, { error: err instanceof Error ? err.message : String(err) })
  }

  /** Deletes rollups older than their retention. Returns how many documents went. */
  async prune(): Promise<number> {
    const now = this.now()
    let removed = 0
    for (const g of GRANULARITIES) {
      const horizon = now - this.retentionMs(g)
      for (const key of await this.storage.getKeys(g)) {
        const start = startOf(key)
        if (start === undefined || start + BUCKET_MS[g] > horizon) continue
        await this.storage.removeItem(key)
        removed++
      }
      for (const [key, open] of this.open) if (open.doc.granularity === g && open.doc.start + BUCKET_MS[g] <= horizon) this.open.delete(key)
    }
    return removed
  }

  /** The merged series of every bucket of `g` that overlaps [from, to), this instance's unwritten changes included. */
  async read(g: Granularity, from: number, to: number): Promise<Buckets> {
    await this.flush()
    const first = bucketStart(from, g)
    const keys = (await this.storage.getKeys(g)).filter((k) => {
      const start = startOf(k)
      return start !== undefined && start >= first && start < to
    })
    const out: Buckets = new Map()
    const items = keys.length ? await this.storage.getItems<RollupDoc>(keys) : []
    for (const { value } of items) {
      if (!isDoc(value)) continue
      let bucket = out.get(value.start)
      if (!bucket) out.set(value.start, (bucket = new Map()))
      for (const [k, s] of Object.entries(value.series)) {
        const into = bucket.get(k)
        if (into) mergeStats(into, s)
        else bucket.set(k, mergeStats(emptyStats(), s))
      }
    }
    return out
  }

  /** Deletes all analytics data, stored and in memory. Returns how many documents were deleted. */
  async wipe(): Promise<number> {
    await this.flushing
    this.open.clear()
    const keys = await this.storage.getKeys()
    await this.storage.clear()
    return keys.length
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    const settle = this.settlePending
    this.timer = undefined
    this.pending = undefined
    this.settlePending = undefined
    this.closed = true
    await this.flush()
    settle?.()
  }
}

function startOf(key: string): number | undefined {
  const parts = key.split(':')
  const n = Number(parts[1])
  return parts.length === 3 && Number.isFinite(n) ? n : undefined
}

function isDoc(v: unknown): v is RollupDoc {
  return typeof v === 'object' && v !== null && (v as RollupDoc).v === 1 && typeof (v as RollupDoc).series === 'object' && typeof (v as RollupDoc).start === 'number'
}
