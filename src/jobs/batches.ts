import type { Storage } from 'unstorage'
import { newId, nowSeconds } from '../core/ids.js'
import { GatewayError } from '../errors.js'
import type { Logger } from '../logger.js'
import { isBatchEndpoint, type Dispatch } from './dispatch.js'
import type { FileStore } from './files.js'
import { describeLineErrors, parseBatchJsonl, type BatchLine } from './jsonl.js'

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
}

const ACTIVE: BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling']

/**
 * Runs OpenAI-style batches in the background. Every finished item is written
 * to the `jobs:` mount (`items:<id>:<n>`, beside the batch at `batches:<id>`: fs needs a file and a folder apart) before it counts, so after a
 * restart `resume()` runs exactly the items that have no result yet: none is
 * lost and none gets two results. Items go through the gateway's own
 * pipeline at low queue priority.
 */
export class BatchRunner {
  private readonly running = new Map<string, AbortController>()
  private readonly done = new Map<string, Promise<void>>()
  private closed = false
  private readonly now: () => number

  constructor(private readonly opts: BatchRunnerOptions) {
    this.now = opts.now ?? nowSeconds
  }

  private key(id: string): string {
    return `batches:${id}`
  }

  /**
   * This process's batches, the authority while it runs: the fs driver
   * rewrites files in place, so a read racing a write could see a torn record.
   */
  private readonly known = new Map<string, StoredBatch>()

  private async load(id: string): Promise<StoredBatch | null> {
    if (!/^batch_[A-Za-z0-9]+$/.test(id)) return null
    const mine = this.known.get(id)
    if (mine) return structuredClone(mine)
    const stored = await this.opts.jobs.getItem<StoredBatch>(this.key(id))
    if (isBatch(stored)) return stored
    const copy = await this.opts.jobs.getItem<StoredBatch>(`batchcopies:${id}`)
    return isBatch(copy) ? copy : null
  }

  /**
   * Written twice, one after the other: the fs driver rewrites a file in
   * place, so a crash mid-write can leave one of them torn, never both.
   */
  private async save(batch: StoredBatch): Promise<void> {
    this.known.set(batch.id, structuredClone(batch))
    await this.opts.jobs.setItem(this.key(batch.id), batch)
    await this.opts.jobs.setItem(`batchcopies:${batch.id}`, batch)
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
    if (b.status === 'validating' || b.status === 'in_progress') {
      b.status = 'cancelling'
      b.cancelling_at = this.now()
      await this.save(b)
      this.running.get(id)?.abort()
      if (this.opts.startOnCreate !== false) this.schedule(id)
    } else if (b.status !== 'cancelling') {
      throw new GatewayError('invalid_request', `Batch ${id} is ${b.status} and cannot be cancelled.`, { code: 'batch_not_cancellable', status: 409 })
    }
    return publicBatch(b)
  }

  /** Picks up every batch that was still running when the process stopped. */
  async resume(): Promise<number> {
    const keys = await this.opts.jobs.getKeys('batches')
    let n = 0
    for (const k of keys) {
      const b = await this.load(k.slice('batches:'.length))
      if (b && ACTIVE.includes(b.status)) {
        this.schedule(b.id)
        n++
      }
    }
    return n
  }

  /** Resolves when the batch's current run ends (tests, shutdown). */
  settled(id: string): Promise<void> {
    return this.done.get(id) ?? Promise.resolve()
  }

  /** Resolves when every batch this process is running has stopped (the Workers cron keeps the isolate alive until then). */
  async idle(): Promise<void> {
    while (this.done.size) await Promise.allSettled([...this.done.values()])
  }

  /** Stops running items; unfinished ones have no result and run again after a restart. */
  async close(): Promise<void> {
    this.closed = true
    for (const c of this.running.values()) c.abort()
    await Promise.allSettled([...this.done.values()])
  }

  private schedule(id: string): void {
    if (this.closed || this.done.has(id)) return
    const run = this.process(id)
      .catch((err) => this.opts.logger.error('batch run failed', { batch: id, error: String((err as Error)?.message ?? err) }))
      .finally(() => {
        this.done.delete(id)
        this.running.delete(id)
      })
    this.done.set(id, run)
  }

  private async process(id: string): Promise<void> {
    const batch = await this.load(id)
    if (!batch || !ACTIVE.includes(batch.status)) return
    const { content } = await this.opts.files.content(batch.input_file_id, batch.owner ?? undefined)
    const { lines, errors } = parseBatchJsonl(content)
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
    if (batch.status === 'in_progress') await this.runItems(batch, lines)
    await this.finalize(id, lines)
  }

  private async runItems(batch: StoredBatch, lines: BatchLine[]): Promise<void> {
    const ctrl = new AbortController()
    this.running.set(batch.id, ctrl)
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
    const worker = async () => {
      for (;;) {
        if (ctrl.signal.aborted || this.closed) return
        if (this.now() >= batch.expires_at) return
        const i = pending[next++]
        if (i === undefined) return
        const line = lines[i]
        let record: ItemRecord
        try {
          const res = await this.opts.dispatch({ method: 'POST', url: line.url, body: line.body, priority: 'low', signal: ctrl.signal }, { keyId: batch.owner ?? undefined, isAdmin: false })
          if (ctrl.signal.aborted) return
          const ok = res.status < 400
          record = { ok, line: JSON.stringify({ id: newId('batch_req_'), custom_id: line.custom_id, response: { status_code: res.status, request_id: res.requestId, body: res.body }, error: null }) }
        } catch (err) {
          if (ctrl.signal.aborted) return
          const e = GatewayError.from(err)
          record = { ok: false, line: JSON.stringify({ id: newId('batch_req_'), custom_id: line.custom_id, response: null, error: { code: e.code ?? e.kind, message: e.message } }) }
        }
        await this.opts.jobs.setItem(`items:${batch.id}:${i}`, record)
        if (record.ok) counts.completed++
        else counts.failed++
        chain = chain.then(async () => {
          const fresh = await this.load(batch.id)
          if (fresh && fresh.status === 'in_progress') {
            fresh.request_counts = { total: lines.length, completed: counts.completed, failed: counts.failed }
            await this.save(fresh)
          }
        })
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency) }, worker))
    await chain
  }

  private async finalize(id: string, lines: BatchLine[]): Promise<void> {
    const batch = await this.load(id)
    if (!batch || this.closed) return
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
  const { owner: _owner, ...batch } = b
  return batch
}
