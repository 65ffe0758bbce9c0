import { tagSignature } from '../../core/thinking-signature.js'
import type { ChatEvent, FinishReason, Usage } from '../../core/types.js'
import { GatewayError, type ErrorKind } from '../../errors.js'

export function mapStopReason(reason: unknown): FinishReason | undefined {
  switch (reason) {
    case 'end_turn':
    case 'pause_turn':
      return 'stop'
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length'
    case 'stop_sequence':
      return 'stop_sequence'
    case 'tool_use':
      return 'tool_calls'
    case 'refusal':
      return 'content_filter'
    default:
      return reason == null ? undefined : 'stop'
  }
}

interface WireUsage {
  input_tokens?: number | null
  output_tokens?: number | null
  cache_creation_input_tokens?: number | null
  cache_read_input_tokens?: number | null
}

/** Core `inputTokens` is the whole prompt: Anthropic reports cache reads and writes apart, so they are added. */
export function mapUsage(u: WireUsage | undefined, previous?: Usage): Usage | undefined {
  if (!u) return undefined
  const read = u.cache_read_input_tokens ?? previous?.cacheReadTokens ?? 0
  const write = u.cache_creation_input_tokens ?? previous?.cacheWriteTokens ?? 0
  const input = u.input_tokens != null ? u.input_tokens + read + write : (previous?.inputTokens ?? read + write)
  const out: Usage = { inputTokens: input, outputTokens: u.output_tokens ?? previous?.outputTokens ?? 0 }
  if (read) out.cacheReadTokens = read
  if (write) out.cacheWriteTokens = write
  return out
}

const ERROR_KINDS: Record<string, ErrorKind> = {
  invalid_request_error: 'invalid_request',
  authentication_error: 'auth',
  permission_error: 'permission',
  not_found_error: 'not_found',
  request_too_large: 'payload_too_large',
  rate_limit_error: 'rate_limit',
  overloaded_error: 'overloaded',
  timeout_error: 'timeout',
  api_error: 'upstream',
}

/** An `event: error` in the upstream stream → the GatewayError the stream fails with. */
export function streamError(provider: string, data: { error?: { type?: string; message?: string } }): GatewayError {
  const kind = ERROR_KINDS[data.error?.type ?? ''] ?? 'upstream'
  const message = `Provider "${provider}" failed mid-stream: ${data.error?.message ?? 'unknown error'}`
  if (kind === 'auth' || kind === 'permission') return new GatewayError(kind, message, { status: 502, code: 'provider_auth_error' })
  return new GatewayError(kind, message)
}

type Block = { type: string; id?: string; name?: string; text?: string; thinking?: string; signature?: string; data?: string; input?: unknown }

/**
 * Maps Anthropic stream events to core events. Content block indices become
 * dense tool-call indices; thinking signatures are tagged with the provider
 * id so they can be sent back here (and only here) on a later turn.
 */
export class AnthropicEventMapper {
  private readonly toolIndex = new Map<number, number>()
  /** Tool blocks that received argument JSON; a call without arguments gets `{}` (always valid JSON). */
  private readonly withArgs = new Set<number>()
  private finish: FinishReason | undefined
  private stopSequence: string | undefined
  private usage: Usage | undefined

  constructor(private readonly provider: string) {}

  map(type: string, data: any, out: ChatEvent[]): void {
    switch (type) {
      case 'message_start': {
        const m = data.message ?? {}
        out.push({ type: 'start', id: m.id, model: m.model })
        this.usage = mapUsage(m.usage)
        if (this.usage) out.push({ type: 'usage', usage: this.usage })
        break
      }
      case 'content_block_start':
        this.blockStart(data.index, (data.content_block ?? {}) as Block, out)
        break
      case 'content_block_delta': {
        const d = data.delta ?? {}
        if (d.type === 'text_delta' && d.text) out.push({ type: 'text', text: d.text })
        else if (d.type === 'input_json_delta') {
          const index = this.toolIndex.get(data.index)
          if (index !== undefined && d.partial_json) {
            this.withArgs.add(index)
            out.push({ type: 'tool_call_delta', index, arguments: d.partial_json })
          }
        } else if (d.type === 'thinking_delta' && d.thinking) out.push({ type: 'thinking', text: d.thinking })
        else if (d.type === 'signature_delta' && d.signature) out.push({ type: 'thinking', text: '', signature: tagSignature(this.provider, d.signature) })
        break
      }
      case 'content_block_stop': {
        const index = this.toolIndex.get(data.index)
        if (index !== undefined && !this.withArgs.has(index)) {
          this.withArgs.add(index)
          out.push({ type: 'tool_call_delta', index, arguments: '{}' })
        }
        break
      }
      case 'message_delta': {
        const reason = mapStopReason(data.delta?.stop_reason)
        if (reason) this.finish = reason
        if (data.delta?.stop_sequence) this.stopSequence = data.delta.stop_sequence
        const usage = mapUsage(data.usage, this.usage)
        if (usage) {
          this.usage = usage
          out.push({ type: 'usage', usage })
        }
        break
      }
      case 'error':
        throw streamError(this.provider, data)
      default:
        // ping, message_stop and event types added later carry nothing to map.
        break
    }
  }

  private blockStart(blockIndex: number, b: Block, out: ChatEvent[]): void {
    if (b.type === 'text') {
      if (b.text) out.push({ type: 'text', text: b.text })
    } else if (b.type === 'tool_use') {
      const index = this.toolIndex.size
      this.toolIndex.set(blockIndex, index)
      out.push({ type: 'tool_call_start', index, id: b.id ?? `toolu_${index}`, name: b.name ?? '' })
      // The stream starts input at {} and sends the JSON in deltas; a non-empty start input is sent whole.
      if (b.input && typeof b.input === 'object' && Object.keys(b.input).length) {
        this.withArgs.add(index)
        out.push({ type: 'tool_call_delta', index, arguments: JSON.stringify(b.input) })
      }
    } else if (b.type === 'thinking') {
      if (b.thinking) out.push({ type: 'thinking', text: b.thinking })
      if (b.signature) out.push({ type: 'thinking', text: '', signature: tagSignature(this.provider, b.signature) })
    } else if (b.type === 'redacted_thinking' && b.data) {
      out.push({ type: 'thinking', text: '', redacted: tagSignature(this.provider, b.data) })
    }
  }

  end(out: ChatEvent[]): void {
    const reason = this.finish ?? (this.toolIndex.size ? 'tool_calls' : 'stop')
    out.push(this.stopSequence ? { type: 'finish', reason, stopSequence: this.stopSequence } : { type: 'finish', reason })
  }
}

/** A non-streamed message → the same events a stream would give. */
export function eventsFromMessage(provider: string, body: any): ChatEvent[] {
  const mapper = new AnthropicEventMapper(provider)
  const out: ChatEvent[] = []
  mapper.map('message_start', { message: { id: body?.id, model: body?.model } }, out)
  const blocks: Block[] = Array.isArray(body?.content) ? body.content : []
  blocks.forEach((b, i) => {
    mapper.map('content_block_start', { index: i, content_block: b }, out)
    mapper.map('content_block_stop', { index: i }, out)
  })
  mapper.map('message_delta', { delta: { stop_reason: body?.stop_reason, stop_sequence: body?.stop_sequence }, usage: body?.usage }, out)
  mapper.end(out)
  return out
}
