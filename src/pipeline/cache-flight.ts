import type { ChatEvent } from '../core/types.js'
import { GatewayError } from '../errors.js'

/**
 * One upstream answer in progress, shared by every identical request that
 * arrives while it runs (stampede protection). The flight reads the upstream
 * stream as fast as it comes and keeps every event; each request reads the
 * events at its own pace, the first one live, later ones catching up. The
 * upstream call is cancelled only when every reader has gone.
 */
export class Flight {
  readonly events: ChatEvent[] = []
  /** UTF-16 length of the events as JSON, for the per-entry size cap. */
  size = 0
  finished = false
  error: GatewayError | undefined
  /** The first request's meta, where the router notes the served model; followers copy it. */
  meta: Record<string, unknown> | undefined
  private readers = 0
  private wake: Array<() => void> = []
  private readonly abort = new AbortController()
  private upstream: ReadableStreamDefaultReader<ChatEvent> | undefined
  private settle!: (ok: boolean) => void
  /** Resolves when the upstream stream has ended: true when it completed. */
  readonly done: Promise<boolean> = new Promise((resolve) => (this.settle = resolve))

  /** Aborted when the last reader leaves; the upstream call runs under it. */
  get signal(): AbortSignal {
    return this.abort.signal
  }

  start(open: (signal: AbortSignal) => ReadableStream<ChatEvent>, onGone: () => void): void {
    this.onGone = onGone
    void this.pump(open)
  }

  private onGone: () => void = () => {}

  private async pump(open: (signal: AbortSignal) => ReadableStream<ChatEvent>): Promise<void> {
    try {
      this.upstream = open(this.abort.signal).getReader()
      for (;;) {
        const { done, value } = await this.upstream.read()
        if (done) break
        this.events.push(value)
        this.size += sizeOfEvent(value)
        this.notify()
      }
      this.finished = true
    } catch (err) {
      this.error = GatewayError.from(err)
      this.finished = true
    }
    this.notify()
    this.settle(!this.error && !this.abort.signal.aborted)
  }

  private notify(): void {
    const waiting = this.wake
    this.wake = []
    for (const w of waiting) w()
  }

  /** A reader of the events from the first one; `signal` is its client's. */
  subscribe(signal: AbortSignal): FlightReader {
    this.readers++
    let at = 0
    let left = false
    const leave = () => {
      if (left) return
      left = true
      signal.removeEventListener('abort', onAbort)
      if (--this.readers === 0 && !this.finished) {
        this.onGone()
        this.abort.abort(new GatewayError('cancelled', 'Every client of this answer went away.'))
        void this.upstream?.cancel().catch(() => {})
      }
    }
    const onAbort = () => {
      leave()
      this.notify()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    return {
      next: async () => {
        for (;;) {
          if (left) throw new GatewayError('cancelled', 'The request was cancelled.')
          if (at < this.events.length) return { done: false, value: this.events[at++] }
          if (this.finished) {
            leave()
            if (this.error) throw this.error
            return { done: true, value: undefined }
          }
          await new Promise<void>((resolve) => this.wake.push(resolve))
        }
      },
      cancel: leave,
    }
  }
}

export interface FlightReader {
  next(): Promise<IteratorResult<ChatEvent, undefined>>
  cancel(): void
}

function sizeOfEvent(e: ChatEvent): number {
  switch (e.type) {
    case 'text':
    case 'thinking':
      return e.text.length + 32
    case 'tool_call_delta':
      return e.arguments.length + 48
    default:
      return 96
  }
}
