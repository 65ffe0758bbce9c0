import { z } from 'zod'
import { ConfigError } from '../../config.js'
import { formatPath } from '../../config.js'

/** The `fineTuning` section of gateway.config.json. */
export const FineTuningConfig = z.object({
  /** Demonstrations an adapter shows on every request (its diverse, representative set). */
  maxDemonstrations: z.number().int().min(0).max(64).default(8),
  /** Their budget of estimated prompt tokens: what every request to the ft: model costs extra, at most. */
  maxDemonstrationTokens: z.number().int().positive().default(2000),
  /** "static": the same demonstrations on every request; "retrieval": the examples closest to each request. */
  mode: z.enum(['static', 'retrieval']).default('static'),
  /** Demonstrations retrieved per request in retrieval mode. */
  retrieveK: z.number().int().min(1).max(32).default(4),
  /** Examples kept for retrieval, at most. */
  maxPool: z.number().int().positive().max(20_000).default(2000),
  /** An embeddings model (any name the router resolves) for selection, retrieval and scoring; lexical without it. */
  embeddingModel: z.string().min(1).optional(),
  /** Examples evaluated with and without the adapter (each costs two base-model calls); 0 skips evaluation. */
  maxEvalExamples: z.number().int().min(0).max(500).default(20),
  /** Share of the training examples held out for evaluation when no validation file is given. */
  heldOutFraction: z.number().min(0).max(0.5).default(0.2),
  /** Evaluation calls of one job in flight at once. */
  concurrency: z.number().int().min(1).max(16).default(2),
  /** Provider ids whose upstream can fine-tune for real (openai-compatible, azure-openai): their jobs are passed through. */
  passThrough: z.array(z.string()).default(() => []),
  /**
   * Seconds a runner's lease on an adapter job lasts (renewed every third of it while the job runs).
   * Another runner takes over a job only once its lease has expired: this is how long a job stalls
   * after the process running it dies.
   */
  leaseSec: z.number().min(1).max(3600).default(60),
})
export type FineTuningConfig = z.infer<typeof FineTuningConfig>

export function parseFineTuningConfig(raw: unknown): FineTuningConfig {
  const parsed = FineTuningConfig.safeParse(raw ?? {})
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  - fineTuning.${formatPath(i.path)}: ${i.message}`)
  throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
}
