import * as fx from '../fixtures/openai/chat.js'
import { sleep, startUpstream, type FakeUpstream } from './upstream.js'

/** How one answer drips: `n` content chunks `<word>-<i> `, `delayMs` apart. */
export interface Drip {
  n: number
  /** Default: the prompt (the last user message). */
  word?: string
  delayMs: number
}

export interface DripUpstream extends FakeUpstream {
  /** Content chunks written so far, for one prompt or in all: how far the upstream got. */
  chunksWritten(prompt?: string): number
  /**
   * True while the answer to `prompt` waits for its connection to drain: the
   * kernel buffers towards the reader (the gateway) are full, so it has
   * stopped taking bytes, at least for now.
   */
  blocked(prompt: string): boolean
}

/**
 * An OpenAI-compatible upstream streaming a chat answer chunk by chunk in the
 * real chunk shape (role chunk, content chunks, stop chunk, [DONE]), waiting
 * for the socket to drain when it is full; `/models` lists the fixture models.
 * Counts aborts (FakeUpstream.aborted), so tests see cancellation reach it.
 */
export async function dripUpstream(plan: (prompt: string) => Drip): Promise<DripUpstream> {
  let total = 0
  const perPrompt = new Map<string, number>()
  const waiting = new Set<string>()
  const up = await startUpstream(async (req, res) => {
    if (req.url.endsWith('/models')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
    const body = req.json()
    const prompt = String(body.messages.at(-1).content)
    const { n, word = prompt, delayMs } = plan(prompt)
    const base = { id: 'chatcmpl-drip', object: 'chat.completion.chunk', created: 1694268190, model: body.model, system_fingerprint: 'fp_44709d6fcb' }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })}\n\n`)
    for (let i = 0; i < n; i++) {
      if (res.destroyed) return
      const ok = res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: `${word}-${i} ` }, logprobs: null, finish_reason: null }] })}\n\n`)
      total++
      perPrompt.set(prompt, i + 1)
      if (!ok) {
        waiting.add(prompt)
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done).off('close', done)
            resolve()
          }
          res.on('drain', done).on('close', done)
        })
        waiting.delete(prompt)
      }
      if (delayMs) await sleep(delayMs)
    }
    res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  return Object.assign(up, { chunksWritten: (prompt?: string) => (prompt === undefined ? total : (perPrompt.get(prompt) ?? 0)), blocked: (prompt: string) => waiting.has(prompt) })
}

/** The text a drip of `n` chunks of `word` streams. */
export const dripText = (word: string, n: number) => Array.from({ length: n }, (_, i) => `${word}-${i} `).join('')
