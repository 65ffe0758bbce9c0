import type { ChatEvent } from '../core/types.js'

/**
 * Merges tiny deltas that arrive close together into fewer, larger ones: a
 * model that streams one token per chunk costs one frame (and, compressed,
 * one flush) per token. The first delta always passes at once, so the time to
 * first token is unchanged; later deltas of the same kind wait at most
 * `windowMs` (or until `maxChars` collected) and any other event flushes them
 * first, so order is kept.
 */
export class Coalescer {
  private pending: ChatEvent | undefined
  private chars = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private seenDelta = false

  constructor(
    private readonly windowMs: number,
    private readonly maxChars: number,
    private readonly emit: (event: ChatEvent) => void,
  ) {}

  push(event: ChatEvent): void {
    const size = deltaSize(event)
    if (size < 0) {
      this.flush()
      this.emit(event)
      return
    }
    if (!this.seenDelta) {
      this.seenDelta = true
      this.emit(event)
      return
    }
    if (this.pending && !merge(this.pending, event)) this.flush()
    if (!this.pending) {
      this.pending = copy(event)
      this.chars = 0
      this.timer = setTimeout(() => this.flush(), this.windowMs)
    }
    this.chars += size
    if (this.chars >= this.maxChars) this.flush()
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const p = this.pending
    this.pending = undefined
    if (p) this.emit(p)
  }

  /** Drops a pending delta without sending it (the stream was abandoned). */
  close(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.pending = undefined
  }
}

/** Characters of a mergeable delta, or -1 for events that are never merged. */
function deltaSize(e: ChatEvent): number {
  if (e.type === 'text') return e.text.length
  if (e.type === 'thinking') return e.signature || e.redacted ? -1 : e.text.length
  if (e.type === 'tool_call_delta') return e.arguments.length
  return -1
}

function copy(e: ChatEvent): ChatEvent {
  return { ...e }
}

/** Appends `next` to `into` when they are deltas of the same thing. */
function merge(into: ChatEvent, next: ChatEvent): boolean {
  if (into.type === 'text' && next.type === 'text') {
    into.text += next.text
    return true
  }
  if (into.type === 'thinking' && next.type === 'thinking') {
    into.text += next.text
    return true
  }
  if (into.type === 'tool_call_delta' && next.type === 'tool_call_delta' && into.index === next.index) {
    into.arguments += next.arguments
    return true
  }
  return false
}
