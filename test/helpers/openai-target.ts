import * as fx from '../fixtures/openai/chat.js'
import { sleep, startUpstream, writeSse, type FakeUpstream } from './upstream.js'

/** How the fake answers one chat call. */
export interface Behaviour {
  /** An error status with the real API's error body (fixtures), instead of an answer. */
  status?: 400 | 401 | 429 | 500
  retryAfter?: string
  /** Wait before the headers. */
  delayMs?: number
  /** Wait for this before answering (a request held in flight). */
  hold?: Promise<unknown>
  /** Never answer. */
  hang?: boolean
  /** Stream the first content chunk, then drop the connection. */
  cutAfterFirstChunk?: boolean
}

export interface OpenAITarget extends FakeUpstream {
  name: string
  /** Chat calls seen, with the model and last user text of each. */
  calls: Array<{ model: string; prompt: string }>
  behave: (call: { model: string; prompt: string; n: number }) => Behaviour
}

/**
 * A fake OpenAI chat-completions service for routing tests. It answers
 * `<name>:<model>: <prompt>` in the real wire format (JSON, or SSE chunks
 * with include_usage's final usage chunk), so a test can tell which target
 * served a request; `behave` scripts failures, delays and held requests.
 */
export async function startOpenAITarget(name: string, behave: OpenAITarget['behave'] = () => ({})): Promise<OpenAITarget> {
  const calls: OpenAITarget['calls'] = []
  const target = (await startUpstream()) as OpenAITarget
  target.name = name
  target.calls = calls
  target.behave = behave
  target.handle(async (req, res) => {
    if (req.url.endsWith('/models')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
    const body = req.json()
    const last = [...body.messages].reverse().find((m: { role: string }) => m.role === 'user')
    const prompt = typeof last?.content === 'string' ? last.content : (last?.content ?? []).map((p: { text?: string }) => p.text ?? '').join('')
    const call = { model: body.model as string, prompt }
    calls.push(call)
    const b = target.behave({ ...call, n: calls.length })
    if (b.hang) return new Promise<void>((resolve) => res.on('close', () => resolve()))
    if (b.hold) await b.hold
    if (b.delayMs) await sleep(b.delayMs)
    if (res.destroyed) return
    if (b.status) {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (b.retryAfter) headers['retry-after'] = b.retryAfter
      return void res.writeHead(b.status, headers).end(JSON.stringify(fx.errors[b.status]))
    }
    const text = `${name}:${body.model}: ${prompt}`
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } }
    if (!body.stream) {
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ...fx.completionText, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }], usage }))
    }
    const base = { id: 'chatcmpl-123', object: 'chat.completion.chunk', created: 1694268190, model: body.model, system_fingerprint: 'fp_44709d6fcb' }
    const chunks: unknown[] = [
      { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null },
      { ...base, choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], usage: null },
    ]
    if (b.cutAfterFirstChunk) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`)
      await sleep(30)
      return void res.destroy()
    }
    chunks.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null }, { ...base, choices: [], usage })
    await writeSse(res, chunks)
  })
  return target
}

/** A provider entry for gateway.config.json pointing at a fake target. */
export function providerFor(t: OpenAITarget, id = t.name, models = ['m']): Record<string, unknown> {
  return { id, type: 'openai-compatible', baseURL: `${t.url}/v1`, apiKey: 'sk-test', models }
}
