import type { FileObject } from '../files.js'
import type { JobLease } from '../lease.js'

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'
export const ACTIVE: readonly JobStatus[] = ['validating_files', 'queued', 'running']

type Hyper = 'auto' | number

export interface Hyperparameters {
  batch_size: Hyper
  learning_rate_multiplier: Hyper
  n_epochs: Hyper
}

/** OpenAI's FineTuningJob object. */
export interface FineTuningJob {
  id: string
  object: 'fine_tuning.job'
  model: string
  created_at: number
  finished_at: number | null
  fine_tuned_model: string | null
  organization_id: string
  result_files: string[]
  status: JobStatus
  validation_file: string | null
  training_file: string
  hyperparameters: Hyperparameters
  trained_tokens: number | null
  error: { code: string; message: string; param: string | null } | null
  seed: number
  estimated_finish: number | null
  integrations: unknown[] | null
  metadata: Record<string, string> | null
  method: { type: string; [k: string]: unknown }
  user_provided_suffix: string | null
}

/** OpenAI's FineTuningJobEvent object. */
export interface JobEvent {
  object: 'fine_tuning.job.event'
  id: string
  created_at: number
  level: 'info' | 'warn' | 'error'
  message: string
  data: Record<string, unknown> | null
  type: 'message' | 'metrics'
}

/** OpenAI's FineTuningJobCheckpoint object. */
export interface JobCheckpoint {
  object: 'fine_tuning.job.checkpoint'
  id: string
  created_at: number
  fine_tuned_model_checkpoint: string
  fine_tuning_job_id: string
  metrics: Record<string, number>
  step_number: number
}

/** How an in-context adapter job builds its adapter (config defaults, overridable per job). */
export interface AdapterOptions {
  mode: 'static' | 'retrieval'
  maxDemonstrations: number
  retrieveK: number
  evaluate: boolean
}

export interface StoredJob extends FineTuningJob {
  owner: string | null
  kind: 'adapter' | 'pass-through'
  adapter?: AdapterOptions
  /** A pass-through job: where it really runs, and its files there → ours. */
  remote?: { provider: string; id: string; model: string; files: Record<string, string> }
  /** Creation order within a second (created_at has one-second resolution): lists sort by it. */
  order?: number
  /** The evaluation's outcome, for the checkpoint's metrics. */
  scores?: { base: number; adapter: number; examples: number; metric: string } | null
  /** An adapter job's lease: the runner working on it and until when (ms since the epoch); `until: 0` once released. */
  lease?: JobLease
}

export function publicJob(job: StoredJob): FineTuningJob {
  const { owner: _o, kind: _k, adapter: _a, remote: _r, scores: _s, order: _n, lease: _l, ...pub } = job
  return pub
}

/** The one checkpoint of an adapter job: the adapter itself, callable by its model id. */
export function adapterCheckpoint(job: StoredJob): JobCheckpoint[] {
  if (job.status !== 'succeeded' || !job.fine_tuned_model) return []
  const steps = job.scores?.examples ?? 0
  const metrics: Record<string, number> = { step: steps }
  if (job.scores) {
    metrics.base_similarity = job.scores.base
    metrics.adapter_similarity = job.scores.adapter
  }
  return [
    {
      object: 'fine_tuning.job.checkpoint',
      id: `ftckpt_${job.id.slice('ftjob-'.length)}`,
      created_at: job.finished_at ?? job.created_at,
      fine_tuned_model_checkpoint: job.fine_tuned_model,
      fine_tuning_job_id: job.id,
      metrics,
      step_number: steps,
    },
  ]
}

/** The hyperparameters a create request asks for: top-level ones, overridden by the method's own. */
export function requestedHyperparameters(input: { hyperparameters?: Partial<Record<keyof Hyperparameters, Hyper>>; method?: { type: string; [k: string]: unknown } | null }): Hyperparameters {
  const method = input.method as { type?: string; supervised?: { hyperparameters?: Record<string, unknown> }; dpo?: { hyperparameters?: Record<string, unknown> } } | null | undefined
  const fromMethod = method?.type === 'dpo' ? method.dpo?.hyperparameters : method?.supervised?.hyperparameters
  const hp = { ...input.hyperparameters, ...fromMethod } as Record<string, unknown>
  const pick = (k: string): Hyper => (typeof hp[k] === 'number' ? (hp[k] as number) : 'auto')
  return { batch_size: pick('batch_size'), learning_rate_multiplier: pick('learning_rate_multiplier'), n_epochs: pick('n_epochs') }
}

const LEGACY_STATUS: Record<JobStatus, string> = { validating_files: 'pending', queued: 'pending', running: 'running', succeeded: 'succeeded', failed: 'failed', cancelled: 'cancelled' }

/** The same job as the legacy /v1/fine-tunes API showed it (`object: "fine-tune"`). */
export function legacyJob(job: FineTuningJob, files: { training: FileObject[]; validation: FileObject[]; results: FileObject[] }, events?: JobEvent[]) {
  const hp = job.hyperparameters
  const num = (v: Hyper) => (v === 'auto' ? null : v)
  return {
    id: job.id,
    object: 'fine-tune' as const,
    model: job.model,
    created_at: job.created_at,
    updated_at: job.finished_at ?? events?.[events.length - 1]?.created_at ?? job.created_at,
    fine_tuned_model: job.fine_tuned_model,
    organization_id: job.organization_id,
    status: LEGACY_STATUS[job.status],
    hyperparams: { batch_size: num(hp.batch_size), learning_rate_multiplier: num(hp.learning_rate_multiplier), n_epochs: num(hp.n_epochs), prompt_loss_weight: null },
    training_files: files.training,
    validation_files: files.validation,
    result_files: files.results,
    ...(events ? { events: events.map((e) => ({ object: 'fine-tune-event' as const, created_at: e.created_at, level: e.level, message: e.message })) } : {}),
  }
}
