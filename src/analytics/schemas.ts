import { z } from '@hono/zod-openapi'
import { RANGES } from './query.js'

/** Query parameters of the analytics read API. Times are ISO 8601 or epoch milliseconds. */
export const AnalyticsQuery = z.object({
  range: z
    .enum(Object.keys(RANGES) as [keyof typeof RANGES, ...Array<keyof typeof RANGES>])
    .optional()
    .openapi({ description: 'A window ending now (default 24h); ignored when from is given.', example: '24h' }),
  from: z.string().optional().openapi({ description: 'Window start: ISO 8601 or epoch milliseconds.', example: '2026-11-24T00:00:00Z' }),
  to: z.string().optional().openapi({ description: 'Window end (default now): ISO 8601 or epoch milliseconds.' }),
  granularity: z.enum(['auto', 'minute', 'hour', 'day']).optional().openapi({ description: 'Bucket size; auto: minute up to 6h, hour up to 7d, day beyond.' }),
  group_by: z.enum(['model', 'provider', 'key', 'endpoint']).optional().openapi({ description: 'Break the numbers down by this dimension.' }),
})

const Nullable = z.number().nullable()

export const AnalyticsTotals = z
  .object({
    requests: z.number().int(),
    errors: z.number().int(),
    cancelled: z.number().int(),
    error_rate: z.number(),
    streamed: z.number().int(),
    cache_hits: z.number().int(),
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cached_tokens: z.number().int(),
    latency_ms: z.object({ p50: Nullable, p95: Nullable, avg: Nullable }),
    ttft_ms: z.object({ p50: Nullable, p95: Nullable }),
    queue_wait_ms: z.object({ avg: Nullable, p95: Nullable }),
    cost_usd: z.number().openapi({ description: 'Estimated cost in USD (list prices; Copilot premium requests at their overage price).' }),
    premium_requests: z.number(),
    unpriced_requests: z.number().int().openapi({ description: 'Requests on models with no known price (counted as 0 USD).' }),
    error_kinds: z.record(z.string(), z.number().int()),
    statuses: z.record(z.string(), z.number().int()),
  })
  .openapi('AnalyticsTotals')

export const AnalyticsPrivacy = z
  .object({
    collected: z.array(z.object({ field: z.string(), description: z.string() })),
    not_collected: z.array(z.string()),
    retention_days: z.number(),
    minute_retention_hours: z.number(),
    storage: z.string(),
  })
  .openapi('AnalyticsPrivacy')

export const AnalyticsSummary = z
  .object({
    from: z.string(),
    to: z.string(),
    granularity: z.enum(['minute', 'hour', 'day']),
    group_by: z.enum(['model', 'provider', 'key', 'endpoint']).nullable(),
    totals: AnalyticsTotals,
    groups: z.array(AnalyticsTotals.extend({ key: z.string() })),
    privacy: AnalyticsPrivacy,
  })
  .openapi('AnalyticsSummary')

const Columns = {
  requests: z.array(z.number()),
  errors: z.array(z.number()),
  error_rate: z.array(z.number()),
  input_tokens: z.array(z.number()),
  output_tokens: z.array(z.number()),
  cost_usd: z.array(z.number()),
  latency_p50_ms: z.array(Nullable),
  latency_p95_ms: z.array(Nullable),
}

export const AnalyticsTimeseries = z
  .object({
    from: z.string(),
    to: z.string(),
    granularity: z.enum(['minute', 'hour', 'day']),
    bucket_ms: z.number().int(),
    group_by: z.enum(['model', 'provider', 'key', 'endpoint']).nullable(),
    timestamps: z.array(z.number().int()).openapi({ description: 'Bucket starts, epoch milliseconds (UTC buckets).' }),
    totals: z.object(Columns),
    groups: z.array(z.object({ key: z.string(), ...Columns })),
  })
  .openapi('AnalyticsTimeseries')

export const AnalyticsDeleted = z.object({ deleted: z.literal(true), documents: z.number().int() }).openapi('AnalyticsDeleted')
