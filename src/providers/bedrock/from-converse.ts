import type { ChatEvent, FinishReason, Usage } from '../../core/types.js'

/** Converse's stopReason → core finish reason. */
export function mapStopReason(reason: unknown, madeCalls: boolean): FinishReason {
  switch (reason) {
    case 'end_turn':
      return madeCalls ? 'tool_calls' : 'stop'
    case 'tool_use':
      return 'tool_calls'
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length'
    case 'stop_sequence':
      return 'stop_sequence'
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter'
    default:
      return madeCalls ? 'tool_calls' : 'stop'
  }
}

interface ConverseUsage {
  inputTokens?: number
  outputTokens?: number
  cacheReadInputTokens?: number
  cacheWriteInputTokens?: number
}

/**
 * Converse counts cache reads and writes apart from `inputTokens`; core
 * counts every prompt token in `inputTokens` (as OpenAI's prompt_tokens does)
 * and says how many of them were cached.
 */
export function mapConverseUsage(u: ConverseUsage | undefined): Usage | undefined {
  if (!u) return undefined
  const read = u.cacheReadInputTokens ?? 0
  const write = u.cacheWriteInputTokens ?? 0
  const out: Usage = { inputTokens: (u.inputTokens ?? 0) + read + write, outputTokens: u.outputTokens ?? 0 }
  if (read) out.cacheReadTokens = read
  if (write) out.cacheWriteTokens = write
  return out
}

type ContentBlock = {
  text?: string
  toolUse?: { toolUseId: string; name: string; input?: unknown }
  reasoningContent?: { reasoningText?: { text?: string; signature?: string }; redactedContent?: string }
}

export interface ConverseResponse {
  output?: { message?: { role?: string; content?: ContentBlock[] } }
  stopReason?: string
  usage?: ConverseUsage
}

/** A Converse (non-streamed) response → the events a stream would give. */
export function eventsFromConverse(body: ConverseResponse, model: string): ChatEvent[] {
  const out: ChatEvent[] = [{ type: 'start', model }]
  let calls = 0
  for (const block of body.output?.message?.content ?? []) {
    if (block.text) out.push({ type: 'text', text: block.text })
    else if (block.toolUse) {
      const index = calls++
      out.push({ type: 'tool_call_start', index, id: block.toolUse.toolUseId, name: block.toolUse.name })
      out.push({ type: 'tool_call_delta', index, arguments: JSON.stringify(block.toolUse.input ?? {}) })
    } else if (block.reasoningContent) {
      const r = block.reasoningContent
      if (r.redactedContent) out.push({ type: 'thinking', text: '', redacted: r.redactedContent })
      else if (r.reasoningText) out.push({ type: 'thinking', text: r.reasoningText.text ?? '', ...(r.reasoningText.signature ? { signature: r.reasoningText.signature } : {}) })
    }
  }
  const usage = mapConverseUsage(body.usage)
  if (usage) out.push({ type: 'usage', usage })
  out.push({ type: 'finish', reason: mapStopReason(body.stopReason, calls > 0) })
  return out
}

/** ConverseStream event payloads, keyed by the frame's `:event-type`. */
export type StreamPayload = {
  contentBlockIndex?: number
  start?: { toolUse?: { toolUseId: string; name: string } }
  delta?: { text?: string; toolUse?: { input?: string }; reasoningContent?: { text?: string; signature?: string; redactedContent?: string } }
  stopReason?: string
  usage?: ConverseUsage
}

/**
 * Maps ConverseStream events to core events. Tool calls are numbered among
 * this turn's calls (Converse numbers all content blocks); finish waits for
 * the end of the stream, because `metadata` (usage) follows `messageStop`.
 */
export class ConverseStreamMapper {
  private readonly toolIndex = new Map<number, number>()
  private stopReason: string | undefined

  constructor(private readonly model: string) {}

  map(eventType: string, p: StreamPayload, out: ChatEvent[]): void {
    switch (eventType) {
      case 'messageStart':
        out.push({ type: 'start', model: this.model })
        break
      case 'contentBlockStart': {
        const tool = p.start?.toolUse
        if (tool) {
          const index = this.toolIndex.size
          this.toolIndex.set(p.contentBlockIndex ?? 0, index)
          out.push({ type: 'tool_call_start', index, id: tool.toolUseId, name: tool.name })
        }
        break
      }
      case 'contentBlockDelta': {
        const d = p.delta
        if (!d) break
        if (d.text) out.push({ type: 'text', text: d.text })
        else if (d.toolUse?.input) {
          const index = this.toolIndex.get(p.contentBlockIndex ?? 0)
          if (index !== undefined) out.push({ type: 'tool_call_delta', index, arguments: d.toolUse.input })
        } else if (d.reasoningContent) {
          const r = d.reasoningContent
          if (r.redactedContent) out.push({ type: 'thinking', text: '', redacted: r.redactedContent })
          else if (r.text || r.signature) out.push({ type: 'thinking', text: r.text ?? '', ...(r.signature ? { signature: r.signature } : {}) })
        }
        break
      }
      case 'messageStop':
        this.stopReason = p.stopReason
        break
      case 'metadata': {
        const usage = mapConverseUsage(p.usage)
        if (usage) out.push({ type: 'usage', usage })
        break
      }
    }
  }

  end(out: ChatEvent[]): void {
    out.push({ type: 'finish', reason: mapStopReason(this.stopReason, this.toolIndex.size > 0) })
  }
}
