import type { Storage } from 'unstorage'
import { newId, nowSeconds } from '../../core/ids.js'
import { GatewayError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import type { AdapterStore } from '../../pipeline/adapter-store.js'
import type { Embed } from '../../pipeline/adapters.js'
import type { Dispatch } from '../dispatch.js'
import type { FileObject, FileStore } from '../files.js'
import { describeLineErrors } from '../jsonl.js'
import { buildAdapter, type EvalStep } from './build.js'
import type { FineTuningConfig } from './config.js'
import { Leases, readRecord, Runs, WriteQueue } from '../lease.js'
import { ACTIVE, adapterCheckpoint, publicJob, requestedHyperparameters, type AdapterOptions, type FineTuningJob, type JobCheckpoint, type JobEvent, type StoredJob } from './job.js'
import type { FineTuningUpstream } from './pass-through.js'
import { parseTrainingFile, type ParsedTrainingFile } from './training-file.js'

/** What a job is created from: OpenAI's create body (plus the gateway's `adapter` options). */
export interface CreateJobInput {
  model: string
  training_file: string
  validation_file?: string | null
  suffix?: string | null
  seed?: number | null
  metadata?: Record<string, string> | null
  hyperparameters?: Partial<Record<'batch_size' | 'learning_rate_multiplier' | 'n_epochs', 'auto' | number>>
  method?: { type: string; [k: string]: unknown } | null
  integrations?: unknown[] | null
  adapter?: { mode?: 'static' | 'retrieval'; max_demonstrations?: number; retrieve_k?: number; evaluate?: boolean }
}

export interface FineTuneRunnerOptions {
  /** The `jobs:` mount: `ftjobs:<id>`, `ftevents:<id>`, `ftstate:<id>`. */
  jobs: Storage
  files: FileStore
  adapters: AdapterStore
  dispatch: Dispatch
  /** Resolves a base model to the provider and model that serve it (throws when none does). */
  resolveTarget: (model: string, signal?: AbortSignal) => Promise<{ provider: string; model: string }>
  embed?: Embed
  config: FineTuningConfig
  /** Provider id → its real fine-tuning API. */
  upstreams: Map<string, FineTuningUpstream>
  logger: Logger
  /**
   * Start adapter jobs as soon as they are created (default). Off on Workers:
   * work begun inside one request stalls when that request ends, so the Cron
   * Trigger runs them instead (`resume()` from the scheduled handler).
   */
  startOnCreate?: boolean
  /**
   * Every `leaseSec`, look for unfinished jobs nobody holds (their runner
   * died, or another instance created them) and take them over: on Node and
   * Bun, where the process lives on. Off by default.
   */
  sweep?: boolean
  /** This runner's id in job leases (default: a fresh random one). */
  runnerId?: string
}

/** Evaluation progress, persisted after every step so a restart does not redo finished steps. */
interface JobState {
  steps: Array<EvalStep | null>
}

const SUFFIX = /^[A-Za-z0-9_.-]{1,64}$/
function isJob(value: unknown): value is StoredJob {
  return !!value && typeof value === 'object' && (value as StoredJob).object === 'fine_tuning.job'
}
let sequence = 0
const creationOrder = () => Date.now() * 1000 + (sequence++ % 1000)

/**
 * Runs fine-tuning jobs. A job on a provider that can really fine-tune is
 * passed through to it (our record only maps ids); every other job builds an
 * in-context adapter in the background (validate → select demonstrations →
 * derive instructions → evaluate with and without it → publish the `ft:`
 * model). Jobs, events and evaluation steps live on the `jobs:` mount, so
 * `resume()` finishes what a stopped process left.
 *
 * Several runners may share the mount (isolates and the Cron Trigger on
 * Workers, Node instances on one Redis). A runner works on an adapter job
 * only while it holds the job's lease (`lease` in the record: its id and an
 * expiry `leaseSec` ahead, renewed every third of that); `resume()` skips
 * jobs leased by another runner until the lease expires, and a runner that
 * finds its lease taken over stops. Storage has no compare-and-swap, so
 * taking a lease is write, wait `SETTLE_MS`, read back (`Leases` in ../lease.ts).
 */
export class FineTuneRunner {
  private readonly running = new Map<string, AbortController>()
  private readonly runs = new Runs()
  /**
   * Records of the jobs this runner is running, the authority while it runs
   * (fs rewrites files in place: a racing read could see a torn one). Every
   * other job is read from storage: another runner may be changing it.
   */
  private readonly known = new Map<string, StoredJob>()
  /** Events of the jobs this runner is running. */
  private readonly events = new Map<string, JobEvent[]>()
  /** Each job's record writes, in order (a lease renewal must not land after a newer status). */
  private readonly writes = new WriteQueue()
  private readonly leases: Leases<StoredJob>
  readonly runnerId: string

  constructor(private readonly opts: FineTuneRunnerOptions) {
    this.runnerId = opts.runnerId ?? newId('ftrunner-')
    this.leases = new Leases<StoredJob>(opts.jobs, this.runnerId, opts.config.leaseSec * 1000, opts.logger, {
      what: 'fine-tuning job',
      field: 'job',
      stored: (id) => this.stored(id),
      mine: (id) => this.known.get(id),
      save: (job) => this.save(job),
      runnable: (job) => job.kind === 'adapter' && ACTIVE.includes(job.status),
      cancelKey: (id) => `ftcancel:${id}`,
      cancellable: (job) => ACTIVE.includes(job.status),
      cancelledIn: (job) => job.status === 'cancelled',
      cancel: async (id, mine, ctrl) => {
        mine.status = 'cancelled'
        this.events.delete(id)
        await this.save(mine)
        ctrl.abort()
      },
    })
    if (opts.sweep) this.runs.sweep(this.leases.leaseMs, () => this.resume(), opts.logger, 'fine-tuning jobs')
  }

  private async load(id: string): Promise<StoredJob | null> {
    if (!/^ftjob-[A-Za-z0-9]+$/.test(id)) return null
    const mine = this.runs.has(id) ? this.known.get(id) : undefined
    if (mine) return structuredClone(mine)
    return this.stored(id)
  }

  /** The record as storage has it, after this runner's own writes of it. */
  private async stored(id: string): Promise<StoredJob | null> {
    return readRecord(this.opts.jobs, `ftjobs:${id}`, isJob, () => this.writes.pending(id))
  }

  private save(job: StoredJob): Promise<void> {
    const id = job.id
    if (this.leases.lost.has(id)) return Promise.resolve()
    if (this.runs.has(id)) this.known.set(id, structuredClone(job))
    const copy = structuredClone(job)
    return this.writes.add(id, () => this.opts.jobs.setItem(`ftjobs:${id}`, copy))
  }

  private async own(id: string, owner: string | undefined): Promise<StoredJob> {
    const job = await this.load(id)
    if (!job || job.owner !== (owner ?? null)) throw new GatewayError('not_found', `No fine-tuning job found with id ${id}.`, { param: 'fine_tuning_job_id', code: 'fine_tuning_job_not_found' })
    return job
  }

  private async eventsOf(id: string): Promise<JobEvent[]> {
    const here = this.runs.has(id)
    const mine = here ? this.events.get(id) : undefined
    if (mine) return mine
    const list = (await readRecord(this.opts.jobs, `ftevents:${id}`, (v): v is JobEvent[] => Array.isArray(v))) ?? []
    if (here) this.events.set(id, list)
    return list
  }

  private async event(id: string, message: string, extra: { level?: JobEvent['level']; data?: Record<string, unknown>; type?: JobEvent['type'] } = {}): Promise<void> {
    if (this.leases.lost.has(id)) return
    const list = await this.eventsOf(id)
    list.push({ object: 'fine_tuning.job.event', id: newId('ftevent-'), created_at: nowSeconds(), level: extra.level ?? 'info', message, data: extra.data ?? null, type: extra.type ?? 'message' })
    await this.opts.jobs.setItem(`ftevents:${id}`, list)
  }

  async create(input: CreateJobInput, owner: string | undefined): Promise<FineTuningJob> {
    const training = await this.fineTuneFile(input.training_file, owner, 'training_file')
    const validation = input.validation_file ? await this.fineTuneFile(input.validation_file, owner, 'validation_file') : null
    if (input.suffix != null && !SUFFIX.test(input.suffix)) {
      throw new GatewayError('invalid_request', 'suffix must be 1 to 64 letters, digits, "_", "." or "-".', { param: 'suffix', code: 'invalid_suffix' })
    }
    const methodType = input.method?.type ?? 'supervised'
    const target = await this.baseTarget(input.model, owner)
    const upstream = target ? this.opts.upstreams.get(target.provider) : undefined
    if (upstream && target && methodType !== 'adapter') return this.createRemote(input, target.model, owner, upstream, training, validation)
    if (methodType === 'reinforcement') {
      throw new GatewayError('invalid_request', `Reinforcement fine-tuning needs a provider that really fine-tunes; "${input.model}" is served by one that cannot, so the gateway builds in-context adapters for it, which learn from supervised (or preference) examples only.`, {
        param: 'method.type',
        code: 'unsupported_method',
      })
    }
    if (!['supervised', 'dpo', 'adapter'].includes(methodType)) {
      throw new GatewayError('invalid_request', `method.type must be "supervised", "dpo", "reinforcement" or "adapter"; got "${methodType}".`, { param: 'method.type' })
    }
    const cfg = this.opts.config
    const a = input.adapter ?? {}
    const adapter: AdapterOptions = {
      mode: a.mode ?? cfg.mode,
      maxDemonstrations: a.max_demonstrations ?? cfg.maxDemonstrations,
      retrieveK: a.retrieve_k ?? cfg.retrieveK,
      evaluate: a.evaluate ?? cfg.maxEvalExamples > 0,
    }
    const hp = requestedHyperparameters(input)
    const job: StoredJob = {
      id: newId('ftjob-'),
      object: 'fine_tuning.job',
      model: input.model,
      created_at: nowSeconds(),
      finished_at: null,
      fine_tuned_model: null,
      organization_id: 'gateway',
      result_files: [],
      status: 'validating_files',
      validation_file: validation?.id ?? null,
      training_file: training.id,
      hyperparameters: hp,
      trained_tokens: null,
      error: null,
      seed: input.seed ?? Math.floor(Math.random() * 2 ** 31),
      estimated_finish: null,
      integrations: input.integrations ?? null,
      metadata: input.metadata ?? null,
      method: { type: methodType, ...(methodType === 'adapter' ? {} : { [methodType]: { hyperparameters: hp } }) },
      user_provided_suffix: input.suffix ?? null,
      owner: owner ?? null,
      kind: 'adapter',
      adapter,
      scores: null,
      order: creationOrder(),
    }
    await this.save(job)
    await this.event(job.id, `Validating training file: ${training.id}${validation ? ` and validation file: ${validation.id}` : ''}`)
    if (this.opts.startOnCreate !== false) void this.schedule(job.id)
    return publicJob(job)
  }

  private async fineTuneFile(id: string, owner: string | undefined, param: string): Promise<FileObject> {
    const file = await this.opts.files.get(id, owner).catch(() => {
      throw new GatewayError('invalid_request', `${param} ${id} does not name a file you uploaded.`, { param, code: 'invalid_file_id' })
    })
    if (file.purpose !== 'fine-tune') throw new GatewayError('invalid_request', `File ${id} has purpose "${file.purpose}"; fine-tuning needs purpose "fine-tune".`, { param, code: 'invalid_file_purpose' })
    return file
  }

  /** The provider and model behind the base model; undefined for one of the caller's adapters (stacked adapters). */
  private async baseTarget(model: string, owner: string | undefined): Promise<{ provider: string; model: string } | undefined> {
    if (model.startsWith('ft:') && (await this.opts.adapters.lookup(model, owner))) return undefined
    try {
      return await this.opts.resolveTarget(model)
    } catch (err) {
      const e = GatewayError.from(err)
      if (e.kind !== 'not_found' && e.kind !== 'invalid_request') throw e
      throw new GatewayError('invalid_request', `Model ${model} is not available for fine-tuning: no configured provider serves it. List models with GET /v1/models.`, { param: 'model', code: 'model_not_available' })
    }
  }

  async get(id: string, owner: string | undefined): Promise<FineTuningJob> {
    const job = await this.own(id, owner)
    return publicJob(job.kind === 'pass-through' ? await this.refreshRemote(job) : job)
  }

  /** The caller's jobs, newest first; `after` is the last id of the previous page. */
  async list(owner: string | undefined, opts: { after?: string; limit: number; metadata?: Record<string, string> | null }): Promise<{ data: FineTuningJob[]; has_more: boolean }> {
    const keys = await this.opts.jobs.getKeys('ftjobs')
    let all = (await Promise.all(keys.map((k) => this.load(k.slice('ftjobs:'.length))))).filter((j): j is StoredJob => !!j && j.owner === (owner ?? null))
    if (opts.metadata === null) all = all.filter((j) => !j.metadata || Object.keys(j.metadata).length === 0)
    else if (opts.metadata) all = all.filter((j) => Object.entries(opts.metadata!).every(([k, v]) => j.metadata?.[k] === v))
    const key = (j: StoredJob) => j.order ?? j.created_at * 1_000_000
    all.sort((a, b) => key(b) - key(a) || b.id.localeCompare(a.id))
    let start = 0
    if (opts.after) {
      const at = all.findIndex((j) => j.id === opts.after)
      start = at === -1 ? all.length : at + 1
    }
    const page = all.slice(start, start + opts.limit)
    // A pass-through job still running is refreshed from its provider; a failing provider leaves the last known state.
    const fresh = await Promise.all(page.map((j) => (j.kind === 'pass-through' && ACTIVE.includes(j.status) ? this.refreshRemote(j).catch(() => j) : j)))
    return { data: fresh.map(publicJob), has_more: start + opts.limit < all.length }
  }

  async cancel(id: string, owner: string | undefined): Promise<FineTuningJob> {
    const job = await this.own(id, owner)
    if (job.kind === 'pass-through') {
      const remote = job.remote!
      const answer = await this.upstream(job).cancelJob(remote.id, AbortSignal.timeout(60_000))
      return publicJob(await this.absorbRemote(job, answer))
    }
    if (!ACTIVE.includes(job.status)) {
      throw new GatewayError('invalid_request', `Fine-tuning job ${id} has already ${job.status === 'cancelled' ? 'been cancelled' : job.status}; only a job that is validating, queued or running can be cancelled.`, { code: 'job_not_cancellable' })
    }
    job.status = 'cancelled'
    await this.save(job)
    const here = this.running.get(id)
    if (here) here.abort()
    // Running elsewhere: its runner looks for this marker when it renews the lease (its own writes could hide our status).
    else if (job.lease) await this.opts.jobs.setItem(`ftcancel:${id}`, true)
    await this.event(id, 'Fine-tuning job cancelled')
    return publicJob(job)
  }

  /** Events newest first; `after` is the last event id of the previous page. */
  async listEvents(id: string, owner: string | undefined, opts: { after?: string; limit: number }): Promise<{ data: JobEvent[]; has_more: boolean }> {
    const job = await this.own(id, owner)
    if (job.kind === 'pass-through') return this.upstream(job).listEvents(job.remote!.id, opts, AbortSignal.timeout(60_000))
    const all = [...(await this.eventsOf(id))].reverse()
    let start = 0
    if (opts.after) {
      const at = all.findIndex((e) => e.id === opts.after)
      start = at === -1 ? all.length : at + 1
    }
    return { data: all.slice(start, start + opts.limit), has_more: start + opts.limit < all.length }
  }

  /** All events oldest first (the legacy API embeds them in the job). */
  async allEvents(id: string, owner: string | undefined): Promise<JobEvent[]> {
    const job = await this.own(id, owner)
    if (job.kind === 'pass-through') return (await this.listEvents(id, owner, { limit: 100 })).data.slice().reverse()
    return [...(await this.eventsOf(id))]
  }

  async listCheckpoints(id: string, owner: string | undefined, opts: { after?: string; limit: number }): Promise<{ data: JobCheckpoint[]; has_more: boolean }> {
    const job = await this.own(id, owner)
    if (job.kind === 'pass-through') {
      const remote = job.remote!
      const page = await this.upstream(job).listCheckpoints(remote.id, opts, AbortSignal.timeout(60_000))
      const data = page.data.map((c) => ({ ...c, fine_tuning_job_id: job.id, fine_tuned_model_checkpoint: `${remote.provider}/${c.fine_tuned_model_checkpoint}` }))
      return { data, has_more: page.has_more }
    }
    const all = adapterCheckpoint(job)
    const start = opts.after ? all.findIndex((c) => c.id === opts.after) + 1 || all.length : 0
    return { data: all.slice(start, start + opts.limit), has_more: start + opts.limit < all.length }
  }

  /**
   * DELETE /v1/models/{model}: removes one of the caller's adapters, or
   * deletes a fine-tuned model at the provider a pass-through job of the
   * caller made it on (`provider/ft:…`, `provider/projects/…/endpoints/…`).
   * Base models cannot be deleted.
   */
  async deleteModel(name: string, owner: string | undefined): Promise<{ id: string; object: 'model'; deleted: boolean }> {
    if (await this.opts.adapters.remove(name, owner)) {
      this.opts.logger.info('adapter deleted', { model: name })
      return { id: name, object: 'model', deleted: true }
    }
    const slash = name.indexOf('/')
    const upstream = slash > 0 ? this.opts.upstreams.get(name.slice(0, slash)) : undefined
    if (upstream) {
      const keys = await this.opts.jobs.getKeys('ftjobs')
      const jobs = await Promise.all(keys.map((k) => this.load(k.slice('ftjobs:'.length))))
      const made = jobs.find((j) => j && j.kind === 'pass-through' && j.owner === (owner ?? null) && j.fine_tuned_model === name)
      if (made) return { id: name, object: 'model', deleted: await upstream.deleteModel(name.slice(slash + 1), made.remote!.id, AbortSignal.timeout(60_000)) }
    }
    if (name.includes('ft:')) throw new GatewayError('not_found', `The model '${name}' does not exist or is not a fine-tuned model of yours.`, { param: 'model', code: 'model_not_found' })
    throw new GatewayError('permission', `Only fine-tuned models (ft:…) can be deleted; '${name}' is not one.`, { param: 'model', code: 'model_not_deletable' })
  }

  /**
   * Takes up every unfinished adapter job that no other runner holds a live
   * lease on: those a stopped process left, and on Workers those created
   * since (the Cron Trigger calls this). Resolves with how many it took.
   */
  async resume(): Promise<number> {
    return this.runs.resume(await this.opts.jobs.getKeys('ftjobs'), 'ftjobs:', async (id) => {
      const job = await this.load(id)
      return !!job && job.kind === 'adapter' && ACTIVE.includes(job.status) && !this.leases.heldByOther(job) && this.schedule(id)
    })
  }

  /** Resolves when the job's current run ends (tests, shutdown). */
  settled(id: string): Promise<void> {
    return this.runs.settled(id)
  }

  /** Resolves when every job this runner is running has stopped (the Workers cron keeps the invocation alive until then). */
  idle(): Promise<void> {
    return this.runs.idle()
  }

  /** Stops the running jobs and gives up their leases, so another runner (or the next start) takes them at once. */
  close(): Promise<void> {
    return this.runs.close(() => {
      for (const c of this.running.values()) c.abort()
    })
  }

  /** Runs the job if its lease can be taken; resolves with whether it was. */
  private schedule(id: string): Promise<boolean> {
    return this.runs.start(
      id,
      () => {
        const ctrl = new AbortController()
        this.running.set(id, ctrl)
        return this.leases.hold(id, ctrl, async (lease) => {
          try {
            if (lease.resumed) await this.event(id, 'Resuming after a gateway restart')
            await this.process(id, ctrl.signal)
          } catch (err) {
            if (!ctrl.signal.aborted) {
              const e = GatewayError.from(err)
              this.opts.logger.error('fine-tuning job failed', { job: id, kind: e.kind, error: e.message })
              await this.fail(id, e.code ?? 'internal_error', `The adapter build failed: ${e.message}`, null).catch(() => {})
            }
          }
        })
      },
      (err) => this.opts.logger.error('fine-tuning job could not be taken', { job: id, error: String((err as Error)?.message ?? err) }),
      () => {
        this.running.delete(id)
        this.known.delete(id)
        this.events.delete(id)
      },
    )
  }

  /** The job as it stands, or undefined once it is no longer this run's to finish (cancelled, shut down). */
  private async stillRunning(id: string, signal: AbortSignal): Promise<StoredJob | undefined> {
    if (signal.aborted || this.runs.closed) return undefined
    const job = await this.load(id)
    return job && ACTIVE.includes(job.status) ? job : undefined
  }

  private async fail(id: string, code: string, message: string, param: string | null): Promise<void> {
    const job = await this.load(id)
    if (!job || !ACTIVE.includes(job.status)) return
    await this.event(id, message, { level: 'error' })
    Object.assign(job, { status: 'failed', finished_at: nowSeconds(), error: { code, message, param } })
    await this.save(job)
  }

  private async process(id: string, signal: AbortSignal): Promise<void> {
    let job = await this.stillRunning(id, signal)
    if (!job) return
    const owner = job.owner ?? undefined
    const training = parseTrainingFile((await this.opts.files.content(job.training_file, owner)).content)
    const validation = job.validation_file ? parseTrainingFile((await this.opts.files.content(job.validation_file, owner)).content) : undefined
    if (job.status === 'validating_files') {
      if (await this.invalid(id, training, 'training_file')) return
      if (validation && (await this.invalid(id, validation, 'validation_file'))) return
      job.status = 'queued'
      await this.save(job)
      await this.event(id, 'Files validated, moving job to queued state')
    }
    if (!(job = await this.stillRunning(id, signal))) return
    if (job.status === 'queued') {
      job.status = 'running'
      await this.save(job)
      await this.event(id, `Fine-tuning job started: building an in-context adapter for ${job.model} (no weights are trained)`)
      const given = Object.entries(job.hyperparameters).filter(([, v]) => v !== 'auto')
      if (given.length) await this.event(id, `Hyperparameters ${given.map(([k, v]) => `${k}=${v}`).join(', ')} have no effect on an in-context adapter: no weights are trained.`, { level: 'warn' })
      if (job.method.type === 'dpo') await this.event(id, 'Preference examples: the adapter learns from the preferred outputs; the non-preferred outputs are not used.', { level: 'warn' })
    }
    const state = (await this.opts.jobs.getItem<JobState>(`ftstate:${id}`)) ?? { steps: [] }
    const built = await buildAdapter({
      job,
      training: training.examples,
      validation: validation?.examples,
      config: this.opts.config,
      dispatch: this.opts.dispatch,
      embed: this.opts.embed,
      signal,
      done: state.steps,
      event: (message, extra) => this.event(id, message, extra),
      saveStep: async (i, step) => {
        state.steps[i] = step
        await this.opts.jobs.setItem(`ftstate:${id}`, state)
      },
    })
    if (!built || !(job = await this.stillRunning(id, signal))) return
    await this.opts.adapters.save(built.adapter)
    const results: string[] = []
    if (built.steps.length) {
      const csv = ['step,base_similarity,adapter_similarity', ...built.steps.map((s, i) => `${i + 1},${s ? s.base.toFixed(4) : ''},${s ? s.adapter.toFixed(4) : ''}`)].join('\n')
      results.push((await this.opts.files.create(`${csv}\n`, 'step_metrics.csv', 'fine-tune-results', owner)).id)
    }
    // A cancel that came in while the result was being written wins: the adapter is withdrawn.
    if (!(job = await this.stillRunning(id, signal))) {
      await this.opts.adapters.remove(built.adapter.id, owner)
      return
    }
    // The events first: a client that sees `succeeded` finds them all.
    await this.event(id, `New fine-tuned model created: ${built.adapter.id}`)
    await this.event(id, 'The job has successfully completed')
    Object.assign(job, { status: 'succeeded', finished_at: nowSeconds(), fine_tuned_model: built.adapter.id, result_files: results, trained_tokens: 0, scores: built.scores })
    await this.save(job)
    await this.opts.jobs.removeItem(`ftstate:${id}`)
    this.opts.logger.info('fine-tuning job succeeded', { job: id, kind: 'adapter', demonstrations: built.adapter.demonstrations.length })
  }

  private async invalid(id: string, parsed: ParsedTrainingFile, param: 'training_file' | 'validation_file'): Promise<boolean> {
    if (!parsed.errors.length && parsed.examples.length) return false
    const detail = parsed.errors.length ? describeLineErrors(parsed.errors, 5) : 'line 1: The file has no examples.'
    await this.fail(id, param === 'training_file' ? 'invalid_training_file' : 'invalid_validation_file', `The job failed due to an invalid ${param.replace('_', ' ')}: ${detail}`, param)
    return true
  }

  // ---- pass-through ----

  private upstream(job: StoredJob): FineTuningUpstream {
    const u = this.opts.upstreams.get(job.remote!.provider)
    if (!u) throw new GatewayError('unavailable', `Provider "${job.remote!.provider}" that runs fine-tuning job ${job.id} is no longer configured for pass-through.`, { code: 'provider_not_configured' })
    return u
  }

  private async createRemote(input: CreateJobInput, model: string, owner: string | undefined, upstream: FineTuningUpstream, training: FileObject, validation: FileObject | null): Promise<FineTuningJob> {
    const signal = AbortSignal.timeout(120_000)
    const source = async (file: FileObject) => ({ id: file.id, filename: file.filename, content: (await this.opts.files.content(file.id, owner)).content })
    const { adapter: _gatewayOnly, ...body } = input
    const { job: answer, files } = await upstream.createJob({ ...body, model }, { training: await source(training), validation: validation ? await source(validation) : null }, signal)
    if (typeof answer?.id !== 'string') throw new GatewayError('upstream', `Provider "${upstream.provider}" answered the job creation without a job id.`)
    // What the client asked for, where the provider's job object does not say (Vertex AI's does not).
    const job = {
      id: newId('ftjob-'),
      object: 'fine_tuning.job',
      owner: owner ?? null,
      kind: 'pass-through',
      remote: { provider: upstream.provider, id: answer.id, model, files },
      created_at: nowSeconds(),
      seed: input.seed ?? Math.floor(Math.random() * 2 ** 31),
      metadata: input.metadata ?? null,
      user_provided_suffix: input.suffix ?? null,
      integrations: input.integrations ?? null,
      order: creationOrder(),
    } as StoredJob
    this.opts.logger.info('fine-tuning job passed through', { job: job.id, provider: upstream.provider })
    return publicJob(await this.absorbRemote(job, answer))
  }

  private async refreshRemote(job: StoredJob): Promise<StoredJob> {
    const answer = await this.upstream(job).getJob(job.remote!.id, AbortSignal.timeout(60_000))
    return this.absorbRemote(job, answer)
  }

  /** Takes the provider's job object as ours: our id and files, model names the gateway routes (`provider/…`). */
  private async absorbRemote(job: StoredJob, answer: unknown): Promise<StoredJob> {
    const r = (answer ?? {}) as Partial<FineTuningJob>
    const remote = job.remote!
    const p = remote.provider
    const localFile = (f: string | null | undefined) => (f ? (remote.files[f] ?? `${p}/${f}`) : null)
    // Result files live upstream; each is copied into our Files API once, when the job has them.
    const results: string[] = []
    for (const f of r.result_files ?? []) {
      let mine = remote.files[f]
      if (!mine) {
        const content = await this.upstream(job)
          .fileContent(f, AbortSignal.timeout(60_000))
          .catch(() => undefined)
        if (content === undefined) continue
        mine = (await this.opts.files.create(content, `${p}_${f}_results.csv`, 'fine-tune-results', job.owner ?? undefined)).id
        remote.files[f] = mine
      }
      results.push(mine)
    }
    const next: StoredJob = {
      ...job,
      ...(r as object),
      id: job.id,
      object: 'fine_tuning.job',
      created_at: typeof r.created_at === 'number' ? r.created_at : job.created_at,
      model: `${p}/${r.model ?? remote.model}`,
      fine_tuned_model: r.fine_tuned_model ? `${p}/${r.fine_tuned_model}` : null,
      training_file: localFile(r.training_file) ?? job.training_file,
      validation_file: localFile(r.validation_file),
      result_files: results,
      status: (r.status as StoredJob['status']) ?? job.status ?? 'queued',
      finished_at: r.finished_at ?? null,
      error: r.error && (r.error as { message?: string }).message ? r.error : null,
      hyperparameters: r.hyperparameters ?? job.hyperparameters ?? { batch_size: 'auto', learning_rate_multiplier: 'auto', n_epochs: 'auto' },
      organization_id: r.organization_id ?? job.organization_id ?? 'gateway',
    } as StoredJob
    for (const k of ['trained_tokens', 'seed', 'estimated_finish', 'integrations', 'metadata', 'user_provided_suffix'] as const) if ((next as unknown as Record<string, unknown>)[k] === undefined) (next as unknown as Record<string, unknown>)[k] = null
    if (next.method === undefined) next.method = { type: 'supervised' }
    await this.save(next)
    return next
  }
}
