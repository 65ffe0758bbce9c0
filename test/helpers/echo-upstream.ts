import { startUpstream, writeSse, type FakeUpstream } from './upstream.js'

export interface EchoUpstream extends FakeUpstream {
  /** Chat completion calls seen (model listings excluded). */
  calls(): number
  /** Changes every later answer, so a refreshed entry can be told from the old one. */
  version: number
  /** Delay before the first byte of each answer, in ms. */
  delayMs: number
  /** Delay between streamed chunks, in ms. */
  chunkDelayMs: number
}

/**
 * An OpenAI-compatible upstream whose answer depends only on the prompt: it
 * answers `Echo v<version>: <last user text>`, streamed in word chunks with
 * the exact chunk and usage shapes of the real API (test/fixtures/openai),
 * and a tool call when the prompt asks for one ("call get_weather").
 */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  let calls = 0
  const state = { version: 1, delayMs: 0, chunkDelayMs: 0 }
  const up = await startUpstream(async (req, res) => {
    if (req.url.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 1721172741, owned_by: 'system' }] }))
      return
    }
    calls++
    const body = req.json()
    const last = [...body.messages].reverse().find((m: { role: string }) => m.role === 'user')
    const prompt = typeof last?.content === 'string' ? last.content : (last?.content ?? []).map((p: { text?: string }) => p.text ?? '').join('')
    const text = `Echo v${state.version}: ${prompt}`
    const promptTokens = 10 + prompt.length
    const completionTokens = text.split(' ').length
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } }
    const tool = prompt.includes('call get_weather')
    if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs))
    const base = { id: `chatcmpl-${calls}`, object: 'chat.completion.chunk', created: 1694268190, model: body.model, system_fingerprint: 'fp_44709d6fcb' }
    if (!body.stream) {
      const message = tool
        ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }], refusal: null }
        : { role: 'assistant', content: text, refusal: null, annotations: [] }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ id: `chatcmpl-${calls}`, object: 'chat.completion', created: 1741569952, model: body.model, choices: [{ index: 0, message, logprobs: null, finish_reason: tool ? 'tool_calls' : 'stop' }], usage, service_tier: 'default', system_fingerprint: 'fp_44709d6fcb' }),
      )
      return
    }
    const chunks: unknown[] = [{ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null }]
    if (tool) {
      chunks.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, logprobs: null, finish_reason: null }], usage: null })
      for (const frag of ['{"', 'city', '":"', 'Paris', '"}']) chunks.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: frag } }] }, logprobs: null, finish_reason: null }], usage: null })
    } else {
      for (const word of text.split(/(?<= )/)) chunks.push({ ...base, choices: [{ index: 0, delta: { content: word }, logprobs: null, finish_reason: null }], usage: null })
    }
    chunks.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: tool ? 'tool_calls' : 'stop' }], usage: null })
    chunks.push({ ...base, choices: [], usage })
    await writeSse(res, chunks, { delayMs: state.chunkDelayMs })
  })
  // Accessors, not copies: tests change version and delay while the server runs.
  return Object.defineProperties(up, {
    calls: { value: () => calls },
    version: { get: () => state.version, set: (v: number) => void (state.version = v) },
    delayMs: { get: () => state.delayMs, set: (v: number) => void (state.delayMs = v) },
    chunkDelayMs: { get: () => state.chunkDelayMs, set: (v: number) => void (state.chunkDelayMs = v) },
  }) as EchoUpstream
}
