import type { ChatEvent, ChatResult, TextPart, ThinkingPart, ToolCallPart } from './types.js'

/**
 * Folds a stream of events into one assistant turn. Text, thinking and tool
 * calls keep the order the model produced them in; adjacent text merges.
 */
export class Aggregator {
  readonly content: Array<TextPart | ThinkingPart | ToolCallPart> = []
  readonly result: ChatResult = { content: this.content, finishReason: 'stop' }
  private readonly calls = new Map<number, ToolCallPart>()
  private finished = false

  push(event: ChatEvent): void {
    switch (event.type) {
      case 'start':
        if (event.id) this.result.id = event.id
        if (event.model) this.result.model = event.model
        break
      case 'text': {
        const last = this.content[this.content.length - 1]
        if (last?.type === 'text') last.text += event.text
        else this.content.push({ type: 'text', text: event.text })
        break
      }
      case 'thinking': {
        const last = this.content[this.content.length - 1]
        if (last?.type === 'thinking' && !event.redacted && !last.redacted) {
          last.text += event.text
          if (event.signature) last.signature = event.signature
        } else {
          const part: ThinkingPart = { type: 'thinking', text: event.text }
          if (event.signature) part.signature = event.signature
          if (event.redacted) part.redacted = event.redacted
          this.content.push(part)
        }
        break
      }
      case 'tool_call_start': {
        const part: ToolCallPart = { type: 'tool_call', id: event.id, name: event.name, arguments: '' }
        this.calls.set(event.index, part)
        this.content.push(part)
        break
      }
      case 'tool_call_delta': {
        const call = this.calls.get(event.index)
        if (call) call.arguments += event.arguments
        break
      }
      case 'usage':
        this.result.usage = { ...this.result.usage, ...event.usage }
        break
      case 'finish':
        this.finished = true
        this.result.finishReason = event.reason
        if (event.stopSequence !== undefined) this.result.stopSequence = event.stopSequence
        break
    }
  }

  /** The completed turn. A stream that ended without `finish` ended as `stop`,
   * or as `tool_calls` when it made calls. */
  done(): ChatResult {
    if (!this.finished && this.calls.size > 0) this.result.finishReason = 'tool_calls'
    return this.result
  }
}

/** Reads a whole event stream into one result; rejects with the stream's error. */
export async function aggregate(stream: ReadableStream<ChatEvent>): Promise<ChatResult> {
  const agg = new Aggregator()
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      agg.push(value)
    }
  } finally {
    reader.releaseLock()
  }
  return agg.done()
}

/** Text of the parts of a message, joined. */
export function textOf(parts: ReadonlyArray<{ type: string; text?: string }>): string {
  let out = ''
  for (const p of parts) if (p.type === 'text' && p.text) out += p.text
  return out
}
