import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { GatewayError } from '../errors.js'
import type { FileObject, FileStore } from '../jobs/files.js'
import { legacyJob, type FineTuningJob } from '../jobs/fine-tuning/job.js'
import type { CreateJobInput, FineTuneRunner } from '../jobs/fine-tuning/runner.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { AppEnv, GatewayApp } from './env.js'
import { listQuery } from './files.js'

const Hyper = z.union([z.literal('auto'), z.number()])
const Hyperparameters = z.object({ batch_size: Hyper.optional(), learning_rate_multiplier: Hyper.optional(), n_epochs: Hyper.optional() })

export const FineTuningJobSchema = z
  .object({
    id: z.string(),
    object: z.literal('fine_tuning.job'),
    model: z.string(),
    created_at: z.number().int(),
    finished_at: z.number().int().nullable(),
    fine_tuned_model: z.string().nullable(),
    organization_id: z.string(),
    result_files: z.array(z.string()),
    status: z.enum(['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled']),
    validation_file: z.string().nullable(),
    training_file: z.string(),
    hyperparameters: Hyperparameters,
    trained_tokens: z.number().int().nullable(),
    error: z.object({ code: z.string(), message: z.string(), param: z.string().nullable() }).nullable(),
    seed: z.number().int(),
    estimated_finish: z.number().int().nullable(),
    integrations: z.array(z.unknown()).nullable(),
    metadata: z.record(z.string(), z.string()).nullable(),
    method: z.looseObject({ type: z.string() }),
    user_provided_suffix: z.string().nullable(),
  })
  .openapi('FineTuningJob')

const EventSchema = z
  .object({
    object: z.literal('fine_tuning.job.event'),
    id: z.string(),
    created_at: z.number().int(),
    level: z.enum(['info', 'warn', 'error']),
    message: z.string(),
    data: z.record(z.string(), z.unknown()).nullable(),
    type: z.enum(['message', 'metrics']),
  })
  .openapi('FineTuningJobEvent')

const CheckpointSchema = z
  .object({
    object: z.literal('fine_tuning.job.checkpoint'),
    id: z.string(),
    created_at: z.number().int(),
    fine_tuned_model_checkpoint: z.string(),
    fine_tuning_job_id: z.string(),
    metrics: z.record(z.string(), z.number()),
    step_number: z.number().int(),
  })
  .openapi('FineTuningJobCheckpoint')

const AdapterOptions = z
  .object({
    mode: z.enum(['static', 'retrieval']).optional(),
    max_demonstrations: z.number().int().min(0).max(64).optional(),
    retrieve_k: z.number().int().min(1).max(32).optional(),
    evaluate: z.boolean().optional(),
  })
  .openapi('FineTuningAdapterOptions', { description: 'Gateway extension: how an in-context adapter is built (defaults from the fineTuning config).' })

const CreateJob = z
  .looseObject({
    model: z.string().min(1),
    training_file: z.string().min(1),
    validation_file: z.string().nullable().optional(),
    suffix: z.string().nullable().optional(),
    seed: z.number().int().nullable().optional(),
    metadata: z.record(z.string(), z.string()).nullable().optional(),
    hyperparameters: Hyperparameters.optional(),
    method: z.looseObject({ type: z.enum(['supervised', 'dpo', 'reinforcement', 'adapter']) }).nullable().optional(),
    integrations: z.array(z.unknown()).nullable().optional(),
    adapter: AdapterOptions.optional(),
  })
  .openapi('CreateFineTuningJobRequest')

const LegacyCreate = z
  .looseObject({
    training_file: z.string().min(1),
    validation_file: z.string().nullable().optional(),
    model: z.string().min(1),
    suffix: z.string().nullable().optional(),
    n_epochs: z.number().int().positive().nullable().optional(),
    batch_size: z.number().int().positive().nullable().optional(),
    learning_rate_multiplier: z.number().positive().nullable().optional(),
  })
  .openapi('CreateFineTuneRequest')

const LegacyFineTune = z
  .looseObject({
    id: z.string(),
    object: z.literal('fine-tune'),
    model: z.string(),
    created_at: z.number().int(),
    updated_at: z.number().int(),
    fine_tuned_model: z.string().nullable(),
    organization_id: z.string(),
    status: z.string(),
    hyperparams: z.record(z.string(), z.number().nullable()),
    training_files: z.array(z.unknown()),
    validation_files: z.array(z.unknown()),
    result_files: z.array(z.unknown()),
    events: z.array(z.object({ object: z.literal('fine-tune-event'), created_at: z.number().int(), level: z.string(), message: z.string() })).optional(),
  })
  .openapi('FineTune')

const Error = z.object({ error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }) })
const security = [{ bearerAuth: [] }]
const jobId = z.object({ fine_tuning_job_id: z.string().openapi({ param: { name: 'fine_tuning_job_id', in: 'path' }, example: 'ftjob-abc123' }) })
const legacyId = z.object({ fine_tune_id: z.string().openapi({ param: { name: 'fine_tune_id', in: 'path' }, example: 'ftjob-abc123' }) })
const pageQuery = z.object({ after: z.string().optional(), limit: z.string().optional() })
const listOf = <T extends z.ZodType>(item: T, name: string) =>
  z.object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean(), first_id: z.string().nullable().optional(), last_id: z.string().nullable().optional() }).openapi(name)
const errors = { 400: jsonContent(Error, 'Invalid request'), 401: jsonContent(Error, 'Missing or wrong API key'), 404: jsonContent(Error, 'No such job') }

export interface FineTuningRouteDeps {
  runner: FineTuneRunner
  files: FileStore
  bodyLimit: number
}

/**
 * OpenAI's fine-tuning API (current and legacy routes, one set of jobs) and
 * DELETE /v1/models/{model}. Jobs are in-context adapters, or passed through
 * to a provider that really fine-tunes (src/jobs/fine-tuning/runner.ts).
 */
export function fineTuningRoutes(app: GatewayApp, deps: FineTuningRouteDeps): void {
  const { runner } = deps
  const owner = (c: Context<AppEnv>) => c.get('keyId')

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/fine_tuning/jobs',
      operationId: 'createFineTuningJob',
      tags: ['Fine-tuning'],
      summary: 'Start a fine-tuning job: an in-context adapter on the base model, or the provider’s own fine-tuning where it has one',
      security,
      request: { body: { content: { 'application/json': { schema: CreateJob } }, required: true } },
      responses: { 200: jsonContent(FineTuningJobSchema, 'The job'), ...errors },
    },
    async (c) => {
      const body = await readJson(c, CreateJob, deps.bodyLimit)
      return c.json(await runner.create(body as CreateJobInput, owner(c)))
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/fine_tuning/jobs',
      operationId: 'listFineTuningJobs',
      tags: ['Fine-tuning'],
      summary: 'Your fine-tuning jobs, newest first (after/limit pagination, metadata[k]=v filter)',
      security,
      request: { query: pageQuery },
      responses: { 200: jsonContent(listOf(FineTuningJobSchema, 'ListFineTuningJobsResponse'), 'A page of jobs'), 400: errors[400] },
    },
    async (c) => {
      const q = c.req.query()
      const { after, limit } = listQuery(q, 100)
      const result = await runner.list(owner(c), { after, limit, metadata: metadataFilter(q) })
      return c.json({ object: 'list', ...result })
    },
  )

  defineRoute(
    app,
    { method: 'get', path: '/v1/fine_tuning/jobs/{fine_tuning_job_id}', operationId: 'retrieveFineTuningJob', tags: ['Fine-tuning'], summary: 'One fine-tuning job', security, request: { params: jobId }, responses: { 200: jsonContent(FineTuningJobSchema, 'The job'), ...errors } },
    async (c) => c.json(await runner.get(c.req.param('fine_tuning_job_id') ?? '', owner(c))),
  )

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel',
      operationId: 'cancelFineTuningJob',
      tags: ['Fine-tuning'],
      summary: 'Cancel a job that is validating, queued or running',
      security,
      request: { params: jobId },
      responses: { 200: jsonContent(FineTuningJobSchema, 'The job, cancelled'), ...errors },
    },
    async (c) => c.json(await runner.cancel(c.req.param('fine_tuning_job_id') ?? '', owner(c))),
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/fine_tuning/jobs/{fine_tuning_job_id}/events',
      operationId: 'listFineTuningEvents',
      tags: ['Fine-tuning'],
      summary: "A job's events, newest first: each build step and the evaluation scores (after/limit pagination)",
      security,
      request: { params: jobId, query: pageQuery },
      responses: { 200: jsonContent(listOf(EventSchema, 'ListFineTuningJobEventsResponse'), 'A page of events'), ...errors },
    },
    async (c) => {
      const { after, limit } = listQuery(c.req.query(), 100)
      return c.json({ object: 'list', ...(await runner.listEvents(c.req.param('fine_tuning_job_id') ?? '', owner(c), { after, limit })) })
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints',
      operationId: 'listFineTuningJobCheckpoints',
      tags: ['Fine-tuning'],
      summary: "A job's checkpoints (an adapter job has one: the adapter, with its evaluation scores)",
      security,
      request: { params: jobId, query: pageQuery },
      responses: { 200: jsonContent(listOf(CheckpointSchema, 'ListFineTuningJobCheckpointsResponse'), 'A page of checkpoints'), ...errors },
    },
    async (c) => {
      const q = c.req.query()
      const { after, limit } = listQuery({ limit: '10', ...q }, 100)
      const result = await runner.listCheckpoints(c.req.param('fine_tuning_job_id') ?? '', owner(c), { after, limit })
      return c.json({ object: 'list', ...result, first_id: result.data[0]?.id ?? null, last_id: result.data[result.data.length - 1]?.id ?? null })
    },
  )

  // The legacy API (/v1/fine-tunes): the same jobs, shown as `fine-tune` objects.
  const legacy = async (c: Context<AppEnv>, job: FineTuningJob, withEvents: boolean) => {
    const files = async (ids: Array<string | null>) => (await Promise.all(ids.filter((id): id is string => !!id).map((id) => deps.files.get(id, owner(c)).catch(() => undefined)))).filter((f): f is FileObject => !!f)
    return legacyJob(
      job,
      { training: await files([job.training_file]), validation: await files([job.validation_file]), results: await files(job.result_files) },
      withEvents ? await runner.allEvents(job.id, owner(c)) : undefined,
    )
  }

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/fine-tunes',
      operationId: 'createFineTune',
      tags: ['Fine-tuning (legacy)'],
      summary: 'Legacy: start a fine-tuning job (a prompt/completion or chat file); the same job as POST /v1/fine_tuning/jobs',
      security,
      request: { body: { content: { 'application/json': { schema: LegacyCreate } }, required: true } },
      responses: { 200: jsonContent(LegacyFineTune, 'The job, as a fine-tune object'), ...errors },
    },
    async (c) => {
      const b = await readJson(c, LegacyCreate, deps.bodyLimit)
      const hyperparameters: CreateJobInput['hyperparameters'] = {}
      if (b.n_epochs != null) hyperparameters.n_epochs = b.n_epochs
      if (b.batch_size != null) hyperparameters.batch_size = b.batch_size
      if (b.learning_rate_multiplier != null) hyperparameters.learning_rate_multiplier = b.learning_rate_multiplier
      const job = await runner.create({ model: b.model, training_file: b.training_file, validation_file: b.validation_file, suffix: b.suffix, hyperparameters }, owner(c))
      return c.json(await legacy(c, job, true))
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/fine-tunes',
      operationId: 'listFineTunes',
      tags: ['Fine-tuning (legacy)'],
      summary: 'Legacy: your fine-tuning jobs as fine-tune objects',
      security,
      responses: { 200: jsonContent(z.object({ object: z.literal('list'), data: z.array(LegacyFineTune) }), 'The jobs') },
    },
    async (c) => {
      const { data } = await runner.list(owner(c), { limit: 10_000 })
      return c.json({ object: 'list', data: await Promise.all(data.map((j) => legacy(c, j, false))) })
    },
  )

  defineRoute(
    app,
    { method: 'get', path: '/v1/fine-tunes/{fine_tune_id}', operationId: 'retrieveFineTune', tags: ['Fine-tuning (legacy)'], summary: 'Legacy: one job, with its events', security, request: { params: legacyId }, responses: { 200: jsonContent(LegacyFineTune, 'The job'), ...errors } },
    async (c) => c.json(await legacy(c, await runner.get(c.req.param('fine_tune_id') ?? '', owner(c)), true)),
  )

  defineRoute(
    app,
    { method: 'post', path: '/v1/fine-tunes/{fine_tune_id}/cancel', operationId: 'cancelFineTune', tags: ['Fine-tuning (legacy)'], summary: 'Legacy: cancel a job', security, request: { params: legacyId }, responses: { 200: jsonContent(LegacyFineTune, 'The job'), ...errors } },
    async (c) => c.json(await legacy(c, await runner.cancel(c.req.param('fine_tune_id') ?? '', owner(c)), true)),
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/fine-tunes/{fine_tune_id}/events',
      operationId: 'listFineTuneEvents',
      tags: ['Fine-tuning (legacy)'],
      summary: "Legacy: a job's events, oldest first",
      security,
      request: { params: legacyId },
      responses: { 200: jsonContent(z.object({ object: z.literal('list'), data: z.array(z.object({ object: z.literal('fine-tune-event'), created_at: z.number().int(), level: z.string(), message: z.string() })) }), 'The events'), ...errors },
    },
    async (c) => {
      const events = await runner.allEvents(c.req.param('fine_tune_id') ?? '', owner(c))
      return c.json({ object: 'list', data: events.map((e) => ({ object: 'fine-tune-event', created_at: e.created_at, level: e.level, message: e.message })) })
    },
  )

  defineRoute(
    app,
    {
      method: 'delete',
      path: '/v1/models/{model}',
      honoPath: '/v1/models/:model{.+}',
      operationId: 'deleteModel',
      tags: ['Models'],
      summary: 'Delete one of your fine-tuned models (removes an in-context adapter, or deletes it at the provider that trained it)',
      security,
      request: { params: z.object({ model: z.string().openapi({ param: { name: 'model', in: 'path' }, example: 'ft:mock-1:support:abc123' }) }) },
      responses: { 200: jsonContent(z.object({ id: z.string(), object: z.literal('model'), deleted: z.boolean() }).openapi('DeleteModelResponse'), 'Deleted'), 403: jsonContent(Error, 'Not a fine-tuned model'), 404: jsonContent(Error, 'No such fine-tuned model') },
    },
    async (c) => c.json(await runner.deleteModel(decodeURIComponent(c.req.param('model') ?? ''), owner(c))),
  )
}

/** `metadata[k]=v` pairs (deepObject style), or null for `metadata=null` (jobs without metadata). */
function metadataFilter(q: Record<string, string>): Record<string, string> | null | undefined {
  if (q.metadata === 'null') return null
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(q)) {
    const m = /^metadata\[(.+)\]$/.exec(k)
    if (m) out[m[1]] = v
  }
  if (q.metadata !== undefined && q.metadata !== 'null') throw new GatewayError('invalid_request', 'Filter by metadata with metadata[key]=value, or metadata=null for jobs without metadata.', { param: 'metadata' })
  return Object.keys(out).length ? out : undefined
}
