import type { Storage } from 'unstorage'
import type { Logger } from '../logger.js'
import { unref } from './connection.js'

/**
 * The resume buffer. Every frame a stream sends (with its `id:`) is kept in
 * the `streams:` storage mount while the stream is live and for a window after
 * it ends, so a client that lost its connection can reconnect with
 * `Last-Event-ID` and get the rest without a second model call — on this
 * instance or, with a shared driver (Redis), on another one.
 *
 * The hot path never waits for storage: frames are appended to memory and
 * written in batches (one chunk key per batch, then the stream's meta key)
 * every `flushMs`; a frame leaves memory only once its batch is written.
 *
 * Keys (relative to the mount): `<id>` → StoredMeta, `<id>:<n>` → StoredChunk.
 */
interface StoredMeta {
  v: 1
  /** Key id of the API key that started the stream (null on an open gateway): only it may resume. */
  key: string | null
  state: 'live' | 'done'
  /** Chunks written so far. */
  chunks: number
  /** Id of the last frame written. */
  last: number
  /** When the meta was last written (epoch ms): a live stream whose instance died stops being followed. */
  at: number
  /** Epoch ms after which a finished stream is gone (drivers without TTL, e.g. fs). */
  expires: number
}

interface StoredChunk {
  /** Id of the first frame. */
  from: number
  frames: string[]
}

/** Where resumed frames go. */
export interface Subscriber {
  write(text: string): void
  end(): void
  readonly isClosed: boolean
}

export interface StreamStoreOptions {
  resumeWindowSec: number
  flushMs: number
  pollMs: number
  logger: Logger
}

/** A live stream's keys stay at least this long; the meta is refreshed on every batch. */
const LIVE_TTL_SEC = 6 * 3600
/** A resumer stops following a live stream on another instance that has not written for this long. */
const STALE_MS = 30_000

export class StreamStore {
  private readonly live = new Map<string, StreamLog>()
  private warned = false

  constructor(
    readonly storage: Storage,
    readonly opts: StreamStoreOptions,
  ) {}

  open(id: string, keyId: string | undefined): StreamLog {
    const log = new StreamLog(this, id, keyId ?? null)
    this.live.set(id, log)
    return log
  }

  /** Live streams on this instance (for tests and health). */
  get liveCount(): number {
    return this.live.size
  }

  /** @internal */
  retire(log: StreamLog): void {
    this.live.delete(log.id)
    if (log.failed) return
    const ms = this.opts.resumeWindowSec * 1000
    const forget = () => {
      const keys = [log.id]
      for (let n = 0; n < log.chunkCount; n++) keys.push(`${log.id}:${n}`)
      void Promise.all(keys.map((k) => this.storage.removeItem(k))).catch(() => {})
    }
    // TTLs expire the keys on drivers that honour them; this also clears drivers that don't (fs).
    if (ms <= 0) forget()
    else unref(setTimeout(forget, ms))
  }

  /** @internal */
  warn(err: unknown): void {
    if (this.warned) return
    this.warned = true
    this.opts.logger.warn('stream resume buffer: storage write failed; streams stay resumable on this instance only while live', { error: String((err as Error)?.message ?? err) })
  }

  /**
   * Replays the frames after `after` to `out` and, while the stream is live,
   * follows it. Resolves 'not_found' (unknown, expired, or another key's
   * stream) before writing anything, else 'ok' once following has begun.
   */
  async resume(id: string, keyId: string | undefined, after: number, out: Subscriber): Promise<'ok' | 'not_found'> {
    const local = this.live.get(id)
    if (local) {
      if (local.key !== (keyId ?? null)) return 'not_found'
      await this.replayLocal(local, after, out)
      return 'ok'
    }
    const meta = await this.readMeta(id)
    if (!meta || meta.key !== (keyId ?? null)) return 'not_found'
    void this.follow(id, meta, after, out).catch(() => out.end())
    return 'ok'
  }

  private async readMeta(id: string): Promise<StoredMeta | null> {
    const meta = await this.storage.getItem<StoredMeta>(id)
    if (!meta || meta.v !== 1) return null
    if (meta.state === 'done' && meta.expires <= Date.now()) return null
    return meta
  }

  private async readChunks(id: string, from: number, to: number, after: number, out: Subscriber): Promise<number> {
    let sent = after
    for (let n = from; n < to; n++) {
      const chunk = await this.storage.getItem<StoredChunk>(`${id}:${n}`)
      if (!chunk) continue
      let text = ''
      for (let i = 0; i < chunk.frames.length; i++) if (chunk.from + i > sent) text += chunk.frames[i]
      sent = Math.max(sent, chunk.from + chunk.frames.length - 1)
      if (text) out.write(text)
    }
    return sent
  }

  private async replayLocal(log: StreamLog, after: number, out: Subscriber): Promise<void> {
    let read = 0
    let sent = after
    // Batches confirmed written may leave memory while we read storage: read until none is new.
    while (read < log.confirmed) {
      const upTo = log.confirmed
      sent = await this.readChunks(log.id, read, upTo, sent, out)
      read = upTo
      if (out.isClosed) return
    }
    sent = log.replayMemory(sent, out)
    if (log.state === 'done') out.end()
    else log.subscribe(out)
  }

  /** Follows a stream another instance is writing (or one that has ended) through storage. */
  private async follow(id: string, first: StoredMeta, after: number, out: Subscriber): Promise<void> {
    let meta: StoredMeta | null = first
    let read = 0
    let sent = after
    while (meta && !out.isClosed) {
      sent = await this.readChunks(id, read, meta.chunks, sent, out)
      read = meta.chunks
      if (meta.state === 'done' || Date.now() - meta.at > STALE_MS) break
      await new Promise((r) => setTimeout(r, this.opts.pollMs))
      // The writer may have moved here meanwhile (never: ids are random) — only storage is read.
      meta = await this.readMeta(id)
    }
    out.end()
  }
}

/**
 * One stream's frames: appended by the writer, batched to storage, fanned out
 * to resumers connected to this instance.
 */
export class StreamLog {
  state: 'live' | 'done' = 'live'
  /** Batches written and confirmed; their frames have left memory. */
  confirmed = 0
  /** A storage write failed: the stream is no longer written (frames stay in memory while live). */
  failed = false
  private last = 0
  private buf: string[] = []
  private bufFrom = 1
  /** Batches handed to storage but not yet confirmed, oldest first. */
  private readonly unconfirmed: StoredChunk[] = []
  private issued = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private chain: Promise<void> = Promise.resolve()
  private readonly subscribers = new Set<Subscriber>()
  /** Called when the number of resumers attached here changes. */
  onSubscribers: ((count: number) => void) | undefined

  constructor(
    private readonly store: StreamStore,
    readonly id: string,
    readonly key: string | null,
  ) {}

  get chunkCount(): number {
    return this.issued
  }

  get lastId(): number {
    return this.last
  }

  /** Keeps frame `seq` (ids are consecutive from 1). */
  append(seq: number, text: string): void {
    if (this.buf.length === 0) this.bufFrom = seq
    this.buf.push(text)
    this.last = seq
    if (this.timer === undefined && !this.failed) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.flush(false)
      }, this.store.opts.flushMs)
      unref(this.timer)
    }
  }

  /** Sends the text of one step (one or more frames) to the resumers attached here. */
  broadcast(text: string): void {
    if (this.subscribers.size === 0) return
    for (const s of this.subscribers) {
      if (s.isClosed) this.unsubscribe(s)
      else s.write(text)
    }
  }

  end(): void {
    if (this.state === 'done') return
    this.state = 'done'
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    for (const s of this.subscribers) s.end()
    this.subscribers.clear()
    this.onSubscribers = undefined
    if (this.failed) {
      this.buf = []
      this.store.retire(this)
      return
    }
    this.flush(true)
    void this.chain.then(() => this.store.retire(this))
  }

  subscribe(s: Subscriber): void {
    this.subscribers.add(s)
    this.onSubscribers?.(this.subscribers.size)
  }

  unsubscribe(s: Subscriber): void {
    if (this.subscribers.delete(s)) this.onSubscribers?.(this.subscribers.size)
  }

  /** Writes the frames after `after` still in memory; returns the last id written. */
  replayMemory(after: number, out: Subscriber): number {
    let text = ''
    for (const c of this.unconfirmed) for (let i = 0; i < c.frames.length; i++) if (c.from + i > after) text += c.frames[i]
    for (let i = 0; i < this.buf.length; i++) if (this.bufFrom + i > after) text += this.buf[i]
    if (text) out.write(text)
    return Math.max(after, this.last)
  }

  private flush(final: boolean): void {
    if (this.failed) return
    const storage = this.store.storage
    const window = this.store.opts.resumeWindowSec
    let chunk: StoredChunk | undefined
    if (this.buf.length) {
      chunk = { from: this.bufFrom, frames: this.buf }
      this.buf = []
      this.unconfirmed.push(chunk)
    } else if (!final) return
    const n = chunk ? this.issued++ : -1
    const chunks = this.issued
    const last = this.last
    const state = final ? 'done' : 'live'
    this.chain = this.chain.then(async () => {
      if (this.failed) return
      try {
        if (chunk) await storage.setItem(`${this.id}:${n}`, chunk, { ttl: LIVE_TTL_SEC + window })
        const now = Date.now()
        const meta: StoredMeta = { v: 1, key: this.key, state, chunks, last, at: now, expires: final ? now + window * 1000 : 0 }
        await storage.setItem(this.id, meta, { ttl: final ? Math.max(1, Math.ceil(window)) : LIVE_TTL_SEC + window })
        if (chunk) {
          this.unconfirmed.shift()
          this.confirmed++
        }
      } catch (err) {
        this.failed = true
        this.store.warn(err)
      }
    })
  }
}
