import type { LookupFunction } from 'node:net'
import { Agent, errors, Pool, type Dispatcher } from 'undici'
import { headersTimeoutError, type HttpClient, type HttpResponse } from '../providers/shared/http.js'

/** Upstream origins that get a pool of their own; beyond this, calls go through the shared Agent. */
const MAX_POOLS = 64

/**
 * Node's upstream client: undici's keep-alive pools, called through
 * `dispatch` with the handler below (UndiciResponse), two to three times
 * cheaper per call than `fetch`. Each upstream origin gets its own `Pool`,
 * called with the path alone: half the cost of going through an Agent, which
 * parses the URL and looks the pool up on every call.
 * Timeouts are per request (see HttpRequestInit.headersTimeoutMs), so long
 * generations are never cut by the client.
 */
export function undiciClient(options: { lookup?: LookupFunction } = {}): HttpClient {
  // No cap on connections per origin: a cap would hold the calls beyond it in undici's queue, unseen (a
  // 257th concurrent stream would wait for one of the others to end). The gateway's queue and limits bound concurrency.
  const poolOptions = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, headersTimeout: 0, bodyTimeout: 0, ...(options.lookup ? { connect: { lookup: options.lookup } } : {}) }
  const agent = new Agent(poolOptions)
  /** Origin prefix as written in the URL → its pool, or null where the prefix is not a canonical origin (userinfo, default port …). */
  const pools = new Map<string, Pool | null>()
  const poolFor = (origin: string): Pool | null => {
    let pool = pools.get(origin)
    if (pool === undefined) {
      if (pools.size >= MAX_POOLS) return null
      let canonical = false
      try {
        const u = new URL(origin)
        canonical = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === origin
      } catch {
        /* not a URL: the Agent path reports it */
      }
      pool = canonical ? new Pool(origin, poolOptions) : null
      pools.set(origin, pool)
    }
    return pool
  }
  return (url, init) => {
    const slash = url.indexOf('/', url.indexOf('//') + 2)
    const pool = slash > 0 ? poolFor(url.slice(0, slash)) : null
    const res = new UndiciResponse(init.signal, init.headersTimeoutMs)
    const opts: Dispatcher.DispatchOptions = { method: init.method, headers: init.headers, body: init.body ?? null, path: '' }
    if (init.headersTimeoutMs !== undefined) opts.headersTimeout = init.headersTimeoutMs
    if (pool) {
      opts.path = url.slice(slash)
      pool.dispatch(opts, res)
    } else {
      let u: URL
      try {
        u = new URL(url)
      } catch (err) {
        return Promise.reject(new TypeError(`Invalid URL: ${url}`, { cause: err }))
      }
      opts.origin = u.origin
      opts.path = u.pathname + u.search
      agent.dispatch(opts, res)
    }
    return res.started
  }
}

/** Bytes a body may hold unread before the socket is paused (a Readable's default high-water mark). */
const HIGH_WATER = 64 * 1024

type Waiter = { resolve(r: IteratorResult<Uint8Array>): void; reject(err: unknown): void }

/**
 * One upstream call as undici's own dispatch handler, and its answer as
 * providers read it. `request()` would wrap each call in an AsyncResource and
 * each answer in a node Readable (stream state, events, an async iterator
 * that costs promises per chunk); this handler hands chunks straight to the
 * reader, pauses the socket above a high-water mark, and collects a whole
 * body for text()/json() without a stream. Errors are undici's own (abort
 * reasons, socket errors, its header timeout mapped to the gateway's).
 */
class UndiciResponse implements HttpResponse, Dispatcher.DispatchHandler {
  status = 0
  readonly started: Promise<UndiciResponse>
  private settleStart!: { resolve(r: UndiciResponse): void; reject(err: unknown): void }
  private rawHeaders: Buffer[] | undefined
  private parsed: Record<string, string> | undefined
  private abortFn: ((reason: Error) => void) | undefined
  private resumeFn: (() => void) | undefined
  private reason: Error | undefined
  private readonly chunks: Buffer[] = []
  private queued = 0
  private paused = false
  private ended = false
  private failure: unknown
  private waiter: Waiter | undefined
  private whole: { resolve(b: Buffer): void; reject(err: unknown): void } | undefined
  private dropped = false
  private readonly onAbort: (() => void) | undefined

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly headersTimeoutMs: number | undefined,
  ) {
    this.started = new Promise<UndiciResponse>((resolve, reject) => {
      this.settleStart = { resolve, reject }
    })
    if (signal) {
      if (signal.aborted) this.reason = abortReason(signal)
      else {
        this.onAbort = () => this.abort(abortReason(signal))
        signal.addEventListener('abort', this.onAbort, { once: true })
      }
    }
  }

  // ---- undici's side

  onConnect(abort: (err?: Error) => void): void {
    if (this.reason) abort(this.reason)
    else this.abortFn = abort
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true
    this.status = statusCode
    this.rawHeaders = rawHeaders
    this.resumeFn = resume
    this.settleStart.resolve(this)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.dropped) return true
    const w = this.waiter
    if (w) {
      this.waiter = undefined
      w.resolve({ done: false, value: chunk })
      return true
    }
    this.chunks.push(chunk)
    this.queued += chunk.length
    if (this.whole || this.queued < HIGH_WATER) return true
    this.paused = true
    return false
  }

  onComplete(): void {
    this.ended = true
    this.unlisten()
    this.whole?.resolve(this.collected())
    const w = this.waiter
    if (w) {
      this.waiter = undefined
      w.resolve({ done: true, value: undefined })
    }
  }

  onError(err: Error): void {
    this.unlisten()
    const mapped = this.headersTimeoutMs !== undefined && (err as { code?: unknown }).code === 'UND_ERR_HEADERS_TIMEOUT' ? Object.assign(headersTimeoutError(this.headersTimeoutMs), { cause: err }) : err
    if (!this.rawHeaders) {
      this.settleStart.reject(mapped)
      return
    }
    this.failure = mapped
    this.ended = true
    this.whole?.reject(mapped)
    const w = this.waiter
    if (w) {
      this.waiter = undefined
      w.reject(mapped)
    }
  }

  // ---- the provider's side

  header(name: string): string | null {
    if (!this.parsed) {
      const out: Record<string, string> = {}
      const raw = this.rawHeaders ?? []
      for (let i = 0; i < raw.length; i += 2) {
        const key = raw[i].toString('latin1').toLowerCase()
        const value = raw[i + 1].toString('latin1')
        out[key] = key in out ? `${out[key]}, ${value}` : value
      }
      this.parsed = out
    }
    return this.parsed[name.toLowerCase()] ?? null
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8')
  }

  async json(): Promise<unknown> {
    return JSON.parse((await this.bytes()).toString('utf8'))
  }

  get body(): AsyncIterable<Uint8Array> {
    return this
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.discard()
        return { done: true, value: undefined }
      },
    }
  }

  async discard(): Promise<void> {
    this.dropped = true
    this.chunks.length = 0
    this.queued = 0
    if (!this.ended) this.abort(new DOMException('The response body was dropped unread.', 'AbortError'))
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.chunks.length) {
      const value = this.chunks.shift()!
      this.queued -= value.length
      if (this.paused && this.queued < HIGH_WATER) {
        this.paused = false
        this.resumeFn?.()
      }
      return Promise.resolve({ done: false, value })
    }
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.ended) return Promise.resolve({ done: true, value: undefined })
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  private bytes(): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.ended) return Promise.resolve(this.collected())
    return new Promise<Buffer>((resolve, reject) => {
      this.whole = { resolve, reject }
      if (this.paused) {
        this.paused = false
        this.resumeFn?.()
      }
    })
  }

  /** The unread bytes as one buffer (no copy when they arrived in one chunk). */
  private collected(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.queued)
  }

  private abort(reason: Error): void {
    if (this.reason) return
    this.reason = reason
    this.abortFn?.(reason)
  }

  private unlisten(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort)
  }
}

/** What undici's request() rejects with for an aborted signal: its reason, or undici's own abort error. */
function abortReason(signal: AbortSignal): Error {
  return (signal.reason as Error | undefined) ?? new errors.RequestAbortedError()
}
