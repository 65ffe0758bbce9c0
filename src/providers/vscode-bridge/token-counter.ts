import { estimateMessageTokens, estimateTextTokens } from '../../core/tokens.js'
import type { Message, Part } from '../../core/types.js'
import type { WireMessage, WireTool } from './wire.js'

/** A small LRU: a Map keeps insertion order, so the first key is the oldest. */
export class Lru<K, V> {
  private readonly map = new Map<K, V>()
  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) {
      this.map.delete(key)
      this.map.set(key, v)
    }
    return v
  }

  set(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K)
  }

  get size(): number {
    return this.map.size
  }
}

const encoder = new TextEncoder()

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
  let hex = ''
  for (let i = 0; i < 16; i++) hex += digest[i].toString(16).padStart(2, '0')
  return hex
}

export interface Counted {
  tokens: number
  /** True when at least one piece fell back to the estimate. */
  estimated: boolean
}

/** Asks the bridge for one message's (or one text's) tokens; rejects when it cannot count. */
export type CountCall = (model: string, input: { messages: WireMessage[] } | { text: string }, signal: AbortSignal) => Promise<number>

/**
 * Prompt tokens as the model's own tokenizer counts them (POST
 * /v1/count-tokens), one message at a time and cached per message hash: a
 * conversation that grows by a turn costs one new count, not a recount.
 * Anything the bridge cannot count falls back to the documented estimate.
 */
export class PromptCounter {
  private readonly cache: Lru<string, number>

  constructor(
    private readonly count: CountCall,
    maxEntries = 10_000,
  ) {
    this.cache = new Lru(maxEntries)
  }

  async prompt(model: string, wire: WireMessage[], tools: WireTool[] | undefined, signal: AbortSignal): Promise<Counted> {
    const pieces: Array<{ input: { messages: WireMessage[] } | { text: string }; fallback: () => number }> = wire.map((m) => ({
      input: { messages: [m] },
      fallback: () => estimateMessageTokens(coreMessage(m)),
    }))
    if (tools?.length) {
      const text = JSON.stringify(tools)
      pieces.push({ input: { text }, fallback: () => estimateTextTokens(text) })
    }
    // A long conversation seen for the first time must not open hundreds of bridge calls at once.
    const results = await inBatches(pieces, 8, (p) => this.one(model, p.input, p.fallback, signal))
    return { tokens: results.reduce((n, r) => n + r.tokens, 0), estimated: results.some((r) => r.estimated) }
  }

  /** Completion text is not cached: it is never sent twice. */
  async text(model: string, text: string, signal: AbortSignal): Promise<Counted> {
    if (text === '') return { tokens: 0, estimated: false }
    try {
      return { tokens: await this.count(model, { text }, signal), estimated: false }
    } catch {
      return { tokens: estimateTextTokens(text), estimated: true }
    }
  }

  private async one(model: string, input: { messages: WireMessage[] } | { text: string }, fallback: () => number, signal: AbortSignal): Promise<Counted> {
    const key = `${model}\u0000${await sha256(JSON.stringify(input))}`
    const hit = this.cache.get(key)
    if (hit !== undefined) return { tokens: hit, estimated: false }
    try {
      const tokens = await this.count(model, input, signal)
      this.cache.set(key, tokens)
      return { tokens, estimated: false }
    } catch {
      return { tokens: fallback(), estimated: true }
    }
  }
}

/** A wire message back in core terms, for the estimate. */
function coreMessage(m: WireMessage): Message {
  const content = m.content.map((p): Part => {
    switch (p.type) {
      case 'text':
        return p
      case 'image':
        return { type: 'image', mimeType: p.mimeType, data: p.data }
      case 'data':
        return { type: 'document', mimeType: p.mimeType, data: p.data }
      case 'tool_call':
        return { type: 'tool_call', id: p.callId, name: p.name, arguments: JSON.stringify(p.input) }
      case 'tool_result':
        return { type: 'tool_result', callId: p.callId, content: p.content.map((c) => (c.type === 'text' ? c : { type: c.type === 'data' ? 'document' : 'image', mimeType: c.mimeType, data: c.data })) }
    }
  })
  return { role: m.role, content }
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order. */
async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
