import { z } from 'zod'
import { newId } from '../../core/ids.js'
import type { ChatEvent, FinishReason } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * One line of Ollama's /api/chat answer (NDJSON when streaming, the single
 * object otherwise): message deltas, then a `done: true` line with
 * `done_reason` and the counts; or `{"error": "..."}` when it fails mid-way.
 */
export const OllamaChatLine = z.looseObject({
  model: z.string().optional(),
  message: z
    .looseObject({
      content: z.string().optional(),
      thinking: z.string().optional(),
      tool_calls: z
        .array(z.looseObject({ id: z.string().optional(), function: z.looseObject({ name: z.string(), arguments: z.unknown().optional() }) }))
        .nullish(),
    })
    .optional(),
  done: z.boolean().optional(),
  done_reason: z.string().optional(),
  prompt_eval_count: z.number().optional(),
  eval_count: z.number().optional(),
  error: z.string().optional(),
})
export type OllamaChatLine = z.infer<typeof OllamaChatLine>

export function mapOllamaDoneReason(reason: string | undefined, sawToolCalls: boolean): FinishReason {
  if (reason === 'length') return 'length'
  return sawToolCalls ? 'tool_calls' : 'stop'
}

export class OllamaLineMapper {
  private started = false
  private tools = 0

  constructor(private readonly provider: string) {}

  map(raw: unknown, out: ChatEvent[]): void {
    const parsed = OllamaChatLine.safeParse(raw)
    if (!parsed.success) throw new GatewayError('upstream', `Provider "${this.provider}" sent a chat line this gateway cannot read.`)
    const line = parsed.data
    if (line.error !== undefined) throw new GatewayError('upstream', `Provider "${this.provider}" failed mid-answer: ${line.error}`)
    if (!this.started) {
      this.started = true
      out.push({ type: 'start', model: line.model })
    }
    const m = line.message
    if (m?.thinking) out.push({ type: 'thinking', text: m.thinking })
    if (m?.content) out.push({ type: 'text', text: m.content })
    for (const tc of m?.tool_calls ?? []) {
      const index = this.tools++
      // Ollama sends whole calls (arguments as an object) and, before 0.12, no ids.
      out.push({ type: 'tool_call_start', index, id: tc.id ?? newId('call_'), name: tc.function.name })
      const args = tc.function.arguments
      out.push({ type: 'tool_call_delta', index, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) })
    }
    if (line.done) {
      out.push({ type: 'usage', usage: { inputTokens: line.prompt_eval_count ?? 0, outputTokens: line.eval_count ?? 0 } })
      out.push({ type: 'finish', reason: mapOllamaDoneReason(line.done_reason, this.tools > 0) })
    }
  }

  /** A stream cut before its `done` line is an upstream failure, not a short answer. */
  end(sawDone: boolean): void {
    if (!sawDone) throw new GatewayError('upstream', `Provider "${this.provider}" ended the answer without its final line.`)
  }
}
