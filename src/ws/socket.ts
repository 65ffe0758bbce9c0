import { GatewayError } from '../errors.js'
import type { InternalIdentity } from '../middleware/internal.js'
import type { Logger } from '../logger.js'
import { dialectOfPath, errorBody, Exchange, type AppFetch } from './exchange.js'
import type { WebSocketConfig } from './options.js'
import { checkFrame, peekId, WS_PATH, type FrameId, type RequestFrame, type ResumeFrame } from './protocol.js'
import type { WsHandlers, WsPeer } from './upgrade.js'

export interface ApiSocketOptions {
  config: WebSocketConfig
  fetch: AppFetch
  identity: InternalIdentity
  logger: Logger
  /** Subscribes to push notices; returns the unsubscribe. */
  subscribe?(send: (text: string) => void): () => void
  onClose(socket: ApiSocket): void
  now?: () => number
}

const decoder = new TextDecoder()
/** How often a congested socket's send buffer is checked, where the runtime does not report draining. */
const DRAIN_POLL_MS = 10
/** Only `/v1/…` API paths; never the socket's own path. */
const API_PATH = /^\/v1\/[^\s#]*$/

function utf8Length(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/**
 * One authenticated API socket: reads frames (size, rate and shape checked,
 * each failure answered with an error frame while the socket stays open),
 * runs requests concurrently up to the in-flight limit, holds upstream reads
 * while the send buffer is full, and answers for liveness (pings).
 */
export class ApiSocket implements WsHandlers {
  private readonly exchanges = new Map<FrameId, { ex: Exchange; dialect: 'openai' | 'anthropic' }>()
  private readonly now: () => number
  private tokens: number
  private refilledAt: number
  /** Last frame, pong or message from the client. */
  lastSeen: number
  private pingSentAt: number | undefined
  private isClosed = false
  private waiters: Array<() => void> = []
  private drainTimer: ReturnType<typeof setTimeout> | undefined
  private readonly unsubscribe: (() => void) | undefined

  constructor(
    private readonly peer: WsPeer,
    private readonly opts: ApiSocketOptions,
  ) {
    this.now = opts.now ?? Date.now
    this.tokens = opts.config.burst
    this.refilledAt = this.lastSeen = this.now()
    this.unsubscribe = opts.subscribe?.((text) => this.send(text))
  }

  get inFlight(): number {
    return this.exchanges.size
  }

  message(data: string | Uint8Array, binary: boolean): void {
    if (this.isClosed) return
    this.seen()
    const { config } = this.opts
    const size = typeof data === 'string' ? (data.length * 3 <= config.maxFrameBytes ? data.length : utf8Length(data)) : data.byteLength
    if (!this.take()) {
      const head = typeof data === 'string' ? data : decoder.decode(data.subarray(0, 512))
      return this.fail(peekId(head), 'openai', new GatewayError('rate_limit', `Too many frames: this socket may send ${config.messagesPerSec} a second (bursts of ${config.burst}).`, { code: 'frame_rate_exceeded', retryAfter: 1 }))
    }
    if (binary) return this.fail(undefined, 'openai', new GatewayError('invalid_request', 'Binary frames are not supported: send JSON text frames.', { code: 'invalid_frame' }))
    if (size > config.maxFrameBytes) {
      const head = typeof data === 'string' ? data : decoder.decode(data.subarray(0, 512))
      const id = peekId(head)
      return this.fail(id, 'openai', new GatewayError('payload_too_large', `Frame of ${size} bytes is over this socket's limit of ${config.maxFrameBytes} bytes.`, { code: 'frame_too_large' }))
    }
    const text = typeof data === 'string' ? data : decoder.decode(data)
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (err) {
      return this.fail(peekId(text), 'openai', new GatewayError('invalid_request', `Frame is not valid JSON: ${(err as Error).message.slice(0, 200)}`, { code: 'invalid_json' }))
    }
    const checked = checkFrame(raw)
    if (!checked.ok) {
      const id = (raw as { id?: unknown })?.id
      return this.fail(typeof id === 'string' || typeof id === 'number' ? id : undefined, 'openai', new GatewayError('invalid_request', checked.message, { status: checked.status, code: checked.code, param: checked.param }))
    }
    const frame = checked.frame
    switch (frame.type) {
      case 'ping':
        return this.send(frame.id === undefined ? '{"type":"pong"}' : `{"type":"pong","id":${JSON.stringify(frame.id)}}`)
      case 'pong':
        return
      case 'cancel': {
        // Idempotent: a request that already ended (or never was) has nothing to cancel.
        const entry = this.exchanges.get(frame.id)
        if (entry) {
          entry.ex.cancel(entry.dialect)
          this.exchanges.delete(frame.id)
        }
        return
      }
      case 'request':
        return this.request(frame)
      case 'resume':
        return this.resume(frame)
    }
  }

  pong(): void {
    this.seen()
  }

  drain(): void {
    this.wake()
  }

  closed(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.unsubscribe?.()
    const graceful = this.peer.outlivesClose !== false
    for (const { ex } of this.exchanges.values()) ex.drop(graceful)
    this.exchanges.clear()
    this.wakeAll()
    this.opts.onClose(this)
  }

  /** Closes with a code (server shutdown, policy); requests in flight are dropped as on a lost connection. */
  close(code: number, reason: string): void {
    if (this.isClosed) return
    try {
      this.peer.close(code, reason)
    } catch {
      /* already gone */
    }
    this.closed()
  }

  /**
   * Liveness, called by the server's sweep: a socket silent for the ping
   * interval is pinged; one that then stays silent for the pong timeout is dead.
   */
  check(now: number): void {
    const { pingIntervalSec, pongTimeoutSec } = this.opts.config
    if (this.isClosed || pingIntervalSec <= 0) return
    if (this.pingSentAt !== undefined) {
      if (now - this.pingSentAt < pongTimeoutSec * 1000) return
      this.opts.logger.info('websocket closed: no answer to ping', { keyId: this.opts.identity.keyId, inFlight: this.exchanges.size })
      try {
        this.peer.terminate()
      } catch {
        /* already gone */
      }
      return this.closed()
    }
    if (now - this.lastSeen < pingIntervalSec * 1000) return
    this.pingSentAt = now
    try {
      if (this.peer.ping) this.peer.ping()
      else this.peer.send('{"type":"ping"}')
    } catch {
      this.closed()
    }
  }

  private seen(): void {
    this.lastSeen = this.now()
    this.pingSentAt = undefined
  }

  /** The frame-rate token bucket. */
  private take(): boolean {
    const { messagesPerSec, burst } = this.opts.config
    const now = this.now()
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * messagesPerSec)
    this.refilledAt = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  private admit(id: FrameId, dialect: 'openai' | 'anthropic'): Exchange | undefined {
    if (this.exchanges.has(id)) {
      this.fail(id, dialect, new GatewayError('invalid_request', `A request with id ${JSON.stringify(id)} is still in flight on this socket: ids must be unique among running requests.`, { status: 409, code: 'duplicate_id', param: 'id' }))
      return undefined
    }
    const max = this.opts.config.maxInFlight
    if (this.exchanges.size >= max) {
      this.fail(id, dialect, new GatewayError('rate_limit', `Too many requests in flight on this socket (limit ${max}): wait for one to finish, or open another socket.`, { code: 'too_many_in_flight' }))
      return undefined
    }
    const ex = new Exchange(id, { fetch: this.opts.fetch, identity: this.opts.identity, send: (t) => this.send(t), room: () => this.room() })
    this.exchanges.set(id, { ex, dialect })
    return ex
  }

  private request(frame: RequestFrame): void {
    const dialect = dialectOfPath(frame.path)
    const pathOnly = frame.path.split('?')[0]
    if (!API_PATH.test(frame.path) || pathOnly === WS_PATH) {
      return this.fail(frame.id, dialect, new GatewayError('not_found', `Unknown path "${frame.path.slice(0, 100)}": a request frame names an API path under /v1/ (for example /v1/chat/completions or /v1/messages).`, { code: 'unknown_route', param: 'path' }))
    }
    const ex = this.admit(frame.id, dialect)
    if (!ex) return
    void ex.request(frame).finally(() => this.finished(frame.id, ex))
  }

  private resume(frame: ResumeFrame): void {
    const id = frame.id ?? frame.stream_id
    const ex = this.admit(id, 'openai')
    if (!ex) return
    void ex.resume(frame).finally(() => this.finished(id, ex))
  }

  private finished(id: FrameId, ex: Exchange): void {
    if (this.exchanges.get(id)?.ex === ex) this.exchanges.delete(id)
  }

  private fail(id: FrameId | undefined, dialect: 'openai' | 'anthropic', err: GatewayError): void {
    const { status, error } = errorBody(dialect, err)
    this.send(JSON.stringify(id === undefined ? { type: 'error', status, error } : { id, type: 'error', status, error }))
  }

  private send(text: string): void {
    if (this.isClosed) return
    try {
      this.peer.send(text)
    } catch {
      this.closed()
    }
  }

  /** Undefined while the send buffer is under the limit; else resolves once it drained (or the socket closed). */
  private room(): Promise<void> | undefined {
    if (this.isClosed || !this.peer.bufferedAmount || this.peer.bufferedAmount() <= this.opts.config.maxBufferedBytes) return undefined
    return new Promise((resolve) => {
      this.waiters.push(resolve)
      this.pollDrain()
    })
  }

  private pollDrain(): void {
    if (this.drainTimer !== undefined) return
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined
      this.wake()
    }, DRAIN_POLL_MS)
  }

  private wake(): void {
    if (this.waiters.length === 0) return
    if (!this.isClosed && this.peer.bufferedAmount && this.peer.bufferedAmount() > this.opts.config.maxBufferedBytes / 2) return this.pollDrain()
    this.wakeAll()
  }

  private wakeAll(): void {
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer)
    this.drainTimer = undefined
  }
}
