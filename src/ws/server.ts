import type { InternalIdentity } from '../middleware/internal.js'
import type { Logger } from '../logger.js'
import { unref } from '../streaming/connection.js'
import type { AppFetch } from './exchange.js'
import type { NoticeHub } from './notices.js'
import type { WebSocketConfig } from './options.js'
import { CLOSE } from './protocol.js'
import { ApiSocket } from './socket.js'
import type { WsAccept, WsHandlers } from './upgrade.js'

export interface WsServerOptions {
  config: WebSocketConfig
  /** The gateway's own fetch handler: every request frame runs through it. */
  fetch: AppFetch
  notices?: NoticeHub
  logger: Logger
  now?: () => number
}

/** After the current turn's I/O (setImmediate where the runtime has it; Workers: a zero timeout). */
const afterIo: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0)

const NOOP: WsHandlers = { message() {}, pong() {}, drain() {}, closed() {} }

/**
 * The open API sockets of this instance: accepts them after the route's
 * auth check, sweeps them for liveness with one timer, closes them on shutdown.
 */
export class WsServer {
  private readonly sockets = new Set<ApiSocket>()
  private sweepTimer: ReturnType<typeof setInterval> | undefined
  private readonly now: () => number

  constructor(readonly opts: WsServerOptions) {
    this.now = opts.now ?? Date.now
  }

  get size(): number {
    return this.sockets.size
  }

  /** Requests in flight over all sockets. */
  get inFlight(): number {
    let n = 0
    for (const s of this.sockets) n += s.inFlight
    return n
  }

  /**
   * The handshake's outcome. An unauthenticated socket is still accepted, then
   * closed with 4401 before it reads a frame: a browser cannot see the status
   * of a refused handshake, only a close code.
   */
  accept(identity: InternalIdentity | undefined, protocol: string | undefined, refusal = 'Missing or incorrect API key.'): WsAccept {
    return {
      protocol,
      identity,
      open: (peer) => {
        if (!identity) {
          peer.close(CLOSE.unauthorized, refusal.slice(0, 120))
          return NOOP
        }
        const notices = this.opts.notices
        const socket = new ApiSocket(peer, {
          config: this.opts.config,
          fetch: this.opts.fetch,
          identity,
          logger: this.opts.logger,
          now: this.now,
          subscribe: notices ? (send) => notices.subscribe(send) : undefined,
          onClose: (s) => {
            this.sockets.delete(s)
            if (this.sockets.size === 0) this.stopSweep()
          },
        })
        this.sockets.add(socket)
        this.startSweep()
        return socket
      },
    }
  }

  closeAll(reason = 'gateway shutting down'): void {
    for (const s of [...this.sockets]) s.close(CLOSE.goingAway, reason)
    this.stopSweep()
  }

  private startSweep(): void {
    const { pingIntervalSec, pongTimeoutSec } = this.opts.config
    if (this.sweepTimer !== undefined || pingIntervalSec <= 0) return
    // Half the shorter period: a dead socket is found within 1.5× the timeout.
    const every = Math.max(25, (Math.min(pingIntervalSec, pongTimeoutSec) * 1000) / 2)
    this.sweepTimer = setInterval(() => {
      const now = this.now()
      // Judged after the event loop's I/O phase: a pong that arrived while the loop was busy (timers run
      // before I/O) is read first, so a live socket is not dropped for a late sweep.
      afterIo(() => {
        for (const s of [...this.sockets]) s.check(now)
      })
    }, every)
    unref(this.sweepTimer)
  }

  private stopSweep(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
  }
}
