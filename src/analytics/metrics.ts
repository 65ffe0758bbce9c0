/**
 * A small Prometheus registry (text exposition format 0.0.4). Stages report
 * into it through the instruments of `gatewayMetrics()`; `/metrics` renders
 * it. Every metric caps its number of label sets (`maxSeries`): past the cap,
 * new label sets count under one series whose labels are all `_other`, so a
 * client inventing model names cannot grow memory or a scrape without bound.
 */
export type Labels = Record<string, string>

const OTHER = '_other'

abstract class Metric<V> {
  protected readonly series = new Map<string, { labels: string[]; value: V }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly maxSeries: number,
  ) {}

  protected abstract init(): V

  protected at(labels: Labels | undefined): V {
    // Called several times per request: the key is built without intermediate arrays, which only a new series needs.
    const names = this.labelNames
    let key = ''
    for (let i = 0; i < names.length; i++) {
      if (i > 0) key += '\u0000'
      key += labels?.[names[i]] ?? ''
    }
    let s = this.series.get(key)
    if (!s) {
      const values = names.map((n) => labels?.[n] ?? '')
      if (this.series.size >= this.maxSeries) {
        const otherValues = this.labelNames.map(() => OTHER)
        const otherKey = otherValues.join('\u0000')
        s = this.series.get(otherKey)
        if (!s) this.series.set(otherKey, (s = { labels: otherValues, value: this.init() }))
        return s.value
      }
      this.series.set(key, (s = { labels: values, value: this.init() }))
    }
    return s.value
  }

  reset(): void {
    this.series.clear()
  }

  protected labelText(values: string[], extra?: [string, string]): string {
    const pairs = this.labelNames.map((n, i) => `${n}="${escapeLabel(values[i])}"`)
    if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
    return pairs.length ? `{${pairs.join(',')}}` : ''
  }

  abstract type: 'counter' | 'gauge' | 'histogram'
  abstract samples(): string[]

  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join('\n')
  }
}

export class Counter extends Metric<{ v: number }> {
  readonly type = 'counter'
  protected init() {
    return { v: 0 }
  }
  inc(labels?: Labels, by = 1): void {
    if (by < 0 || !Number.isFinite(by)) return
    this.at(labels).v += by
  }
  samples(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${this.labelText(s.labels)} ${formatNumber(s.value.v)}`)
  }
}

export class Gauge extends Metric<{ v: number }> {
  readonly type = 'gauge'
  protected init() {
    return { v: 0 }
  }
  set(labels: Labels | undefined, value: number): void {
    this.at(labels).v = value
  }
  inc(labels?: Labels, by = 1): void {
    this.at(labels).v += by
  }
  dec(labels?: Labels, by = 1): void {
    this.at(labels).v -= by
  }
  samples(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${this.labelText(s.labels)} ${formatNumber(s.value.v)}`)
  }
}

export class HistogramMetric extends Metric<{ counts: number[]; sum: number; count: number }> {
  readonly type = 'histogram'
  constructor(name: string, help: string, labelNames: readonly string[], maxSeries: number, readonly bounds: readonly number[]) {
    super(name, help, labelNames, maxSeries)
  }
  protected init() {
    return { counts: this.bounds.map(() => 0), sum: 0, count: 0 }
  }
  observe(labels: Labels | undefined, value: number): void {
    if (!Number.isFinite(value)) return
    const h = this.at(labels)
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) h.counts[i]++
    h.sum += value
    h.count++
  }
  samples(): string[] {
    const out: string[] = []
    for (const s of this.series.values()) {
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket${this.labelText(s.labels, ['le', formatNumber(b)])} ${s.value.counts[i]}`))
      out.push(`${this.name}_bucket${this.labelText(s.labels, ['le', '+Inf'])} ${s.value.count}`)
      out.push(`${this.name}_sum${this.labelText(s.labels)} ${formatNumber(s.value.sum)}`)
      out.push(`${this.name}_count${this.labelText(s.labels)} ${s.value.count}`)
    }
    return out
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric<unknown>>()
  private readonly collectors: Array<() => void> = []

  constructor(private readonly maxSeries = 500) {}

  private add<M extends Metric<unknown>>(name: string, labelNames: readonly string[], make: () => M): M {
    const existing = this.metrics.get(name)
    if (existing) return existing as M
    if (!NAME.test(name)) throw new Error(`invalid metric name: ${name}`)
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new Error(`invalid label name on ${name}: ${l}`)
    const m = make()
    this.metrics.set(name, m)
    return m
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(name, labelNames, () => new Counter(name, help, labelNames, this.maxSeries))
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(name, labelNames, () => new Gauge(name, help, labelNames, this.maxSeries))
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): HistogramMetric {
    return this.add(name, labelNames, () => new HistogramMetric(name, help, labelNames, this.maxSeries, [...bounds].sort((a, b) => a - b)))
  }

  /** Runs before every render: for gauges read from live state (queue depth, breaker state). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn)
  }

  render(): string {
    for (const fn of this.collectors) {
      try {
        fn()
      } catch {
        /* a failing reporter must not break the scrape */
      }
    }
    return `${[...this.metrics.values()].map((m) => m.render()).join('\n')}\n`
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

const LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** Breaker states as gauge values: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATE = { closed: 0, half_open: 1, open: 2 } as const

/**
 * The gateway's instruments. The usage tap fills the request metrics; the
 * queue, cache and circuit-breaker stages report through the others.
 * Labels hold only bounded values: route patterns, provider ids, served
 * models (capped), error kinds, status codes.
 */
export function gatewayMetrics(registry: MetricsRegistry) {
  return {
    registry,
    requests: registry.counter('gateway_requests_total', 'Requests answered, by route pattern, status code, provider and served model.', ['endpoint', 'status', 'provider', 'model']),
    duration: registry.histogram('gateway_request_duration_seconds', 'Request duration until the last byte (streams: until the stream ends).', ['endpoint', 'provider'], LATENCY_BOUNDS),
    ttft: registry.histogram('gateway_time_to_first_token_seconds', 'Time from request start to the first token.', ['provider'], LATENCY_BOUNDS),
    tokens: registry.counter('gateway_tokens_total', 'Tokens processed, by direction (input, output, cached input).', ['provider', 'model', 'type']),
    errors: registry.counter('gateway_errors_total', 'Failed requests, by route pattern and error kind.', ['endpoint', 'kind']),
    inflight: registry.gauge('gateway_requests_in_flight', 'Requests being served right now (streams until they end).'),
    queueDepth: registry.gauge('gateway_queue_depth', 'Requests waiting in the queue.', ['provider']),
    queueWait: registry.histogram('gateway_queue_wait_seconds', 'Time requests waited in the queue.', ['provider'], LATENCY_BOUNDS),
    cacheLookups: registry.counter('gateway_cache_lookups_total', 'Response cache lookups, by result (hit or miss).', ['result']),
    breakerState: registry.gauge('gateway_circuit_breaker_state', 'Circuit breaker state per routing target (provider/model): 0 closed, 1 half-open, 2 open.', ['target']),
    analyticsDropped: registry.counter('gateway_analytics_write_failures_total', 'Analytics rollup writes that failed (retried later).'),
  }
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>
