import { z } from 'zod'

const PriceSchema = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cached: z.number().nonnegative().optional(),
})

/** The `analytics` section of gateway.config.json. */
export const AnalyticsConfigSchema = z.looseObject({
  /** Collect usage rollups and serve the dashboard. Off unless asked for. */
  enabled: z.boolean().default(false),
  retentionDays: z.number().positive().max(3660).default(30),
  /** Minute rollups (the finest) are kept this long; hour and day rollups for retentionDays. */
  minuteRetentionHours: z.number().positive().default(48),
  /** Records are written in one batch this often. On Workers + KV raise it (KV allows ~1 write/s per key). */
  flushIntervalMs: z.number().int().min(10).default(5000),
  /** Serve the web dashboard at /dashboard (when analytics are enabled). */
  dashboard: z.boolean().default(true),
  /** Serve Prometheus metrics at /metrics (in-memory counters; independent of `enabled`). */
  metrics: z.boolean().default(true),
  /** USD per million tokens, by model (`gpt-4o`, `provider/model`, or a `prefix*` pattern); merged over the defaults. */
  prices: z.record(z.string(), PriceSchema).default(() => ({})),
  premiumRequests: z
    .object({
      /** Provider ids counted in Copilot premium requests; default: every vscode-bridge provider. */
      providers: z.array(z.string()).optional(),
      /** Premium-request multiplier by model; merged over the defaults. */
      multipliers: z.record(z.string(), z.number().nonnegative()).default(() => ({})),
      usdPerRequest: z.number().nonnegative().default(0.04),
    })
    .prefault({}),
})

export type AnalyticsConfig = z.infer<typeof AnalyticsConfigSchema>

export function parseAnalyticsConfig(raw: unknown): AnalyticsConfig {
  const parsed = AnalyticsConfigSchema.safeParse(raw ?? {})
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - analytics.${i.path.map(String).join('.')}: ${i.message}`)
    throw new Error(`invalid gateway config:\n${lines.join('\n')}`)
  }
  return parsed.data
}
