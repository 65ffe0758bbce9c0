import type { FinishReason } from '../../core/types.js'

/** Characters per token of the gateway's estimate (src/core/tokens.ts). */
export const CHARS_PER_TOKEN = 4

export interface GuardStep {
  /** Text to pass on now (possibly empty). */
  text: string
  /** Set when the answer must end here; the caller cancels the model call. */
  stop?: { reason: Extract<FinishReason, 'length' | 'stop_sequence'>; stopSequence?: string }
}

/**
 * Enforces `stop` and `max_tokens` on a text stream for a backend that has
 * neither (vscode.lm). Stop sequences may span chunk boundaries, so the last
 * `longest - 1` characters are held back until the next chunk (or the end)
 * shows they do not start a sequence. The token budget is counted in
 * estimated tokens (four characters each) over everything the model produced.
 */
export class OutputGuard {
  private held = ''
  private readonly holdBack: number
  private readonly stops: string[]
  private readonly budgetChars: number
  private usedChars = 0
  private stopped = false

  constructor(opts: { stop?: string[]; maxTokens?: number }) {
    this.stops = (opts.stop ?? []).filter((s) => s.length > 0)
    this.holdBack = this.stops.reduce((n, s) => Math.max(n, s.length - 1), 0)
    this.budgetChars = opts.maxTokens === undefined ? Infinity : opts.maxTokens * CHARS_PER_TOKEN
  }

  get done(): boolean {
    return this.stopped
  }

  /** A text delta from the model. */
  text(chunk: string): GuardStep {
    if (this.stopped) return { text: '' }
    let buffer = this.held + chunk
    this.held = ''
    let stop: GuardStep['stop']
    if (this.stops.length) {
      let at = -1
      let which = ''
      for (const s of this.stops) {
        const i = buffer.indexOf(s)
        if (i !== -1 && (at === -1 || i < at)) {
          at = i
          which = s
        }
      }
      if (at !== -1) {
        buffer = buffer.slice(0, at)
        stop = { reason: 'stop_sequence', stopSequence: which }
      } else if (this.holdBack > 0) {
        let keep = Math.min(this.holdBack, buffer.length)
        // Never split a surrogate pair between what is sent and what is held.
        if (keep < buffer.length && isHighSurrogate(buffer.charCodeAt(buffer.length - keep - 1))) keep++
        this.held = buffer.slice(buffer.length - keep)
        buffer = buffer.slice(0, buffer.length - keep)
      }
    }
    const out = this.spend(buffer)
    if (out.stop) return out
    if (stop) this.stopped = true
    return stop ? { text: out.text, stop } : out
  }

  /** Before non-text output (a tool call): held text cannot continue a stop sequence across it. */
  release(): GuardStep {
    if (this.stopped) return { text: '' }
    const rest = this.held
    this.held = ''
    return this.spend(rest)
  }

  /** Non-text output (thinking, tool calls) uses up the budget too; it is never cut. */
  spendOther(chars: number): GuardStep {
    if (this.stopped) return { text: '' }
    this.usedChars += chars
    if (this.usedChars > this.budgetChars) {
      this.stopped = true
      return { text: '', stop: { reason: 'length' } }
    }
    return { text: '' }
  }

  /** The stream ended: whatever was held back is plain text after all. */
  flush(): GuardStep {
    return this.release()
  }

  private spend(text: string): GuardStep {
    const left = this.budgetChars - this.usedChars
    // Exactly at the budget is not over it: the model may end right there.
    if (text.length <= left) {
      this.usedChars += text.length
      return { text }
    }
    let cut = Math.max(0, Math.floor(left))
    if (cut > 0 && cut < text.length && isHighSurrogate(text.charCodeAt(cut - 1))) cut--
    this.usedChars += cut
    this.stopped = true
    return { text: text.slice(0, cut), stop: { reason: 'length' } }
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}
