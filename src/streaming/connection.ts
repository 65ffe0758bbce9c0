import { HEARTBEAT, utf8 } from './sse.js'

export interface ConnectionOptions {
  /** Idle time after which a heartbeat comment is written; 0 for none. */
  heartbeatMs: number
  /** Runs once when the client goes away (the body is cancelled). */
  onCancel(reason: unknown): void
}

/** Unread bytes a slow client may have queued before the writer waits for it. */
const HIGH_WATER_BYTES = 64 * 1024

/**
 * One client's SSE byte stream, written to (push) rather than pulled, so that
 * heartbeats and progress frames can be sent while no event arrives. It keeps
 * the link between the client going away and `onCancel`, and lets the writer
 * wait while a slow client has too many bytes queued.
 */
export class SseConnection {
  readonly body: ReadableStream<Uint8Array>
  private controller!: ReadableStreamDefaultController<Uint8Array>
  private closed = false
  private lastWrite = performance.now()
  private timer: ReturnType<typeof setTimeout> | undefined
  private waiter: (() => void) | undefined

  constructor(private readonly opts: ConnectionOptions) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller
        },
        pull: () => {
          const w = this.waiter
          this.waiter = undefined
          w?.()
        },
        cancel: (reason) => {
          if (this.closed) return
          this.stop()
          opts.onCancel(reason)
        },
      },
      { highWaterMark: HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
    )
    if (opts.heartbeatMs > 0) this.arm(opts.heartbeatMs)
  }

  get isClosed(): boolean {
    return this.closed
  }

  write(text: string): void {
    if (this.closed) return
    this.lastWrite = performance.now()
    this.controller.enqueue(utf8(text))
  }

  /** Resolves when the client has room for more (at once unless it is slow). */
  ready(): Promise<void> | undefined {
    if (this.closed || (this.controller.desiredSize ?? 1) > 0) return undefined
    return new Promise((resolve) => {
      this.waiter = resolve
    })
  }

  end(): void {
    if (this.closed) return
    this.stop()
    this.controller.close()
  }

  private stop(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      if (this.closed) return
      const idle = performance.now() - this.lastWrite
      if (idle >= this.opts.heartbeatMs - 1) {
        this.write(HEARTBEAT)
        this.arm(this.opts.heartbeatMs)
      } else this.arm(this.opts.heartbeatMs - idle)
    }, ms)
    unref(this.timer)
  }
}

/** Timers of streams never keep a process alive on their own (Node, Bun); Workers have no unref. */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}
