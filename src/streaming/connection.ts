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
  private pending = ''
  private scheduled = false

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

  /**
   * Sends text to the client. The first write of a turn of the event loop
   * goes out at once (time to first byte is unchanged); writes later in the
   * same turn (an upstream chunk often carries many events) leave together
   * after it: one socket write, and one compressor flush, instead of one per event.
   */
  write(text: string): void {
    if (this.closed) return
    this.lastWrite = performance.now()
    if (this.scheduled) {
      this.pending += text
      return
    }
    this.controller.enqueue(utf8(text))
    this.scheduled = true
    defer(this.flushPending)
  }

  private readonly flushPending = (): void => {
    this.scheduled = false
    if (this.closed || this.pending === '') return
    const text = this.pending
    this.pending = ''
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
    this.flushPending()
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

/** After the current turn of the event loop (setImmediate where the runtime has it). */
const defer: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0)

/** Timers of streams never keep a process alive on their own (Node, Bun); Workers have no unref. */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}
