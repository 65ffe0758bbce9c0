import type { Storage } from 'unstorage'
import { newId, nowSeconds } from '../core/ids.js'
import { GatewayError } from '../errors.js'
import type { Logger } from '../logger.js'
import { isBatchEndpoint, type Dispatch } from './dispatch.js'
import type { FileStore } from './files.js'
import { describeLineErrors, parseBatchJsonl, type BatchLine } from './jsonl.js'
import { Leases, readRecord, Runs, WriteQueue, type JobLease } from './lease.js'

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled'

/** OpenAI's Batch object. */
export interface Batch {
  id: string
  object: 'batch'
  endpoint: string
  errors: { object: 'list'; data: Array<{ code: string; message: string; param: string | null; line: number | null }> } | null
  input_file_id: string
  completion_window: string
  status: BatchStatus
  output_file_id: string | null
  error_file_id: string | null
  created_at: number
  in_progress_at: number | null
  expires_at: number
  finalizing_at: number | null
  completed_at: number | null
  failed_at: number | null
  expired_at: number | null
  cancelling_at: number | null
  cancelled_at: number | null
  request_counts: { total: number; completed: number; failed: number }
  metadata: Record<string, string> | null
}

interface StoredBatch extends Batch {
  owner: string | null
  /** The runner working on it and until when (see `Leases`); `until: 0` once released. */
  lease?: JobLease
}

/** One finished item, persisted before the next one is counted. */
interface ItemRecord {
  ok: boolean
  line: string
}

export interface BatchRunnerOptions {
  /** The `jobs:` mount. */
  jobs: Storage
  files: FileStore
  dispatch: Dispatch
  /** Items of one batch in flight at once. */
  concurrency: number
  logger: Logger
  now?: () => number
  /**
   * Start batches as soon as they are created (default). Off on Workers: work
   * begun inside one request stalls when that request ends, so a Cron Trigger
   * runs them instead (`resume()` from the scheduled handler).
   */
  startOnCreate?: boolean
  /** Seconds a runner's lease on a batch lasts (default 60), renewed every third of that while it runs. */
  leaseSec?: number
  /**
   * Every `leaseSec`, look for unfinished batches nobody holds (their runner
   * died, or another instance created them) and take them over: on Node and
   * Bun, where the process lives on. Off by default.
   */
  sweep?: boolean
  /** This runner's id in batch leases (default: a fresh random one). */
  runnerId?: string
}

const ACTIVE: BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling']
/** Statuses a cancel applies to. */
const CANCELLABLE: BatchStatus[] = ['validating', 'in_progress']
/** How often, at most, a running batch looks for a cancel made through another instance as its items finish. */
const CANCEL_CHECK_MS = 1000

/** A batch run here: `run` stops everything (shutdown, lease lost), `items` only the items (cancel: the batch still finalizes). */
interface Run {
  run: AbortController
  items: AbortController
}

/**
 * Runs OpenAI-style batches in the background. Every finished item is written
 * to the `jobs:` mount (`items:<id>:<n>`, beside the batch at `batches:<id>`: fs needs a file and a folder apart) before it counts, so after a
 * restart `resume()` runs exactly the items that have no result yet: none is
 * lost and none gets two results. Items go through the gateway's own
 * pipeline at low queue priority.
 *
 * Several runners may share the mount (isolates and the Cron Trigger on
 * Workers, Node instances on one Redis or folder). A runner works on a
 * batch only while it holds the batch's lease (`lease` in the record, see
 * `Leases`); `resume()` skips batches another live runner holds, and takes
 * them once that lease has expired. Reads of batches this runner is not
 * running come from storage, where their runner writes them.
 */
export class BatchRunner {
  private readonly running = new Map<string, Run>()
  private readonly runs = new Runs()
  /**
   * Records of the batches this runner is running, the authority while it
   * runs (fs rewrites files in place: a racing read could see a torn one).
   * Every other batch is read from storage: another runner may be changing it.
   */
  private readonly known = new Map<string, StoredBatch>()
  /** Each batch's record writes, in order (a lease renewal must not land after a newer status). */
  private readonly writes = new WriteQueue()
  private readonly leases: Leases<StoredBatch>
  private readonly now: () => number
  readonly runnerId: string

  constructor(private readonly opts: BatchRunnerOptions) {
    this.now = opts.now ?? nowSeconds
    this.runnerId = opts.runnerId ?? newId('batchrunner-')
    this.leases = new Leases<StoredBatch>(opts.jobs, this.runnerId, (opts.leaseSec ?? 60) * 1000, opts.logger, {
      what: 'batch',
      field: 'batch',
      stored: (id) => this.stored(id),
      mine: (id) => this.known.get(id),
      save: (batch) => this.save(batch),
      runnable: (batch) => ACTIVE.includes(batch.status),
      cancelKey: cancelMarker,
      cancellable: (batch) => CANCELLABLE.includes(batch.status),
      cancelledIn: (batch) => batch.status === 'cancelling' || batch.status === 'cancelled',
      cancel: (id, mine) => this.cancelHere(id, mine),
    })
    if (opts.sweep) this.runs.sweep(this.leases.leaseMs, () => this.resume(), opts.logger, 'batches')
  }

  private async load(id: string): Promise<StoredBatch | null> {
    if (!/^batch_[A-Za-z0-9]+$/.test(id)) return null
    const mine = this.runs.has(id) ? this.known.get(id) : undefined
    if (mine) return structuredClone(mine)
    return this.stored(id)
  }

  /** The record as storage has it, after this runner's own writes of it; the copy when the record is torn. */
  private async stored(id: string): Promise<StoredBatch | null> {
    const pending = () => this.writes.pending(id)
    return (await readRecord(this.opts.jobs, `batches:${id}`, isBatch, pending)) ?? readRecord(this.opts.jobs, `batchcopies:${id}`, isBatch, pending)
  }

  /**
   * Written twice, one after the other: the fs driver rewrites a file in
   * place, so a crash mid-write can leave one of them torn, never both.
   */
  private save(batch: StoredBatch): Promise<void> {
    const id = batch.id
    if (this.leases.lost.has(id)) return Promise.resolve()
    if (this.runs.has(id)) this.known.set(id, structuredClone(batch))
    const copy = structuredClone(batch)
    return this.writes.add(id, async () => {
      await this.opts.jobs.setItem(`batches:${id}`, copy)
      await this.opts.jobs.setItem(`batchcopies:${id}`, copy)
    })
  }

  async get(id: string, owner: string | undefined): Promise<Batch> {
    const b = await this.load(id)
    if (!b || b.owner !== (owner ?? null)) throw new GatewayError('not_found', `No such batch: ${id}`, { param: 'batch_id', code: 'batch_not_found' })
    return publicBatch(b)
  }

  async list(owner: string | undefined, opts: { after?: string; limit: number }): Promise<{ data: Batch[]; has_more: boolean }> {
    const keys = await this.opts.jobs.getKeys('batches')
    const all = (await Promise.all(keys.map((k) => this.load(k.slice('batches:'.length))))).filter((b): b is StoredBatch => !!b && b.owner === (owner ?? null))
    all.sort((a, b) => b.created_at - a.created_at || b.id.localeCompare(a.id))
    let start = 0
    if (opts.after) {
      const at = all.findIndex((b) => b.id === opts.after)
      start = at === -1 ? all.length : at + 1
    }
    return { data: all.slice(start, start + opts.limit).map(publicBatch), has_more: start + opts.limit < all.length }
  }

  async create(input: { input_file_id: string; endpoint: string; completion_window: string; metadata?: Record<string, string> | null }, owner: string | undefined): Promise<Batch> {
    if (!isBatchEndpoint(input.endpoint)) throw new GatewayError('invalid_request', `endpoint "${input.endpoint}" cannot be batched.`, { param: 'endpoint', code: 'invalid_endpoint' })
    const window = /^(\d+)h$/.exec(input.completion_window)
    if (!window) throw new GatewayError('invalid_request', `completion_window must look like "24h"; got "${input.completion_window}".`, { param: 'completion_window' })
    const file = await this.opts.files.get(input.input_file_id, owner).catch(() => {
      throw new GatewayError('invalid_request', `input_file_id ${input.input_file_id} does not name a file you uploaded.`, { param: 'input_file_id', code: 'file_not_found' })
    })
    if (file.purpose !== 'batch') throw new GatewayError('invalid_request', `File ${file.id} has purpose "${file.purpose}"; a batch needs purpose "batch".`, { param: 'input_file_id' })
    const now = this.now()
    const batch: StoredBatch = {
      id: newId('batch_'),
      object: 'batch',
      endpoint: input.endpoint,
      errors: null,
      input_file_id: file.id,
      completion_window: input.completion_window,
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: now,
      in_progress_at: null,
      expires_at: now + Number(window[1]) * 3600,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: input.metadata ?? null,
      owner: owner ?? null,
    }
    await this.save(batch)
    if (this.opts.startOnCreate !== false) this.schedule(batch.id)
    return publicBatch(batch)
  }

  async cancel(id: string, owner: string | undefined): Promise<Batch> {
    const b = await this.load(id)
    if (!b || b.owner !== (owner ?? null)) throw new GatewayError('not_found', `No such batch: ${id}`, { param: 'batch_id', code: 'batch_not_found' })
    if (CANCELLABLE.includes(b.status)) {
      const mine = this.known.get(id)
      if (mine && this.runs.has(id)) {
        await this.cancelHere(id, mine)
        return publicBatch(mine)
      }
      b.status = 'cancelling'
      b.cancelling_at = this.now()
      // Its runner, here or elsewhere, looks for this marker as items finish and at lease renewal: its own writes could hide our status.
      if (b.lease || this.runs.has(id)) await this.opts.jobs.setItem(cancelMarker(id), true)
      // Running in another process: the record is its runner's to write (ours could land over a newer state); it turns `cancelling` there shortly.
      if (this.leases.heldByOther(b)) return publicBatch(b)
      await this.save(b)
      if (this.opts.startOnCreate !== false) void this.schedule(id)
    } else if (b.status !== 'cancelling') {
      throw new GatewayError('invalid_request', `Batch ${id} is ${b.status} and cannot be cancelled.`, { code: 'batch_not_cancellable', status: 409 })
    }
    return publicBatch(b)
  }

  /** Cancels a batch this runner is running: no more items start, the run finalizes it as `cancelled`. */
  private async cancelHere(id: string, mine: StoredBatch): Promise<void> {
    if (CANCELLABLE.includes(mine.status)) {
      mine.status = 'cancelling'
      mine.cancelling_at = this.now()
      await this.save(mine)
    }
    this.running.get(id)?.items.abort()
  }

  /**
   * Takes up every unfinished batch that no other runner holds a live lease
   * on: those a stopped process left, and on Workers those created since
   * (the Cron Trigger calls this). Resolves with how many it took.
   */
  async resume(): Promise<number> {
    return this.runs.resume(await this.opts.jobs.getKeys('batches'), 'batches:', async (id) => {
      const b = await this.load(id)
      return !!b && ACTIVE.includes(b.status) && !this.leases.heldByOther(b) && this.schedule(id)
    })
  }

  /** Resolves when the batch's current run ends (tests, shutdown). */
  settled(id: string): Promise<void> {
    return this.runs.settled(id)
  }

  /** Resolves when every batch this process is running has stopped (the Workers cron keeps the isolate alive until then). */
  idle(): Promise<void> {
    return this.runs.idle()
  }

  /** Stops running items and gives up the leases; unfinished items have no result and run again after a restart (or at once in another instance). */
  close(): Promise<void> {
    return this.runs.close(() => {
      for (const r of this.running.values()) r.run.abort()
    })
  }

  /** Runs the batch if its lease can be taken; resolves with whether it was. */
  private schedule(id: string): Promise<boolean> {
    return this.runs.start(
      id,
      () => {
        const ctrl: Run = { run: new AbortController(), items: new AbortController() }
        ctrl.run.signal.addEventListener('abort', () => ctrl.items.abort(), { once: true })
        this.running.set(id, ctrl)
        return this.leases.hold(id, ctrl.run, () => this.process(id, ctrl))
      },
      (err) => this.opts.logger.error('batch run failed', { batch: id, error: String((err as Error)?.message ?? err) }),
      () => {
        this.running.delete(id)
        this.known.delete(id)
      },
    )
  }

  private async process(id: string, ctrl: Run): Promise<void> {
    const first = await this.load(id)
    if (!first || !ACTIVE.includes(first.status)) return
    // Cancelled through another instance while nobody held it.
    if (CANCELLABLE.includes(first.status) && (await this.opts.jobs.getItem(cancelMarker(id)))) {
      await this.cancelHere(id, first)
    }
    const { content } = await this.opts.files.content(first.input_file_id, first.owner ?? undefined)
    const { lines, errors } = parseBatchJsonl(content)
    // This runner's copy as it is now: a cancel may have landed while the file was read.
    const batch = this.known.get(id) ?? first
    const wrongUrl = lines.findIndex((l) => l.url !== batch.endpoint)
    if (errors.length || wrongUrl !== -1) {
      const data = errors.length
        ? errors.slice(0, 100).map((e) => ({ code: 'invalid_request', message: e.message, param: null, line: e.line }))
        : [{ code: 'mismatched_endpoint', message: `Every line's url must be the batch's endpoint ${batch.endpoint}.`, param: 'url', line: wrongUrl + 1 }]
      Object.assign(batch, { status: 'failed', failed_at: this.now(), errors: { object: 'list', data } })
      await this.save(batch)
      this.opts.logger.info('batch failed validation', { batch: id, errors: describeLineErrors(errors, 3) })
      return
    }
    if (batch.status === 'validating') {
      Object.assign(batch, { status: 'in_progress', in_progress_at: this.now(), request_counts: { total: lines.length, completed: 0, failed: 0 } })
      await this.save(batch)
    }
    if (batch.status === 'in_progress') await this.runItems(batch, lines, ctrl.items.signal)
    await this.finalize(id, lines, ctrl.run.signal)
  }

  private async runItems(batch: StoredBatch, lines: BatchLine[], signal: AbortSignal): Promise<void> {
    const doneKeys = new Set<string>()
    const counts = { ...batch.request_counts, completed: 0, failed: 0 }
    for (const k of await this.opts.jobs.getKeys(`items:${batch.id}`)) {
      // A record torn by a crash mid-write does not count: that item runs again.
      const r = await this.opts.jobs.getItem<ItemRecord>(k)
      if (!isItem(r)) continue
      doneKeys.add(k)
      if (r.ok) counts.completed++
      else counts.failed++
    }
    const pending = lines.map((_, i) => i).filter((i) => !doneKeys.has(`items:${batch.id}:${i}`))
    let next = 0
    // Counts are rewritten after each item; a chain keeps those writes in order.
    let chain = Promise.resolve()
    let cancelChecked = Date.now()
    const worker = async () => {
      for (;;) {
        if (signal.aborted || this.runs.closed) return
        if (this.now() >= batch.expires_at) return
        const i = pending[next++]
        if (i === undefined) return
        const line = lines[i]
        let record: ItemRecord
        try {
          const res = await this.opts.dispatch({ method: 'POST', url: line.url, body: line.body, priority: 'low', signal }, { keyId: batch.owner ?? undefined, isAdmin: false })
          if (signal.aborted) return
          const ok = res.status < 400
          record = { ok, line: JSON.stringify({ id: newId('batch_req_'), custom_id: line.custom_id, response: { status_code: res.status, request_id: res.requestId, body: res.body }, error: null }) }
        } catch (err) {
          if (signal.aborted) return
          const e = GatewayError.from(err)
          record = { ok: false, line: JSON.stringify({ id: newId('batch_req_'), custom_id: line.custom_id, response: null, error: { code: e.code ?? e.kind, message: e.message } }) }
        }
        await this.opts.jobs.setItem(`items:${batch.id}:${i}`, record)
        if (record.ok) counts.completed++
        else counts.failed++
        chain = chain.then(async () => {
          // This runner's copy, checked and changed in one step: a cancel landing in between must not be written over.
          const mine = this.known.get(batch.id)
          if (mine?.status !== 'in_progress') return
          mine.request_counts = { total: lines.length, completed: counts.completed, failed: counts.failed }
          await this.save(mine)
          if (Date.now() - cancelChecked < CANCEL_CHECK_MS) return
          cancelChecked = Date.now()
          if (await this.opts.jobs.getItem(cancelMarker(batch.id))) await this.cancelHere(batch.id, this.known.get(batch.id) ?? mine)
        })
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency) }, worker))
    await chain
  }

  private async finalize(id: string, lines: BatchLine[], signal: AbortSignal): Promise<void> {
    const batch = await this.load(id)
    // Shut down, or the lease was taken over: the batch is finished by whoever runs it next.
    if (!batch || signal.aborted) return
    const results = (await Promise.all(lines.map((_, i) => this.opts.jobs.getItem<ItemRecord>(`items:${id}:${i}`)))).map((r) => (isItem(r) ? r : null))
    const finished = results.filter((r) => r !== null).length
    const now = this.now()
    if (batch.status === 'in_progress' && finished < lines.length && now < batch.expires_at) return // stopped early (shutdown): resumes later
    const output = results.filter((r): r is ItemRecord => !!r?.ok).map((r) => r.line)
    const failedLines = results.filter((r): r is ItemRecord => !!r && !r.ok).map((r) => r.line)
    let final: BatchStatus = 'completed'
    if (batch.status === 'cancelling') final = 'cancelled'
    else if (finished < lines.length) {
      final = 'expired'
      lines.forEach((l, i) => {
        if (!results[i]) failedLines.push(JSON.stringify({ id: newId('batch_req_'), custom_id: l.custom_id, response: null, error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' } }))
      })
    }
    if (final === 'completed') {
      batch.status = 'finalizing'
      batch.finalizing_at = now
      await this.save(batch)
    }
    const owner = batch.owner ?? undefined
    if (output.length) batch.output_file_id = (await this.opts.files.create(`${output.join('\n')}\n`, `${id}_output.jsonl`, 'batch_output', owner)).id
    if (failedLines.length) batch.error_file_id = (await this.opts.files.create(`${failedLines.join('\n')}\n`, `${id}_error.jsonl`, 'batch_output', owner)).id
    batch.request_counts = { total: lines.length, completed: output.length, failed: results.filter((r) => r && !r.ok).length + (final === 'expired' ? lines.length - finished : 0) }
    batch.status = final
    if (final === 'completed') batch.completed_at = this.now()
    if (final === 'cancelled') batch.cancelled_at = this.now()
    if (final === 'expired') batch.expired_at = this.now()
    await this.save(batch)
    const items = await this.opts.jobs.getKeys(`items:${id}`)
    await Promise.all(items.map((k) => this.opts.jobs.removeItem(k)))
    this.opts.logger.info('batch finished', { batch: id, status: final, ...batch.request_counts })
  }
}

function isItem(value: unknown): value is ItemRecord {
  return !!value && typeof value === 'object' && typeof (value as ItemRecord).line === 'string'
}

function isBatch(value: unknown): value is StoredBatch {
  return !!value && typeof value === 'object' && (value as { object?: unknown }).object === 'batch'
}

function publicBatch(b: StoredBatch): Batch {
  const { owner: _owner, lease: _lease, ...batch } = b
  return batch
}

/** Left by a cancel made where the batch is not running; its runner sees it and cancels. */
function cancelMarker(id: string): string {
  return `batchcancel:${id}`
}
