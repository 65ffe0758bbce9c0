import { newId, nowSeconds } from '../../core/ids.js'
import type { ChatEvent, ChatRequest, ChatResult, FinishReason, Usage } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { Progress } from '../../streaming/progress.js'
import type { SseFrame } from '../../streaming/sse.js'
import { openAIUsage, type EncodeMeta } from './chat.js'
import type { CompletionRequest } from './schemas.js'

/**
 * The legacy completions endpoint on chat models: the prompt becomes one user
 * message and the answer's text is returned as a `text_completion`.
 */
export function decodeCompletion(body: CompletionRequest): { req: ChatRequest; echo: string } {
  if (body.n != null && body.n > 1) {
    throw new GatewayError('invalid_request', 'n > 1 is not supported by this gateway: request one choice at a time.', { param: 'n', code: 'unsupported_value' })
  }
  const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt[0]
  const text = body.suffix ? `${prompt}[INSERT]${body.suffix}` : prompt
  const req: ChatRequest = { model: body.model, messages: [{ role: 'user', content: [{ type: 'text', text }] }], stream: body.stream === true }
  if (body.max_tokens != null) req.maxTokens = body.max_tokens
  if (body.temperature != null) req.temperature = body.temperature
  if (body.top_p != null) req.topP = body.top_p
  if (body.stop != null) req.stop = typeof body.stop === 'string' ? [body.stop] : body.stop
  if (body.seed != null) req.seed = body.seed
  if (body.user !== undefined) req.user = body.user
  return { req, echo: body.echo ? prompt : '' }
}

function finish(reason: FinishReason): 'stop' | 'length' | 'content_filter' {
  return reason === 'length' ? 'length' : reason === 'content_filter' ? 'content_filter' : 'stop'
}

export function encodeCompletionResult(result: ChatResult, meta: EncodeMeta, echo: string): Record<string, unknown> {
  let text = echo
  for (const p of result.content) if (p.type === 'text') text += p.text
  const out: Record<string, unknown> = {
    id: newId('cmpl-'),
    object: 'text_completion',
    created: nowSeconds(),
    model: meta.model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finish(result.finishReason) }],
  }
  if (result.usage) out.usage = openAIUsage(result.usage)
  return out
}

export class CompletionChunkEncoder {
  private readonly id = newId('cmpl-')
  private readonly created = nowSeconds()
  private usage: Usage | undefined
  private reason: FinishReason = 'stop'

  constructor(
    private readonly meta: EncodeMeta,
    private readonly includeUsage: boolean,
    private readonly echo: string,
  ) {}

  private chunk(text: string, finishReason: string | null): SseFrame {
    const body: Record<string, unknown> = {
      id: this.id,
      object: 'text_completion',
      created: this.created,
      model: this.meta.model,
        choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
    }
    if (this.includeUsage) body.usage = null
    return { data: JSON.stringify(body) }
  }

  start(): SseFrame[] {
    return this.echo ? [this.chunk(this.echo, null)] : []
  }

  /** A chunk with no choices carrying the gateway's `progress`. */
  progress(p: Progress): SseFrame[] {
    return [{ event: 'progress', data: JSON.stringify({ id: this.id, object: 'text_completion', created: this.created, model: this.meta.model, choices: [], progress: p }) }]
  }

  push(event: ChatEvent): SseFrame[] {
    if (event.type === 'text' && event.text) return [this.chunk(event.text, null)]
    if (event.type === 'usage') this.usage = { ...this.usage, ...event.usage }
    if (event.type === 'finish') this.reason = event.reason
    return []
  }

  end(): SseFrame[] {
    const frames = [this.chunk('', finish(this.reason))]
    if (this.includeUsage) {
      const usage = this.usage ?? { inputTokens: 0, outputTokens: 0 }
      frames.push({
        data: JSON.stringify({ id: this.id, object: 'text_completion', created: this.created, model: this.meta.model, choices: [], usage: openAIUsage(usage) }),
      })
    }
    frames.push({ data: '[DONE]' })
    return frames
  }
}
