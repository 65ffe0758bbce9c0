import type { ChatEvent } from '../core/types.js'
import { GatewayError } from '../errors.js'
import { Coalescer } from './coalesce.js'
import { SseConnection, unref } from './connection.js'
import { keepEvent, type EventFilter } from './filter.js'
import type { StreamingConfig, StreamRequestOptions } from './options.js'
import type { Progress, QueueReport } from './progress.js'
import type { StreamLog } from './resume.js'
import { formatFrame, retryLine, type SseFrame } from './sse.js'

/** How a dialect writes a stream: frames before, per event, after, and for an in-band error. */
export interface StreamEncoder {
  start(): SseFrame[]
  push(event: ChatEvent): SseFrame[]
  end(): SseFrame[]
  error(err: GatewayError): SseFrame[]
  /**
   * A progress frame that this dialect's SDK parsers tolerate. Dialects
   * without it get heartbeat comments only, never progress frames.
   */
  progress?(p: Progress): SseFrame[]
  /** The client asked for no content-free frames (`no-empty`): fold them into the next frame instead. */
  omitEmpty?(): void
}

export interface SessionOptions {
  encoder: StreamEncoder
  /** Ends the upstream call (client gone for good). */
  abort(reason: unknown): void
  request: StreamRequestOptions
  config: StreamingConfig
  /** The resume buffer; undefined when resuming is off. */
  log: StreamLog | undefined
  /** The request's ctx.meta: the queue stage sets `queueWaitMs` when the request leaves the queue. */
  meta: Record<string, unknown> | undefined
  /** Progress frames for a dialect whose encoder has none (default: the encoder's, else none). */
  progressFrames?: (p: Progress) => SseFrame[]
}

type Phase = 'queued' | 'waiting_first_token' | 'generating'

const CLIENT_CANCEL = 'client_cancelled'

/**
 * The abort reason of a client that cancels on purpose (a WebSocket `cancel`
 * frame), as opposed to a dropped connection: no reconnect grace, the
 * upstream call stops at once.
 */
export function clientCancel(): GatewayError {
  return new GatewayError('cancelled', 'The request was cancelled by the client.', { code: CLIENT_CANCEL })
}

export function isClientCancel(reason: unknown): boolean {
  return reason instanceof GatewayError && reason.code === CLIENT_CANCEL
}

/**
 * One streamed answer: reads core events, filters and coalesces them, has
 * the dialect encode them, gives every frame its `id:`, and writes it to the
 * client and the resume buffer. It also owns the stream's clock: heartbeats
 * (in the connection), progress frames, and the grace period after the
 * client left, during which a reconnect may pick the stream up again.
 */
export class SseSession {
  readonly connection: SseConnection
  /** performance.now() when the first event arrived (undefined until then). */
  firstEventAt: number | undefined
  private readonly startedAt = performance.now()
  private seq = 0
  private committed = false
  private started = false
  private finished = false
  private aborted = false
  private detached = false
  private phase: Phase = 'waiting_first_token'
  private position = 0
  private estimate: number | undefined
  private chars = 0
  private reportedChars = -1
  private commitTimer: ReturnType<typeof setTimeout> | undefined
  private progressTimer: ReturnType<typeof setInterval> | undefined
  private graceTimer: ReturnType<typeof setTimeout> | undefined
  private readonly coalescer: Coalescer | undefined
  private readonly filter: EventFilter | undefined
  private readonly progress: boolean
  private readonly progressFrames: ((p: Progress) => SseFrame[]) | undefined
  private reader!: ReadableStreamDefaultReader<ChatEvent>
  private settle: { resolve(): void; reject(err: GatewayError): void } | undefined
  private readonly ready: Promise<void>

  constructor(private readonly opts: SessionOptions) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject }
    })
    // Rejections are for the caller of begin(); one that comes before nobody awaits must not count as unhandled.
    this.ready.catch(() => {})
    const { config, request } = opts
    this.filter = request.filter
    const encoder = opts.encoder
    this.progressFrames = opts.progressFrames ?? (encoder.progress ? (p) => encoder.progress!(p) : undefined)
    this.progress = request.progress && this.progressFrames !== undefined
    if (request.coalesceMs > 0) this.coalescer = new Coalescer(request.coalesceMs, config.coalesceMaxChars, (e) => this.emit(opts.encoder.push(e)))
    this.connection = new SseConnection({ heartbeatMs: config.heartbeatSec * 1000, onCancel: (reason) => this.detach(reason) })
    this.connection.write(retryLine(config.retryMs))
  }

  /**
   * Starts reading. Resolves when the response can begin: the first event
   * arrived, or the client must hear from us before it (a heartbeat or
   * progress frame is due). Rejects with the error when the stream fails
   * before that, so that errors up to the first event are proper HTTP errors.
   */
  begin(reader: ReadableStreamDefaultReader<ChatEvent>): Promise<void> {
    const { config } = this.opts
    this.reader = reader
    if (!this.committed) {
      const early = [config.heartbeatSec * 1000, this.progress ? config.progressIntervalMs : 0].filter((ms) => ms > 0)
      if (early.length) {
        this.commitTimer = setTimeout(() => this.commit(), Math.min(...early))
        unref(this.commitTimer)
      }
    }
    reader.read().then(
      (first) => {
        this.firstEventAt = performance.now()
        this.commit()
        void this.run(first)
      },
      (err) => {
        if (this.committed) return void this.run(undefined, err)
        this.fail(GatewayError.from(err))
        this.finished = true
        this.connection.end()
        this.opts.log?.end()
      },
    )
    return this.ready
  }

  /** The queue reports the request's place (CallContext.onQueue). */
  report(update: QueueReport): void {
    if (this.finished || this.phase === 'generating') return
    this.phase = 'queued'
    this.position = update.position
    this.estimate = update.estimatedWaitMs
    if (this.progress) {
      this.commit()
      this.sendProgress()
    }
  }

  /** The request's own signal fired: before the answer began nobody can resume, so stop at once. */
  clientGone(reason: unknown): void {
    if (this.committed) this.detach(reason)
    else this.abortUpstream(reason)
  }

  /** The client cancelled on purpose: stop the upstream now, whether or not the answer began. */
  cancel(reason: unknown): void {
    this.abortUpstream(reason)
  }

  private commit(): void {
    if (this.committed) return
    this.committed = true
    if (this.commitTimer) clearTimeout(this.commitTimer)
    this.commitTimer = undefined
    if (this.progress) {
      this.progressTimer = setInterval(() => this.sendProgress(), this.opts.config.progressIntervalMs)
      unref(this.progressTimer)
    }
    this.startFrames()
    const settle = this.settle
    this.settle = undefined
    settle?.resolve()
  }

  /** The stream failed (or was abandoned) before the answer began. */
  private fail(err: GatewayError): void {
    this.committed = true
    this.clearTimers()
    const settle = this.settle
    this.settle = undefined
    settle?.reject(err)
  }

  private startFrames(): void {
    if (this.started) return
    this.started = true
    this.emit(this.opts.encoder.start())
  }

  private async run(first: ReadableStreamReadResult<ChatEvent> | undefined, failure?: unknown): Promise<void> {
    const { encoder } = this.opts
    const reader = this.reader
    try {
      if (failure !== undefined) throw failure
      let r = first!
      while (!r.done) {
        if (this.aborted) break
        this.onEvent(r.value)
        const wait = this.detached ? undefined : this.connection.ready()
        if (wait) await wait
        r = await reader.read()
      }
      if (this.aborted) return this.finish(this.cancelledFrames())
      this.coalescer?.flush()
      this.finish(encoder.end())
    } catch (err) {
      if (this.aborted) return this.finish(this.cancelledFrames())
      this.coalescer?.flush()
      this.finish(encoder.error(GatewayError.from(err)))
    }
  }

  private onEvent(e: ChatEvent): void {
    switch (e.type) {
      case 'text':
      case 'thinking':
        this.chars += e.text.length
        this.phase = 'generating'
        break
      case 'tool_call_delta':
        this.chars += e.arguments.length
        this.phase = 'generating'
        break
      case 'tool_call_start':
        this.phase = 'generating'
        break
    }
    if (this.filter && !keepEvent(this.filter, e)) return
    if (this.coalescer) this.coalescer.push(e)
    else this.emit(this.opts.encoder.push(e))
  }

  /** Numbers the frames, then writes them to the client and the resume buffer. */
  private emit(frames: SseFrame[]): void {
    if (frames.length === 0) return
    const log = this.opts.log
    const dropPing = this.filter?.ping === true
    let text = ''
    for (const f of frames) {
      if (dropPing && f.event === 'ping') continue
      const seq = ++this.seq
      const t = formatFrame(f, String(seq))
      log?.append(seq, t)
      text += t
    }
    if (text === '') return
    if (!this.detached) this.connection.write(text)
    log?.broadcast(text)
  }

  private sendProgress(): void {
    const encode = this.progressFrames
    if (!encode || this.finished || this.detached) return
    const elapsed_ms = Math.round(performance.now() - this.startedAt)
    if (this.phase === 'queued' && this.opts.meta?.queueWaitMs !== undefined) this.phase = 'waiting_first_token'
    let p: Progress
    if (this.phase === 'queued') p = this.estimate === undefined ? { phase: 'queued', position: this.position, elapsed_ms } : { phase: 'queued', position: this.position, estimated_wait_ms: Math.round(this.estimate), elapsed_ms }
    else if (this.phase === 'waiting_first_token') p = { phase: 'waiting_first_token', elapsed_ms }
    else {
      // While tokens flow, a progress frame with nothing new would only cost bytes.
      if (this.chars === this.reportedChars) return
      this.reportedChars = this.chars
      p = { phase: 'generating', tokens: Math.ceil(this.chars / 4), elapsed_ms }
    }
    // Progress frames repeat the last event's id: they are not kept for resuming.
    const id = String(this.seq)
    let text = ''
    for (const f of encode(p)) text += formatFrame(f, id)
    this.connection.write(text)
  }

  /** The client's connection is gone; a reconnect within the grace period picks the stream up. */
  private detach(reason: unknown): void {
    if (this.detached || this.finished) return
    this.detached = true
    this.stopProgress()
    const log = this.opts.log
    const graceMs = this.opts.config.reconnectGraceSec * 1000
    if (!log || graceMs <= 0) return this.abortUpstream(reason)
    const arm = (subscribers: number) => {
      if (this.graceTimer) clearTimeout(this.graceTimer)
      this.graceTimer = undefined
      if (subscribers === 0 && !this.finished) {
        this.graceTimer = setTimeout(() => this.abortUpstream(reason), graceMs)
        unref(this.graceTimer)
      }
    }
    log.onSubscribers = arm
    arm(0)
  }

  private abortUpstream(reason: unknown): void {
    if (this.aborted || this.finished) return
    this.aborted = true
    this.opts.abort(reason)
    if (!this.committed) this.fail(new GatewayError('cancelled', 'The request was cancelled.'))
  }

  private cancelledFrames(): SseFrame[] {
    this.coalescer?.close()
    return this.opts.encoder.error(new GatewayError('cancelled', 'The client went away and did not reconnect in time; the answer was stopped.'))
  }

  private finish(frames: SseFrame[]): void {
    if (this.finished) return
    this.startFrames()
    this.emit(frames)
    this.finished = true
    this.clearTimers()
    this.connection.end()
    this.opts.log?.end()
  }

  private stopProgress(): void {
    if (this.progressTimer) clearInterval(this.progressTimer)
    this.progressTimer = undefined
  }

  private clearTimers(): void {
    this.stopProgress()
    if (this.commitTimer) clearTimeout(this.commitTimer)
    this.commitTimer = undefined
    if (this.graceTimer) clearTimeout(this.graceTimer)
    this.graceTimer = undefined
  }
}
