import { newId } from '../../core/ids.js'
import type { ChatEvent, FinishReason, Usage } from '../../core/types.js'

/** A GenerateContentResponse, or one chunk of a streamed one. */
export interface GeminiResponse {
  candidates?: Array<{
    content?: { role?: string; parts?: Array<{ text?: string; thought?: boolean; functionCall?: { id?: string; name: string; args?: unknown } }> }
    finishReason?: string
    index?: number
  }>
  promptFeedback?: { blockReason?: string }
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; cachedContentTokenCount?: number; thoughtsTokenCount?: number; totalTokenCount?: number }
  modelVersion?: string
  responseId?: string
}

const FILTERED = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'LANGUAGE'])

export function mapFinishReason(reason: string | undefined, madeCalls: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length'
  if (reason && FILTERED.has(reason)) return 'content_filter'
  if (reason === 'MALFORMED_FUNCTION_CALL' || reason === 'UNEXPECTED_TOOL_CALL') return 'error'
  return madeCalls ? 'tool_calls' : 'stop'
}

/**
 * Gemini counts prompt tokens with cached ones included, like core does;
 * thinking tokens are billed as output, so they are added to outputTokens
 * (as OpenAI's completion_tokens include reasoning_tokens).
 */
export function mapUsage(u: GeminiResponse['usageMetadata']): Usage | undefined {
  if (!u) return undefined
  const thoughts = u.thoughtsTokenCount ?? 0
  const out: Usage = { inputTokens: u.promptTokenCount ?? 0, outputTokens: (u.candidatesTokenCount ?? 0) + thoughts }
  if (u.cachedContentTokenCount) out.cacheReadTokens = u.cachedContentTokenCount
  if (thoughts) out.reasoningTokens = thoughts
  return out
}

/**
 * Maps GenerateContentResponse chunks to events. Only candidate 0 is read.
 * Usage metadata is cumulative in every chunk, so only the last one counts;
 * usage and finish are emitted at the end.
 */
export class GeminiMapper {
  private started = false
  private calls = 0
  private finishReason: string | undefined
  private blocked = false
  private usage: GeminiResponse['usageMetadata']

  constructor(private readonly model: string) {}

  map(chunk: GeminiResponse, out: ChatEvent[]): void {
    if (!this.started) {
      this.started = true
      out.push({ type: 'start', id: chunk.responseId, model: chunk.modelVersion ?? this.model })
    }
    if (chunk.promptFeedback?.blockReason) this.blocked = true
    const cand = chunk.candidates?.find((c) => (c.index ?? 0) === 0)
    for (const part of cand?.content?.parts ?? []) {
      if (part.functionCall) {
        const index = this.calls++
        out.push({ type: 'tool_call_start', index, id: part.functionCall.id || newId('call_'), name: part.functionCall.name })
        out.push({ type: 'tool_call_delta', index, arguments: JSON.stringify(part.functionCall.args ?? {}) })
      } else if (part.text) {
        out.push(part.thought ? { type: 'thinking', text: part.text } : { type: 'text', text: part.text })
      }
    }
    if (cand?.finishReason) this.finishReason = cand.finishReason
    if (chunk.usageMetadata) this.usage = chunk.usageMetadata
  }

  end(out: ChatEvent[]): void {
    const usage = mapUsage(this.usage)
    if (usage) out.push({ type: 'usage', usage })
    out.push({ type: 'finish', reason: this.blocked ? 'content_filter' : mapFinishReason(this.finishReason, this.calls > 0) })
  }
}
