import { z } from 'zod'
import type { ChatEvent, FinishReason, Usage } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { unref } from '../../streaming/connection.js'
import { decodeSse } from '../../streaming/decode.js'
import { Vector, type BatchResult } from '../shared/embed-batches.js'
import type { HttpResponse } from '../shared/http.js'

export function mapOpenAIFinishReason(reason: unknown): FinishReason | undefined {
  switch (reason) {
    case 'stop':
      return 'stop'
    case 'length':
      return 'length'
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls'
    case 'content_filter':
      return 'content_filter'
    default:
      return reason == null ? undefined : 'stop'
  }
}

export function mapOpenAIUsage(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined
  const usage = u as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number }; completion_tokens_details?: { reasoning_tokens?: number } }
  const out: Usage = { inputTokens: usage.prompt_tokens ?? 0, outputTokens: usage.completion_tokens ?? 0 }
  const cached = usage.prompt_tokens_details?.cached_tokens
  if (cached) out.cacheReadTokens = cached
  const reasoning = usage.completion_tokens_details?.reasoning_tokens
  if (reasoning) out.reasoningTokens = reasoning
  return out
}

interface Chunk {
  id?: string
  model?: string
  choices?: Array<{
    index?: number
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }> }
    finish_reason?: string | null
  }>
  usage?: unknown
}

/**
 * Maps streamed chat.completion.chunk objects to events. Only choice 0 is
 * read. Tool calls are re-indexed densely, since some servers number them
 * sparsely or repeat ids.
 */
export class OpenAIChunkMapper {
  private started = false
  private finish: FinishReason | undefined
  private readonly toolIndex = new Map<number, number>()

  map(chunk: Chunk, out: ChatEvent[]): void {
    if (!this.started) {
      this.started = true
      out.push({ type: 'start', id: chunk.id, model: chunk.model })
    }
    const choice = chunk.choices?.find((c) => (c.index ?? 0) === 0)
    if (choice) {
      const d = choice.delta
      const reasoning = d?.reasoning_content ?? d?.reasoning
      if (reasoning) out.push({ type: 'thinking', text: reasoning })
      if (d?.content) out.push({ type: 'text', text: d.content })
      for (const tc of d?.tool_calls ?? []) {
        const upstreamIndex = tc.index ?? 0
        let index = this.toolIndex.get(upstreamIndex)
        if (index === undefined) {
          index = this.toolIndex.size
          this.toolIndex.set(upstreamIndex, index)
          out.push({ type: 'tool_call_start', index, id: tc.id ?? `call_${index}`, name: tc.function?.name ?? '' })
        }
        if (tc.function?.arguments) out.push({ type: 'tool_call_delta', index, arguments: tc.function.arguments })
      }
      const reason = mapOpenAIFinishReason(choice.finish_reason)
      if (reason) this.finish = reason
    }
    const usage = mapOpenAIUsage(chunk.usage)
    if (usage) out.push({ type: 'usage', usage })
  }

  end(out: ChatEvent[]): void {
    out.push({ type: 'finish', reason: this.finish ?? (this.toolIndex.size ? 'tool_calls' : 'stop') })
  }
}

/** A non-streamed chat.completion → the same events a stream would give. */
export function eventsFromCompletion(body: unknown): ChatEvent[] {
  const b = body as {
    id?: string
    model?: string
    choices?: Array<{ message?: { content?: string | null; reasoning_content?: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }; finish_reason?: string }>
    usage?: unknown
  }
  const out: ChatEvent[] = [{ type: 'start', id: b.id, model: b.model }]
  const choice = b.choices?.[0]
  const msg = choice?.message
  if (msg?.reasoning_content) out.push({ type: 'thinking', text: msg.reasoning_content })
  if (msg?.content) out.push({ type: 'text', text: msg.content })
  for (const [index, tc] of (msg?.tool_calls ?? []).entries()) {
    out.push({ type: 'tool_call_start', index, id: tc.id, name: tc.function.name })
    out.push({ type: 'tool_call_delta', index, arguments: tc.function.arguments })
  }
  const usage = mapOpenAIUsage(b.usage)
  if (usage) out.push({ type: 'usage', usage })
  out.push({ type: 'finish', reason: mapOpenAIFinishReason(choice?.finish_reason) ?? (msg?.tool_calls?.length ? 'tool_calls' : 'stop') })
  return out
}

/**
 * The events of one OpenAI-wire chat answer: a chat.completion body, or an SSE
 * stream of chunks (ending at `data: [DONE]` or the connection's end). Shared
 * by every provider that speaks this wire (openai-compatible, Azure OpenAI).
 */
export async function* eventsFromOpenAIResponse(provider: string, response: HttpResponse | Promise<HttpResponse>, stream: boolean): AsyncGenerator<ChatEvent> {
  // A pending response is awaited here, so a provider needs no generator of its own around this one.
  const res = await response
  if (!stream) {
    let body: unknown
    try {
      body = await res.json()
    } catch (err) {
      throw new GatewayError('upstream', `Provider "${provider}" sent a body that is not JSON.`, { cause: err })
    }
    yield* eventsFromCompletion(body)
    return
  }
  const mapper = new OpenAIChunkMapper()
  const out: ChatEvent[] = []
  let ended: ReturnType<typeof setTimeout> | undefined
  try {
    for await (const ev of decodeSse(res.body)) {
      if (ended) continue
      if (ev.data.startsWith('[DONE]')) {
        // Read on to the body's end instead of breaking off: undici aborts a response left
        // unfinished, closing its connection. A server that holds the body open after
        // [DONE] gets a moment, then the body is dropped.
        mapper.end(out)
        yield* out
        out.length = 0
        ended = setTimeout(() => void res.discard(), DRAIN_AFTER_DONE_MS)
        unref(ended)
        continue
      }
      let chunk: unknown
      try {
        chunk = JSON.parse(ev.data)
      } catch (err) {
        throw new GatewayError('upstream', `Provider "${provider}" sent a stream event that is not JSON.`, { cause: err })
      }
      const inband = (chunk as { error?: { message?: string } }).error
      if (inband) throw new GatewayError('upstream', `Provider "${provider}" failed mid-stream: ${inband.message ?? 'unknown error'}`)
      mapper.map(chunk as never, out)
      for (const e of out) yield e
      out.length = 0
    }
  } catch (err) {
    // Dropped after [DONE]: everything was delivered.
    if (!ended) throw err
  } finally {
    clearTimeout(ended)
  }
  if (ended) return
  mapper.end(out)
  yield* out
}

/** How long a body may stay open after `data: [DONE]` before it is dropped. */
const DRAIN_AFTER_DONE_MS = 2000

const EmbeddingList = z.looseObject({
  data: z.array(z.looseObject({ index: z.number().int(), embedding: Vector })),
  model: z.string().optional(),
  usage: z.looseObject({ prompt_tokens: z.number().optional() }).optional(),
})

/** An OpenAI /embeddings answer (requested with encoding_format float) → vectors in input order. */
export function embeddingsFromOpenAI(provider: string, body: unknown): BatchResult {
  const parsed = EmbeddingList.safeParse(body)
  if (!parsed.success) throw new GatewayError('upstream', `Provider "${provider}" sent an embeddings answer this gateway cannot read (expected data[].embedding as float arrays).`)
  const sorted = [...parsed.data.data].sort((a, b) => a.index - b.index)
  return { model: parsed.data.model, embeddings: sorted.map((d) => d.embedding), inputTokens: parsed.data.usage?.prompt_tokens }
}
