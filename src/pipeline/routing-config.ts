import { z } from 'zod'
import { ConfigError, formatPath } from '../config.js'

/**
 * The `routing` section of gateway.config.json and the routing fields of
 * aliases in `models`, parsed once at start. Unknown keys are errors here:
 * a typo in a retry or breaker setting must not be silently ignored.
 */
const CapabilitiesConfig = z.strictObject({
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  /** Binary documents (PDF …), audio and video input. */
  documents: z.boolean().optional(),
  audio: z.boolean().optional(),
  video: z.boolean().optional(),
  embeddings: z.boolean().optional(),
  streaming: z.boolean().optional(),
  contextWindow: z.number().int().positive().optional(),
})
export type CapabilitiesConfig = z.infer<typeof CapabilitiesConfig>

const TargetConfig = z.union([
  z.string(),
  z.looseObject({
    model: z.string(),
    weight: z.number().positive().optional(),
    /** Time allowed until the target's first event, in ms. */
    timeoutMs: z.number().int().positive().optional(),
    /** Relative cost, for `order: "cheapest"`. */
    cost: z.number().min(0).optional(),
    capabilities: CapabilitiesConfig.optional(),
  }),
])
export type TargetConfig = z.infer<typeof TargetConfig>

const RuleConfig = z.strictObject({
  when: z
    .strictObject({
      vision: z.boolean().optional(),
      tools: z.boolean().optional(),
      minPromptTokens: z.number().int().min(0).optional(),
      maxPromptTokens: z.number().int().min(0).optional(),
    })
    .default({}),
  targets: z.array(TargetConfig).min(1),
})
export type RuleConfig = z.infer<typeof RuleConfig>

export const Strategy = z.enum(['fallback', 'round-robin', 'weighted', 'least-busy', 'lowest-latency'])
export type Strategy = z.infer<typeof Strategy>

export const AliasRouting = z.looseObject({
  strategy: Strategy.default('fallback'),
  targets: z.array(TargetConfig).min(1),
  /** Request-based rules, first match wins; its targets replace the alias's. */
  rules: z.array(RuleConfig).optional(),
  /** Order targets by `cost` (cheapest first) instead of as listed. */
  order: z.enum(['listed', 'cheapest']).default('listed'),
  timeoutMs: z.number().int().positive().optional(),
  retries: z.number().int().min(0).max(10).optional(),
})
export type AliasRouting = z.infer<typeof AliasRouting>

export const RoutingConfig = z.strictObject({
  /** Default time allowed until a target's first event, in ms (providers keep their own deadlines too). */
  timeoutMs: z.number().int().positive().optional(),
  /** Retries of the same target on retryable errors, before moving to the next target. */
  retries: z.number().int().min(0).max(10).default(0),
  backoff: z
    .strictObject({
      baseMs: z.number().min(0).default(200),
      maxMs: z.number().min(0).default(5000),
    })
    .prefault({}),
  /** An upstream Retry-After longer than this moves on to the next target instead of waiting. */
  maxRetryAfterMs: z.number().min(0).default(10_000),
  breaker: z
    .strictObject({
      enabled: z.boolean().default(true),
      failureThreshold: z.number().int().positive().default(5),
      cooldownMs: z.number().int().positive().default(30_000),
    })
    .prefault({}),
  latency: z
    .strictObject({
      /** Weight of the newest sample in the time-to-first-event EWMA. */
      alpha: z.number().gt(0).max(1).default(0.3),
      /** Share of requests that try another target than the fastest, so its estimate stays fresh. */
      explore: z.number().min(0).max(1).default(0.05),
    })
    .prefault({}),
  /** Capabilities of models by `provider/model` or bare id, where providers do not say. */
  models: z.record(z.string(), CapabilitiesConfig).default(() => ({})),
  auto: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Models `auto` may pick, in preference order; default: every listed model. */
      candidates: z.array(TargetConfig).optional(),
      order: z.enum(['listed', 'cheapest']).default('listed'),
      strategy: Strategy.default('fallback'),
      rules: z.array(RuleConfig).optional(),
    })
    .prefault({}),
})
export type RoutingConfig = z.infer<typeof RoutingConfig>

export function parseSection<S extends z.ZodType>(schema: S, value: unknown, section: string): z.infer<S> {
  const parsed = schema.safeParse(value ?? {})
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  - ${[section, formatPath(i.path)].filter(Boolean).join('.')}: ${i.message}`)
  throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
}
