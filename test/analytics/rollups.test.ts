import { createStorage, defineDriver } from 'unstorage'
import memoryDriver from 'unstorage/drivers/memory'
import { describe, expect, it } from 'vitest'
import { Collector } from '../../src/analytics/collector.js'
import { emptyHistogram, observe, quantile } from '../../src/analytics/histogram.js'
import { costModel, modelLookup, normalizeModel } from '../../src/analytics/prices.js'
import { resolveWindow, summarize, timeseries } from '../../src/analytics/query.js'
import type { UsageRecord } from '../../src/analytics/record.js'
import { addRecord, bucketStart, emptyStats } from '../../src/analytics/rollup.js'
import { createLogger, silentLogger } from '../../src/logger.js'

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0)
const HOUR = 3_600_000
const DAY = 24 * HOUR

function rec(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    time: T0,
    endpoint: 'POST /v1/chat/completions',
    dialect: 'openai',
    requestedModel: 'gpt-4o',
    servedModel: 'openai/gpt-4o',
    provider: 'openai',
    keyId: 'key_0123456789abcdef',
    status: 200,
    latencyMs: 100,
    inputTokens: 1000,
    outputTokens: 500,
    cachedTokens: 0,
    streamed: false,
    cacheHit: false,
    ...over,
  }
}

function collector(now: { t: number }, over: Partial<ConstructorParameters<typeof Collector>[0]> = {}) {
  const storage = createStorage({ driver: memoryDriver() })
  const c = new Collector({ storage, logger: silentLogger, retentionDays: 30, minuteRetentionHours: 48, flushIntervalMs: 60_000, now: () => now.t, instanceId: 'itest', ...over })
  return { c, storage }
}

describe('histogram', () => {
  it('gives p50/p95 within 10% of the exact values, merged or not', () => {
    const h = emptyHistogram()
    const values = Array.from({ length: 1000 }, (_, i) => 10 + i * 3) // 10 … 3007 ms
    for (const v of values) observe(h, v)
    expect(h.count).toBe(1000)
    expect(h.min).toBe(10)
    expect(h.max).toBe(3007)
    const exact = (q: number) => values[Math.ceil(q * values.length) - 1]
    expect(Math.abs(quantile(h, 0.5)! - exact(0.5)) / exact(0.5)).toBeLessThan(0.1)
    expect(Math.abs(quantile(h, 0.95)! - exact(0.95)) / exact(0.95)).toBeLessThan(0.1)
    expect(quantile(emptyHistogram(), 0.5)).toBeNull()
    const one = emptyHistogram()
    observe(one, 42)
    expect(quantile(one, 0.5)).toBe(42)
    expect(quantile(one, 0.95)).toBe(42)
  })
})

describe('records and rollups', () => {
  it('adds records into counters: errors, cancellations, kinds, statuses, tokens', () => {
    const s = emptyStats()
    addRecord(s, rec())
    addRecord(s, rec({ status: 429, errorKind: 'rate_limit', inputTokens: 0, outputTokens: 0 }))
    addRecord(s, rec({ status: 200, errorKind: 'cancelled', streamed: true, ttftMs: 30 }))
    addRecord(s, rec({ status: 200, errorKind: 'upstream', streamed: true, ttftMs: 50, cachedTokens: 400, cacheHit: true }))
    expect(s).toMatchObject({ requests: 4, errors: 2, cancelled: 1, streamed: 2, cacheHits: 1, inputTokens: 3000, outputTokens: 1500, cachedTokens: 400 })
    expect(s.errorKinds).toEqual({ rate_limit: 1, cancelled: 1, upstream: 1 })
    expect(s.statuses).toEqual({ 200: 3, 429: 1 })
    expect(s.ttft.count).toBe(2)
  })

  it('keeps minute, hour and day rollups that agree, and writes only at flush', async () => {
    const now = { t: T0 + 5 * 60_000 }
    const { c, storage } = collector(now)
    c.record(rec({ time: T0 }))
    c.record(rec({ time: T0 + 30_000, inputTokens: 10 }))
    c.record(rec({ time: T0 + 61_000, servedModel: 'anthropic/claude-sonnet-4-5', provider: 'anthropic' }))
    expect(await storage.getKeys()).toEqual([])
    await c.flush()
    expect((await storage.getKeys()).sort()).toEqual([`day:${bucketStart(T0, 'day')}:itest`, `hour:${T0}:itest`, `minute:${T0 + 60_000}:itest`, `minute:${T0}:itest`].sort())
    const minutes = await c.read('minute', T0, T0 + 10 * 60_000)
    expect([...minutes.keys()].sort()).toEqual([T0, T0 + 60_000])
    const total = (b: Awaited<ReturnType<Collector['read']>>) => [...b.values()].flatMap((m) => [...m.values()]).reduce((n, s) => n + s.inputTokens, 0)
    expect(total(minutes)).toBe(2010)
    expect(total(await c.read('hour', T0, T0 + HOUR))).toBe(2010)
    expect(total(await c.read('day', T0, T0 + DAY))).toBe(2010)
    await c.close()
  })

  it('merges with what is stored when a bucket comes back after being evicted from memory', async () => {
    const now = { t: T0 + 10 * 60_000 }
    const { c, storage } = collector(now)
    c.record(rec({ time: T0 }))
    await c.flush() // the T0 minute is closed: written and dropped from memory
    c.record(rec({ time: T0 + 1000 })) // a late record for the same minute
    await c.flush()
    const doc = await storage.getItem<{ series: Record<string, { requests: number }> }>(`minute:${T0}:itest`)
    expect(Object.values(doc!.series)[0].requests).toBe(2)
  })

  it('reads documents written by other instances and merges them', async () => {
    const now = { t: T0 + 60_000 }
    const storage = createStorage({ driver: memoryDriver() })
    const a = new Collector({ storage, logger: silentLogger, retentionDays: 30, minuteRetentionHours: 48, flushIntervalMs: 60_000, now: () => now.t, instanceId: 'ia' })
    const b = new Collector({ storage, logger: silentLogger, retentionDays: 30, minuteRetentionHours: 48, flushIntervalMs: 60_000, now: () => now.t, instanceId: 'ib' })
    a.record(rec())
    b.record(rec())
    b.record(rec())
    await b.flush()
    const hours = await a.read('hour', T0, T0 + HOUR)
    expect([...hours.get(T0)!.values()][0].requests).toBe(3)
  })

  it('folds series past the per-bucket cap into one (other) series', async () => {
    const now = { t: T0 }
    const { c } = collector(now, { maxSeriesPerBucket: 3 })
    for (let i = 0; i < 6; i++) c.record(rec({ servedModel: `p/m${i}` }))
    const b = await c.read('minute', T0, T0 + 60_000)
    const series = b.get(T0)!
    expect(series.size).toBe(4)
    expect(series.get(JSON.stringify(['(other)', '(other)', '(other)', '(other)']))!.requests).toBe(3)
  })
})

describe('retention and pruning', () => {
  it('prunes minute rollups after 48 h and hour/day rollups after the retention', async () => {
    const now = { t: T0 }
    const { c, storage } = collector(now, { retentionDays: 30 })
    c.record(rec({ time: T0 - 40 * DAY })) // past retention
    c.record(rec({ time: T0 - 10 * DAY })) // minute detail gone, hour/day kept
    c.record(rec({ time: T0 - HOUR })) // everything kept
    await c.flush() // the first flush prunes at once
    const keys = await storage.getKeys()
    const starts = (g: string) => keys.filter((k) => k.startsWith(`${g}:`)).map((k) => Number(k.split(':')[1]))
    expect(starts('minute')).toEqual([T0 - HOUR])
    expect(starts('hour').sort()).toEqual([T0 - 10 * DAY, T0 - HOUR].sort())
    expect(starts('day').sort()).toEqual([bucketStart(T0 - 10 * DAY, 'day'), bucketStart(T0 - HOUR, 'day')].sort())
    // Time passes: at T0 + 21 days the -10 d rollups are 31 days old, the -1 h minute is 21 days old.
    now.t = T0 + 21 * DAY
    expect(await c.prune()).toBe(3)
    expect((await storage.getKeys()).sort()).toEqual([`day:${bucketStart(T0 - HOUR, 'day')}:itest`, `hour:${T0 - HOUR}:itest`].sort())
    expect((await storage.getKeys()).filter((k) => !k.startsWith('day:') && !k.startsWith('hour:'))).toEqual([])
    expect((await storage.getKeys()).some((k) => k.includes(String(T0 - 10 * DAY)))).toBe(false)
  })

  it('prunes on its own from the flush, at most every ten minutes', async () => {
    const now = { t: T0 }
    const { c, storage } = collector(now, { retentionDays: 1, minuteRetentionHours: 1 })
    c.record(rec({ time: T0 - 3 * DAY }))
    await c.flush()
    expect(await storage.getKeys()).toEqual([]) // written, then pruned in the same flush
  })

  it('wipes stored and in-memory data', async () => {
    const now = { t: T0 }
    const { c, storage } = collector(now)
    c.record(rec())
    await c.flush()
    c.record(rec())
    expect(await c.wipe()).toBe(3)
    expect(await storage.getKeys()).toEqual([])
    await c.flush()
    expect(await storage.getKeys()).toEqual([])
  })
})

describe('storage failures', () => {
  it('never throw into the request path; writes are retried and logged once', async () => {
    let failing = true
    const inner = memoryDriver()
    const flaky = defineDriver(() => ({
      ...inner,
      name: 'flaky',
      setItem(key: string, value: string) {
        if (failing) throw new Error('disk full')
        return inner.setItem!(key, value, {})
      },
    }))
    const storage = createStorage({ driver: flaky() })
    const logs: string[] = []
    const now = { t: T0 }
    let failures = 0
    const c = new Collector({ storage, logger: createLogger('warn', (l) => logs.push(l)), retentionDays: 30, minuteRetentionHours: 48, flushIntervalMs: 5, now: () => now.t, onWriteFailure: () => failures++ })
    expect(() => c.record(rec())).not.toThrow()
    await c.record(rec()) // the scheduled flush resolves, it does not reject
    await c.flush()
    expect(failures).toBeGreaterThan(0)
    expect(logs.filter((l) => l.includes('analytics write failed'))).toHaveLength(1)
    failing = false
    await c.flush()
    const b = await c.read('minute', T0, T0 + 60_000)
    expect([...b.get(T0)!.values()][0].requests).toBe(2)
  })
})

describe('queries', () => {
  it('picks a granularity from the span and refuses windows it cannot answer', () => {
    const now = T0
    expect(resolveWindow({ range: '1h' }, now, 48 * HOUR).granularity).toBe('minute')
    expect(resolveWindow({ range: '24h' }, now, 48 * HOUR).granularity).toBe('hour')
    expect(resolveWindow({ range: '30d' }, now, 48 * HOUR).granularity).toBe('day')
    expect(resolveWindow({ range: '30d', granularity: 'hour' }, now, 48 * HOUR)).toEqual({ from: now - 30 * DAY, to: now, granularity: 'hour' })
    expect(() => resolveWindow({ range: '7d', granularity: 'minute' }, now, 48 * HOUR)).toThrow(/minute only covers the last 48 hours/)
    expect(() => resolveWindow({ from: now, to: now - 1 }, now, 48 * HOUR)).toThrow(/before/)
  })

  it('summarizes and splits into buckets and groups', async () => {
    const now = { t: T0 + HOUR }
    const { c } = collector(now)
    c.record(rec({ time: T0 + 60_000 }))
    c.record(rec({ time: T0 + 120_000, servedModel: 'anthropic/claude-sonnet-4-5', provider: 'anthropic', latencyMs: 300 }))
    c.record(rec({ time: T0 + 120_000, status: 500, errorKind: 'upstream', inputTokens: 0, outputTokens: 0, latencyMs: 20 }))
    const w = resolveWindow({ from: T0, to: T0 + HOUR }, now.t, 48 * HOUR)
    const buckets = await c.read(w.granularity, w.from, w.to)
    const cost = costModel()
    const s = summarize(buckets, w, 'provider', cost)
    expect(s.totals).toMatchObject({ requests: 3, errors: 1, input_tokens: 2000, output_tokens: 1000 })
    // gpt-4o: 1000 × $2.50/M + 500 × $10/M; claude-sonnet-4-5: 1000 × $3/M + 500 × $15/M
    expect(s.totals.cost_usd).toBeCloseTo(0.0025 + 0.005 + 0.003 + 0.0075, 9)
    expect(s.groups.map((g) => [g.key, g.requests])).toEqual([
      ['openai', 2],
      ['anthropic', 1],
    ])
    const ts = timeseries(buckets, w, 'model', cost)
    expect(ts.timestamps).toHaveLength(60)
    expect(ts.totals.requests.slice(0, 3)).toEqual([0, 1, 2])
    expect(ts.totals.latency_p50_ms[0]).toBeNull()
    expect(ts.groups.find((g) => g.key === 'openai/gpt-4o')!.requests.slice(0, 3)).toEqual([0, 1, 1])
  })
})

describe('cost maths', () => {
  it('prices input, cached input and output per million tokens', () => {
    const cost = costModel()
    const base = { provider: 'openai', requests: 1, inputTokens: 1_000_000, outputTokens: 1_000_000, cachedTokens: 0 }
    expect(cost({ ...base, model: 'openai/gpt-4o' })).toEqual({ usd: 12.5, premiumRequests: 0, priced: true })
    // 400k of the 1M input tokens were cache reads at $1.25/M instead of $2.50/M.
    expect(cost({ ...base, model: 'openai/gpt-4o', cachedTokens: 400_000 }).usd).toBeCloseTo(0.6 * 2.5 + 0.4 * 1.25 + 10, 9)
    // Dated snapshots, dots or dashes, provider prefixes and Vertex @versions find the family's price.
    expect(cost({ ...base, model: 'openai/gpt-4o-2024-08-06' }).usd).toBe(12.5)
    expect(cost({ ...base, model: 'openai/gpt-4o-mini' }).usd).toBeCloseTo(0.75, 9)
    expect(cost({ ...base, model: 'vertex/claude-sonnet-4-5@20250929' }).usd).toBe(18)
    expect(cost({ ...base, model: 'x/claude-opus-4.5' }).usd).toBe(30)
    expect(cost({ ...base, model: 'anthropic/claude-opus-4-1-20250805' }).usd).toBe(90)
    expect(cost({ ...base, model: 'ollama/llama3.2' })).toEqual({ usd: 0, premiumRequests: 0, priced: false })
  })

  it('lets config prices win: exact provider/model, bare model and prefix* patterns', () => {
    const cost = costModel({ prices: { 'local/llama3.2': { input: 0, output: 0 }, 'gpt-4o': { input: 5, output: 15 }, 'mistral-*': { input: 1, output: 3, cached: 0.1 } } })
    const base = { provider: 'x', requests: 1, inputTokens: 2_000_000, outputTokens: 1_000_000, cachedTokens: 1_000_000 }
    expect(cost({ ...base, model: 'local/llama3.2' })).toEqual({ usd: 0, premiumRequests: 0, priced: true })
    // No cached price configured: cache reads cost the input price.
    expect(cost({ ...base, model: 'openai/gpt-4o' }).usd).toBe(25)
    expect(cost({ ...base, model: 'la/mistral-large-2411' }).usd).toBeCloseTo(1 + 0.1 + 3, 9)
  })

  it('counts Copilot models in premium requests × multiplier, at the overage price', () => {
    const cost = costModel({ premiumProviders: ['vscode'], premiumMultipliers: { 'gpt-4o': 0, 'my-model': 2 } })
    const base = { provider: 'vscode', inputTokens: 50_000, outputTokens: 9_000, cachedTokens: 0 }
    expect(cost({ ...base, model: 'vscode/claude-sonnet-4.5', requests: 10 })).toEqual({ usd: 0.4, premiumRequests: 10, priced: true })
    expect(cost({ ...base, model: 'vscode/claude-opus-4.1', requests: 3 })).toEqual({ usd: 1.2, premiumRequests: 30, priced: true })
    expect(cost({ ...base, model: 'vscode/gpt-4o', requests: 50 })).toEqual({ usd: 0, premiumRequests: 0, priced: true })
    expect(cost({ ...base, model: 'vscode/my-model', requests: 4 })).toEqual({ usd: 0.32, premiumRequests: 8, priced: true })
    // Unknown multiplier: counted as 1 and flagged as unpriced.
    expect(cost({ ...base, model: 'vscode/new-model', requests: 2 })).toEqual({ usd: 0.08, premiumRequests: 2, priced: false })
    expect(costModel({ premiumProviders: ['vscode'], premiumRequestUsd: 0.1 })({ ...base, model: 'vscode/gpt-5', requests: 1 }).usd).toBeCloseTo(0.1, 9)
  })

  it('normalizes model names the same way on both sides of the lookup', () => {
    expect(normalizeModel('Vertex/Claude-Sonnet-4.5@20250929')).toBe('claude-sonnet-4-5')
    const look = modelLookup({ o3: 1, 'o3-mini': 2 })
    expect(look('openai/o3-mini-2025-01-31')).toBe(2)
    expect(look('openai/o3-2025-04-16')).toBe(1)
    expect(look('openai/o30')).toBeUndefined()
  })
})
