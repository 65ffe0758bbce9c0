import type { ServerResponse } from 'node:http'
import * as fx from '../fixtures/openai/chat.js'
import { sleep } from '../helpers/upstream.js'

/** One SSE block as a client sees it: fields, or a comment line. */
export interface Block {
  id?: string
  event?: string
  data?: string
  retry?: string
  comment?: string
}

/** Splits SSE text into blocks (LF only: the gateway writes LF). */
export function parseBlocks(text: string): Block[] {
  const out: Block[] = []
  for (const raw of text.split('\n\n')) {
    if (!raw) continue
    const b: Block = {}
    for (const line of raw.split('\n')) {
      if (line.startsWith(':')) b.comment = line.slice(1).trim()
      else {
        const i = line.indexOf(':')
        const k = line.slice(0, i) as 'id' | 'event' | 'data' | 'retry'
        b[k] = line.slice(i + 1).replace(/^ /, '')
      }
    }
    out.push(b)
  }
  return out
}

/** Reads a response body block by block as it arrives. */
export async function* blocks(body: ReadableStream<Uint8Array>): AsyncGenerator<Block> {
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const raw = buf.slice(0, end + 2)
      buf = buf.slice(end + 2)
      yield* parseBlocks(raw)
    }
  }
}

/** The text content of OpenAI chunk blocks. */
export function contentOf(bs: Block[]): string {
  let text = ''
  for (const b of bs) {
    if (!b.data || b.data === '[DONE]' || b.event === 'progress') continue
    const chunk = JSON.parse(b.data)
    text += chunk.choices?.[0]?.delta?.content ?? ''
  }
  return text
}

export function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Count for me' }], ...extra })
}

/** The words an upstream streams with `streamWords`. */
export function words(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `w${i} `)
}

/**
 * Streams OpenAI chunks of `parts` (role chunk first, finish and usage
 * chunks last) with `delayMs` between them, as OpenAI's API does.
 */
export async function streamWords(res: ServerResponse, parts: string[], opts: { delayMs?: number; firstDelayMs?: number } = {}): Promise<void> {
  const base = fx.streamText[1]
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  if (opts.firstDelayMs) await sleep(opts.firstDelayMs)
  const write = (o: unknown) => !res.destroyed && res.write(`data: ${JSON.stringify(o)}\n\n`)
  write(fx.streamText[0])
  for (const p of parts) {
    if (res.destroyed) return
    write({ ...base, choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }] })
    if (opts.delayMs) await sleep(opts.delayMs)
  }
  write(fx.streamText[3])
  write(fx.streamText[4])
  if (!res.destroyed) res.end('data: [DONE]\n\n')
}
