import { z } from 'zod'
import type { ProviderConfig } from '../../config.js'
import { ConfigError } from '../../config.js'
import { GatewayError } from '../../errors.js'
import type { HttpClient, HttpResponse } from '../../providers/shared/http.js'
import { vertexAccess, VertexOptions } from '../../providers/vertex/index.js'
import { googleSend } from '../../providers/vertex/transport.js'
import { describeLineErrors } from '../jsonl.js'
import { requestedHyperparameters, type FineTuningJob, type JobCheckpoint, type JobEvent, type JobStatus } from './job.js'
import type { FineTuningUpstream, Page, RemoteJob, SourceFile } from './pass-through.js'
import { toVertexTuningJsonl } from './to-vertex-tuning.js'

/** google.protobuf int64 fields arrive as JSON strings (numbers are accepted too). */
const Int64 = z.union([z.string(), z.number()]).optional()

/** Vertex AI's TuningJob resource (the fields the gateway reads). */
const TuningJob = z.looseObject({
  name: z.string().min(1),
  baseModel: z.string().optional(),
  tunedModelDisplayName: z.string().optional(),
  state: z.string().optional(),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
  startTime: z.string().optional(),
  endTime: z.string().optional(),
  error: z.looseObject({ code: z.number().optional(), message: z.string().optional() }).optional(),
  supervisedTuningSpec: z
    .looseObject({
      trainingDatasetUri: z.string().optional(),
      validationDatasetUri: z.string().optional(),
      hyperParameters: z.looseObject({ epochCount: Int64, learningRateMultiplier: z.number().optional(), adapterSize: z.string().optional() }).optional(),
    })
    .optional(),
  tunedModel: z
    .looseObject({
      model: z.string().optional(),
      endpoint: z.string().optional(),
      checkpoints: z.array(z.looseObject({ checkpointId: z.string().optional(), epoch: Int64, step: Int64, endpoint: z.string().optional() })).optional(),
    })
    .optional(),
  tuningDataStats: z.looseObject({ supervisedTuningDataStats: z.looseObject({ totalBillableTokenCount: Int64 }).optional() }).optional(),
})
type TuningJob = z.infer<typeof TuningJob>

const StorageObject = z.looseObject({ name: z.string().min(1), bucket: z.string().min(1) })

/** JobState → OpenAI's statuses. CANCELLING counts as cancelled: the cancel was accepted and the job stops. */
const STATUS: Record<string, JobStatus> = {
  JOB_STATE_PENDING: 'validating_files',
  JOB_STATE_QUEUED: 'queued',
  JOB_STATE_PAUSED: 'queued',
  JOB_STATE_RUNNING: 'running',
  JOB_STATE_UPDATING: 'running',
  JOB_STATE_SUCCEEDED: 'succeeded',
  JOB_STATE_FAILED: 'failed',
  JOB_STATE_EXPIRED: 'failed',
  JOB_STATE_CANCELLING: 'cancelled',
  JOB_STATE_CANCELLED: 'cancelled',
}

/** google.rpc.Code numbers a failed job's error carries → OpenAI-style error codes. */
const RPC_CODES: Record<number, string> = { 2: 'unknown', 3: 'invalid_argument', 4: 'deadline_exceeded', 5: 'not_found', 7: 'permission_denied', 8: 'resource_exhausted', 9: 'failed_precondition', 13: 'internal', 14: 'unavailable' }

const seconds = (time: string | undefined): number | undefined => {
  const ms = time ? Date.parse(time) : Number.NaN
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined
}
const int = (v: string | number | undefined): number | undefined => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v))

/**
 * Vertex AI supervised tuning of Gemini models behind OpenAI's fine-tuning
 * API: the training (and validation) file is converted to Gemini's tuning
 * format and uploaded to the provider's `tuningBucket` with the Cloud Storage
 * JSON API, the job is a `tuningJobs` resource, and its state, checkpoints
 * and tuned model are read back into OpenAI's job, event and checkpoint
 * objects. Vertex has no events API: events are derived from the job's
 * timestamps and state on every read, so they need no storage of their own.
 */
export function vertexFineTuning(config: ProviderConfig, http: HttpClient): FineTuningUpstream {
  const opts = VertexOptions.parse(config)
  const id = opts.id
  if (!opts.tuningBucket) {
    throw new ConfigError(
      `invalid gateway config:\n  - fineTuning.passThrough: provider "${id}" (vertex) has no "tuningBucket": set providers[…].tuningBucket to "gs://<bucket>/<prefix>", the Cloud Storage location where Vertex AI tuning jobs read their training files.`,
    )
  }
  const access = vertexAccess(opts, http)
  const [, bucket, prefix = ''] = /^gs:\/\/([^/]+)\/?(.*?)\/*$/.exec(opts.tuningBucket)!
  const storage = opts.storageBaseURL.replace(/\/+$/, '')
  const t = (label: string) => ({ id, label, http, timeoutMs: opts.timeoutMs, authHeaders: access.authHeaders, onUnauthenticated: access.onUnauthenticated })
  const vertex = t('Vertex AI')

  const json = async (res: HttpResponse, what: string): Promise<unknown> => {
    try {
      return await res.json()
    } catch (err) {
      throw new GatewayError('upstream', `Provider "${id}" (Vertex AI) sent ${what} that is not JSON.`, { cause: err })
    }
  }
  const tuningJob = async (res: HttpResponse): Promise<TuningJob> => {
    const parsed = TuningJob.safeParse(await json(res, 'a tuning job'))
    if (!parsed.success) throw new GatewayError('upstream', `Provider "${id}" (Vertex AI) sent a tuning job of an unexpected shape (${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}).`)
    return parsed.data
  }
  const getTuningJob = async (name: string, signal: AbortSignal) => tuningJob(await googleSend(vertex, 'GET', `${access.host}/v1/${name}`, undefined, signal))

  async function stage(file: SourceFile, param: 'training_file' | 'validation_file', signal: AbortSignal): Promise<string> {
    const converted = toVertexTuningJsonl(file.content)
    if (converted.errors.length) {
      throw new GatewayError('invalid_request', `${param} ${file.id} cannot be converted to Vertex AI's tuning format: ${describeLineErrors(converted.errors, 5)}`, {
        param,
        code: param === 'training_file' ? 'invalid_training_file' : 'invalid_validation_file',
      })
    }
    const object = `${prefix ? `${prefix}/` : ''}${file.id}.jsonl`
    const url = `${storage}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=media&name=${encodeURIComponent(object)}`
    const res = await googleSend(t('Cloud Storage'), 'POST', url, { body: converted.jsonl, contentType: 'application/jsonl' }, signal)
    const stored = StorageObject.safeParse(await json(res, 'a Cloud Storage object'))
    if (!stored.success) throw new GatewayError('upstream', `Provider "${id}" (Cloud Storage) answered the upload without the object's name and bucket.`)
    return `gs://${stored.data.bucket}/${stored.data.name}`
  }

  /** What the create body asks of Vertex, refused with the field at fault where Vertex cannot run it. */
  function tuningSpec(body: Parameters<FineTuningUpstream['createJob']>[0]) {
    const type = body.method?.type ?? 'supervised'
    if (type !== 'supervised') {
      throw new GatewayError('invalid_request', `Vertex AI jobs are passed through as supervised tuning; method.type "${type}" is not supported there (send "adapter" for an in-context adapter instead).`, { param: 'method.type', code: 'unsupported_method' })
    }
    const hp = requestedHyperparameters(body)
    if (hp.batch_size !== 'auto') throw new GatewayError('invalid_request', 'Vertex AI tuning has no batch size: leave hyperparameters.batch_size unset or "auto".', { param: 'hyperparameters.batch_size', code: 'unsupported_hyperparameter' })
    if (hp.n_epochs !== 'auto' && (!Number.isInteger(hp.n_epochs) || hp.n_epochs < 1)) {
      throw new GatewayError('invalid_request', `hyperparameters.n_epochs must be a positive integer (Vertex AI's epochCount); got ${hp.n_epochs}.`, { param: 'hyperparameters.n_epochs', code: 'invalid_hyperparameter' })
    }
    if (hp.learning_rate_multiplier !== 'auto' && !(hp.learning_rate_multiplier > 0)) {
      throw new GatewayError('invalid_request', `hyperparameters.learning_rate_multiplier must be positive; got ${hp.learning_rate_multiplier}.`, { param: 'hyperparameters.learning_rate_multiplier', code: 'invalid_hyperparameter' })
    }
    const hyperParameters = {
      ...(hp.n_epochs !== 'auto' ? { epochCount: String(hp.n_epochs) } : {}),
      ...(hp.learning_rate_multiplier !== 'auto' ? { learningRateMultiplier: hp.learning_rate_multiplier } : {}),
    }
    return (training: string, validation: string | undefined) => ({
      baseModel: body.model,
      supervisedTuningSpec: { trainingDatasetUri: training, ...(validation ? { validationDatasetUri: validation } : {}), ...(Object.keys(hyperParameters).length ? { hyperParameters } : {}) },
      ...(body.suffix ? { tunedModelDisplayName: body.suffix } : {}),
    })
  }

  return {
    provider: id,
    async createJob(body, source, signal) {
      const create = tuningSpec(body) // before anything is uploaded
      const files: Record<string, string> = {}
      const training = await stage(source.training, 'training_file', signal)
      files[training] = source.training.id
      const validation = source.validation ? await stage(source.validation, 'validation_file', signal) : undefined
      if (validation) files[validation] = source.validation!.id
      const res = await googleSend(vertex, 'POST', `${access.prefix}/tuningJobs`, { body: JSON.stringify(create(training, validation)), contentType: 'application/json' }, signal)
      return { job: asOpenAIJob(await tuningJob(res)), files }
    },
    getJob: async (name, signal) => asOpenAIJob(await getTuningJob(name, signal)),
    async cancelJob(name, signal) {
      await googleSend(vertex, 'POST', `${access.host}/v1/${name}:cancel`, { body: '{}', contentType: 'application/json' }, signal)
      return asOpenAIJob(await getTuningJob(name, signal))
    },
    listEvents: async (name, page, signal) => paginate(jobEvents(await getTuningJob(name, signal), id), page),
    listCheckpoints: async (name, page, signal) => paginate(jobCheckpoints(await getTuningJob(name, signal)), page),
    async fileContent() {
      throw new GatewayError('not_found', `Provider "${id}" (Vertex AI) has no result files.`)
    },
    async deleteModel(_endpoint, name, signal) {
      const model = (await getTuningJob(name, signal)).tunedModel?.model
      if (!model) throw new GatewayError('not_found', `Vertex AI tuning job ${name} has no tuned model to delete.`, { param: 'model', code: 'model_not_found' })
      // The model resource with all its versions (`…/models/{id}@1` names one version).
      await googleSend(vertex, 'DELETE', `${access.host}/v1/${model.replace(/@[^/]*$/, '')}`, undefined, signal)
      return true
    },
  }
}

/** A TuningJob as OpenAI's FineTuningJob, with Vertex's names (the runner adds the provider prefix and our ids). */
function asOpenAIJob(t: TuningJob): RemoteJob {
  const status = STATUS[t.state ?? ''] ?? 'queued'
  const hp = t.supervisedTuningSpec?.hyperParameters
  const epochs = int(hp?.epochCount)
  const tokens = int(t.tuningDataStats?.supervisedTuningDataStats?.totalBillableTokenCount)
  const done = status === 'succeeded' || status === 'failed' || t.state === 'JOB_STATE_CANCELLED'
  const hyperparameters = { batch_size: 'auto' as const, learning_rate_multiplier: hp?.learningRateMultiplier ?? ('auto' as const), n_epochs: epochs ?? ('auto' as const) }
  let error: FineTuningJob['error'] = null
  if (status === 'failed') {
    error =
      t.state === 'JOB_STATE_EXPIRED'
        ? { code: 'expired', message: t.error?.message ?? 'The Vertex AI tuning job expired before it finished.', param: null }
        : { code: RPC_CODES[t.error?.code ?? 2] ?? `vertex_error_${t.error?.code}`, message: t.error?.message ?? 'The Vertex AI tuning job failed.', param: null }
  }
  return {
    id: t.name,
    object: 'fine_tuning.job',
    ...(t.baseModel ? { model: t.baseModel } : {}),
    ...(seconds(t.createTime) !== undefined ? { created_at: seconds(t.createTime) } : {}),
    finished_at: done ? (seconds(t.endTime ?? t.updateTime) ?? null) : null,
    fine_tuned_model: t.tunedModel?.endpoint ?? null,
    status,
    ...(t.supervisedTuningSpec?.trainingDatasetUri ? { training_file: t.supervisedTuningSpec.trainingDatasetUri } : {}),
    validation_file: t.supervisedTuningSpec?.validationDatasetUri ?? null,
    result_files: [],
    hyperparameters,
    trained_tokens: status === 'succeeded' ? (tokens ?? null) : null,
    error,
    estimated_finish: null,
    method: { type: 'supervised', supervised: { hyperparameters } },
  }
}

/** Events derived from the job's timestamps and state, oldest first; ids are stable across reads. */
function jobEvents(t: TuningJob, provider: string): JobEvent[] {
  const key = t.name.split('/').pop() ?? t.name
  const created = seconds(t.createTime) ?? 0
  const out: JobEvent[] = []
  const add = (n: string, at: string | undefined, message: string, level: JobEvent['level'] = 'info') =>
    out.push({ object: 'fine_tuning.job.event', id: `ftevent-${key}-${n}`, created_at: seconds(at) ?? created, level, message, data: { state: t.state ?? null }, type: 'message' })
  add('created', t.createTime, `Created Vertex AI tuning job ${t.name}${t.baseModel ? ` for ${t.baseModel}` : ''}`)
  if (t.startTime) add('started', t.startTime, 'Fine-tuning job started')
  const end = t.endTime ?? t.updateTime
  switch (t.state) {
    case 'JOB_STATE_PAUSED':
      add('paused', t.updateTime, 'The tuning job is paused', 'warn')
      break
    case 'JOB_STATE_CANCELLING':
      add('cancelling', t.updateTime, 'Cancellation requested; Vertex AI is stopping the job')
      break
    case 'JOB_STATE_CANCELLED':
      add('cancelled', end, 'Fine-tuning job cancelled')
      break
    case 'JOB_STATE_FAILED':
      add('failed', end, `The job failed: ${t.error?.message ?? 'no reason given'}`, 'error')
      break
    case 'JOB_STATE_EXPIRED':
      add('expired', end, 'The job expired before it finished', 'error')
      break
    case 'JOB_STATE_SUCCEEDED':
      if (t.tunedModel?.endpoint) add('model', end, `New fine-tuned model created: ${provider}/${t.tunedModel.endpoint}`)
      add('succeeded', end, 'The job has successfully completed')
      break
  }
  return out.reverse()
}

/** Vertex's intermediate checkpoints (each deployed to its own endpoint), latest first; else the tuned model alone. */
function jobCheckpoints(t: TuningJob): JobCheckpoint[] {
  const key = t.name.split('/').pop() ?? t.name
  const at = seconds(t.endTime ?? t.updateTime) ?? seconds(t.createTime) ?? 0
  const tuned = t.tunedModel
  const listed = (tuned?.checkpoints ?? []).filter((c) => c.endpoint)
  const checkpoints = listed.length ? listed : tuned?.endpoint ? [{ checkpointId: 'final', endpoint: tuned.endpoint, step: undefined, epoch: undefined }] : []
  return checkpoints
    .map((c): JobCheckpoint => {
      const step = int(c.step) ?? 0
      const epoch = int(c.epoch)
      return {
        object: 'fine_tuning.job.checkpoint',
        id: `ftckpt-${key}-${c.checkpointId ?? step}`,
        created_at: at,
        fine_tuned_model_checkpoint: c.endpoint!,
        fine_tuning_job_id: t.name,
        metrics: { step, ...(epoch !== undefined ? { epoch } : {}) },
        step_number: step,
      }
    })
    .sort((a, b) => b.step_number - a.step_number)
}

function paginate<T extends { id: string }>(all: T[], page: { after?: string; limit: number }): Page<T> {
  const start = page.after ? all.findIndex((x) => x.id === page.after) + 1 || all.length : 0
  return { data: all.slice(start, start + page.limit), has_more: start + page.limit < all.length }
}
