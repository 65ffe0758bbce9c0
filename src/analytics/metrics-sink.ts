import { isError } from './rollup.js'
import type { GatewayMetrics } from './metrics.js'
import type { UsageMeta } from '../pipeline/usage.js'
import type { UsageRecord } from './record.js'

/**
 * Feeds one finished request into the Prometheus instruments. Labels use
 * the served model only (it exists in a provider's catalog): the requested
 * name is whatever a client typed, and would make cardinality unbounded.
 */
export function recordMetrics(m: GatewayMetrics, r: UsageRecord, meta: Readonly<UsageMeta>): void {
  const provider = r.provider ?? 'none'
  const model = r.servedModel ?? 'none'
  m.inflight.dec()
  m.requests.inc({ endpoint: r.endpoint, status: String(r.status), provider, model })
  m.duration.observe({ endpoint: r.endpoint, provider }, r.latencyMs / 1000)
  if (r.ttftMs !== undefined) m.ttft.observe({ provider }, r.ttftMs / 1000)
  if (r.inputTokens) m.tokens.inc({ provider, model, type: 'input' }, r.inputTokens)
  if (r.outputTokens) m.tokens.inc({ provider, model, type: 'output' }, r.outputTokens)
  if (r.cachedTokens) m.tokens.inc({ provider, model, type: 'cached' }, r.cachedTokens)
  if (isError(r) || r.errorKind === 'cancelled') m.errors.inc({ endpoint: r.endpoint, kind: r.errorKind ?? 'unknown' })
  // The cache stage's own word (hit, miss, …); a short token, so the label stays bounded.
  if (meta.cache && /^[a-z_-]{1,16}$/.test(meta.cache)) m.cacheLookups.inc({ result: meta.cache })
  if (r.queueWaitMs !== undefined) m.queueWait.observe({ provider }, r.queueWaitMs / 1000)
}
