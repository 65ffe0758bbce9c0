import type { Storage } from 'unstorage'
import type { Logger } from '../logger.js'

/**
 * What background runners (batches, fine-tuning jobs) share to work on one
 * `jobs:` mount from several processes: Workers isolates and Cron
 * invocations on KV, Node or Bun instances on Redis or one folder. A runner
 * works on a record only while it holds the record's lease; records it does
 * not run are read from storage (another runner may be writing them), with
 * torn reads retried.
 */

/** A record's lease: the runner working on it and until when (ms since the epoch); `until: 0` once released. */
export interface JobLease {
  holder: string
  until: number
}

/** Whether a lease keeps `runner` off the record at `now`: held by another runner and not expired. */
export function heldByOther(lease: unknown, runner: string, now: number): boolean {
  if (!lease || typeof lease !== 'object') return false
  const { holder, until } = lease as Partial<JobLease>
  return typeof holder === 'string' && holder !== runner && typeof until === 'number' && until > now
}

/** How long a freshly written lease is left before it is read back (see `Leases.acquire`). */
export const SETTLE_MS = 150

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}

/**
 * Reads a record another writer may be rewriting: fs rewrites a file in
 * place, so a read racing a write (this runner's, or another process's on
 * the same folder) can see it torn. A value that is there but not valid is
 * read again a few times before it counts as missing. `pending` is this
 * runner's own writes of the record, awaited first.
 */
export async function readRecord<T>(storage: Storage, key: string, valid: (v: unknown) => v is T, pending?: () => Promise<void> | undefined): Promise<T | null> {
  for (let attempt = 0; ; attempt++) {
    await pending?.()?.catch(() => {})
    const value: unknown = await storage.getItem(key)
    if (valid(value)) return value
    if (value === null || value === undefined || attempt >= 4) return null
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Each record's writes, in order: a lease renewal must not land after a newer status. */
export class WriteQueue {
  private readonly chains = new Map<string, Promise<void>>()

  /** Runs `write` once every earlier write of `id` has landed (or failed). */
  add(id: string, write: () => Promise<unknown>): Promise<void> {
    const next = (this.chains.get(id) ?? Promise.resolve())
      .catch(() => {})
      .then(write)
      .then(() => {})
    this.chains.set(id, next)
    next
      .finally(() => {
        if (this.chains.get(id) === next) this.chains.delete(id)
      })
      .catch(() => {})
    return next
  }

  /** The writes of `id` queued so far, if any are still in flight. */
  pending(id: string): Promise<void> | undefined {
    return this.chains.get(id)
  }
}

/** How a runner's records look to its leases. */
export interface LeaseHooks<R extends { lease?: JobLease }> {
  /** For logs: "batch", "fine-tuning job". */
  what: string
  /** The log field that names the record: "batch", "job". */
  field: string
  /** The record as storage has it, after this runner's own writes of it. */
  stored(id: string): Promise<R | null>
  /** This runner's copy of a record it is running. */
  mine(id: string): R | undefined
  /** Writes the record (a no-op once the lease is lost). */
  save(record: R): Promise<void>
  /** Whether the record is one this runner works on and is unfinished. */
  runnable(record: R): boolean
  /** The marker a cancel through another instance leaves (`ftcancel:<id>`, `batchcancel:<id>`). */
  cancelKey(id: string): string
  /** Whether this runner's copy can still be cancelled. */
  cancellable(mine: R): boolean
  /** Whether the stored record says it was cancelled (by a runner that could write it). */
  cancelledIn(stored: R): boolean
  /** Applies a cancel made through another instance to the run. */
  cancel(id: string, mine: R, ctrl: AbortController): Promise<void>
}

/**
 * Leases on records of one mount. Storage has no compare-and-swap, so a
 * lease is taken by writing it, waiting `SETTLE_MS` and reading it back (see
 * `acquire`); it is renewed every third of its term while the record runs,
 * and a runner that finds another's id there at renewal stops.
 */
export class Leases<R extends { lease?: JobLease }> {
  /** Records whose lease another runner took over: nothing more is written for them. */
  readonly lost = new Set<string>()

  constructor(
    private readonly storage: Storage,
    readonly runnerId: string,
    readonly leaseMs: number,
    private readonly logger: Logger,
    private readonly hooks: LeaseHooks<R>,
  ) {}

  /** Whether another live runner holds the record. */
  heldByOther(record: R): boolean {
    return heldByOther(record.lease, this.runnerId, Date.now())
  }

  /**
   * Takes the record's lease: reads it, writes this runner's lease into it
   * unless another runner holds a live one, waits `SETTLE_MS` and reads it
   * back; a different holder there means another runner took it at the same
   * time, and the last writer keeps it. Without compare-and-swap two runners
   * can still both win when one of them takes longer than `SETTLE_MS` between
   * its read and its write; each then finds the other's id at its next
   * renewal and the one that reads it stops. `resumed`: the record was
   * leased before, so this run continues an earlier one.
   */
  async acquire(id: string, signal: AbortSignal): Promise<{ resumed: boolean } | undefined> {
    const record = await this.hooks.stored(id)
    if (signal.aborted || !record || !this.hooks.runnable(record)) return undefined
    if (this.heldByOther(record)) return undefined
    const resumed = record.lease !== undefined
    record.lease = { holder: this.runnerId, until: Date.now() + this.leaseMs }
    await this.hooks.save(record)
    await sleep(SETTLE_MS, signal)
    const check = await this.hooks.stored(id)
    if (check?.lease?.holder !== this.runnerId) {
      // Another runner wrote its lease after ours (or the read was torn): leave the record to it.
      this.lost.add(id)
      this.logger.info(`${this.hooks.what} taken by another runner`, { [this.hooks.field]: id })
      return undefined
    }
    if (signal.aborted) {
      await this.release(id)
      return undefined
    }
    return { resumed }
  }

  /**
   * Runs `work` under the record's lease: takes it (`taken` resolves with
   * whether it could), renews it until `work` ends or `ctrl` aborts, and
   * gives it up after. `work` does not run when the lease cannot be taken.
   */
  hold(id: string, ctrl: AbortController, work: (lease: { resumed: boolean }) => Promise<void>): { taken: Promise<boolean>; finished: Promise<void> } {
    let took: (taken: boolean) => void = () => {}
    const taken = new Promise<boolean>((resolve) => (took = resolve))
    const finished = (async () => {
      const lease = await this.acquire(id, ctrl.signal)
      took(!!lease)
      if (!lease) return
      const stopRenewing = this.keep(id, ctrl)
      try {
        await work(lease)
      } finally {
        stopRenewing()
        await this.release(id).catch(() => {})
      }
    })().finally(() => {
      took(false)
      this.lost.delete(id)
    })
    return { taken, finished }
  }

  /** Renews the lease every third of its term until `ctrl` aborts; returns the stop. */
  keep(id: string, ctrl: AbortController): () => void {
    let busy = false
    const timer = setInterval(
      () => {
        if (busy || ctrl.signal.aborted) return
        busy = true
        this.renew(id, ctrl)
          .catch((err) => this.logger.warn(`${this.hooks.what} lease renewal failed`, { [this.hooks.field]: id, error: String((err as Error)?.message ?? err) }))
          .finally(() => (busy = false))
      },
      Math.max(100, Math.floor(this.leaseMs / 3)),
    )
    ;(timer as { unref?: () => void }).unref?.()
    return () => clearInterval(timer)
  }

  private async renew(id: string, ctrl: AbortController): Promise<void> {
    const stored = await this.hooks.stored(id)
    const mine = this.hooks.mine(id)
    if (!mine || ctrl.signal.aborted) return
    if (stored?.lease && stored.lease.holder !== this.runnerId) {
      // Our lease expired (this runner stalled) and another runner has the record now: stop without another write.
      this.lost.add(id)
      ctrl.abort()
      this.logger.warn(`${this.hooks.what} lease taken over by another runner: stopping here`, { [this.hooks.field]: id })
      return
    }
    if (this.hooks.cancellable(mine) && ((stored && this.hooks.cancelledIn(stored)) || (await this.storage.getItem(this.hooks.cancelKey(id))))) {
      // Cancelled through another instance (the marker: our own writes could hide its status).
      this.logger.info(`${this.hooks.what} cancelled elsewhere: stopping`, { [this.hooks.field]: id })
      await this.hooks.cancel(id, mine, ctrl)
      return
    }
    mine.lease = { holder: this.runnerId, until: Date.now() + this.leaseMs }
    await this.hooks.save(mine)
  }

  /** Gives the lease up as the run ends (finished, cancelled, shut down): `until: 0`, so the record shows it ran before. */
  async release(id: string): Promise<void> {
    const mine = this.hooks.mine(id)
    if (!mine || this.lost.has(id) || mine.lease?.holder !== this.runnerId) return
    mine.lease = { holder: this.runnerId, until: 0 }
    await this.hooks.save(mine)
    if (!this.hooks.runnable(mine)) await this.storage.removeItem(this.hooks.cancelKey(id))
  }
}

/**
 * Every `ms`, runs `resume` (take up unfinished records nobody holds: their
 * runner died, or another instance created them): on Node and Bun, where
 * the process lives on. Returns the timer, unref'd.
 */
export function sweepEvery(ms: number, resume: () => Promise<number>, logger: Logger, what: string): ReturnType<typeof setInterval> {
  const timer = setInterval(() => {
    resume()
      .then((n) => n && logger.info(`took over unfinished ${what}`, { count: n }))
      .catch((err) => logger.warn(`${what} sweep failed`, { error: String((err as Error)?.message ?? err) }))
  }, ms)
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}

/**
 * A runner's runs: which records it is running here (at most one run per
 * record), its sweep, and shutdown. Batches and fine-tuning jobs share it;
 * each runner keeps its own per-run state and says how to start a run.
 */
export class Runs {
  private readonly done = new Map<string, Promise<void>>()
  private sweeper: ReturnType<typeof setInterval> | undefined
  /** Set by close(): no run starts after it, and running ones stop at their next check. */
  closed = false

  /** Whether this runner is running the record now. */
  has(id: string): boolean {
    return this.done.has(id)
  }

  /**
   * Starts a run of the record unless shut down or already running here.
   * `hold` sets up the run's state and works under the lease (Leases.hold);
   * `failed` logs a run that failed outside its work; `ended` drops the run's
   * state. Resolves with whether the lease was taken.
   */
  start(id: string, hold: () => { taken: Promise<boolean>; finished: Promise<void> }, failed: (err: unknown) => void, ended: () => void): Promise<boolean> {
    if (this.closed || this.done.has(id)) return Promise.resolve(false)
    const { taken, finished } = hold()
    const run = finished.catch(failed).finally(() => {
      this.done.delete(id)
      ended()
    })
    this.done.set(id, run)
    return taken
  }

  /** Offers every key under `prefix` not running here to `take`; resolves with how many it took. */
  async resume(keys: string[], prefix: string, take: (id: string) => Promise<boolean>): Promise<number> {
    const taken = await Promise.all(keys.map((k) => k.slice(prefix.length)).map((id) => (this.done.has(id) ? false : take(id))))
    return taken.filter(Boolean).length
  }

  /** Runs `resume` every `ms` (see sweepEvery) until close(). */
  sweep(ms: number, resume: () => Promise<number>, logger: Logger, what: string): void {
    this.sweeper = sweepEvery(ms, resume, logger, what)
  }

  /** Resolves when the record's current run ends (tests, shutdown). */
  settled(id: string): Promise<void> {
    return this.done.get(id) ?? Promise.resolve()
  }

  /** Resolves when every run here has stopped (the Workers cron keeps the invocation alive until then). */
  async idle(): Promise<void> {
    while (this.done.size) await Promise.allSettled([...this.done.values()])
  }

  /** Stops sweeping and starting runs, calls `stop` (abort the runs), and waits for them to end. */
  async close(stop: () => void): Promise<void> {
    this.closed = true
    if (this.sweeper) clearInterval(this.sweeper)
    stop()
    await Promise.allSettled([...this.done.values()])
  }
}
