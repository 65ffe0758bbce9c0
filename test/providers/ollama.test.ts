import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { ollamaProvider } from '../../src/providers/ollama/index.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import * as fx from '../fixtures/ollama/api.js'
import { sleep, startUpstream, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { providerContract, type Scenario } from '../provider-contract.js'

/** Writes lines the way Ollama streams: application/x-ndjson, one JSON object per line. */
async function writeNdjson(res: ServerResponse, lines: unknown[], delayMs = 0): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  for (const l of lines) {
    if (res.destroyed) return
    res.write(`${JSON.stringify(l)}\n`)
    if (delayMs) await sleep(delayMs)
  }
  res.end()
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(value))
}

const ctx = (signal = new AbortController().signal) => ({ signal, requestId: 'req_test', meta: {} })
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: 'llama3.2', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text }] }], ...extra })

function harness(client: 'undici' | 'fetch') {
  return async () => {
    const up: FakeUpstream = await startUpstream()
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    up.handle(async (req, res) => {
      if (req.method === 'GET' && req.url === '/api/tags') return json(res, 200, fx.tags)
      if (req.url !== '/api/chat') return json(res, 404, { error: '404 page not found' })
      const body = req.json()
      switch (scenario) {
        case 'error_500':
          return json(res, 500, fx.errors.runnerDied)
        case 'error_401':
          return json(res, 401, fx.errors.unauthorized)
        case 'error_429':
          return json(res, 429, fx.errors.rateLimited, { 'retry-after': '7' })
        case 'error_400':
          return json(res, 400, fx.errors.noTools)
        case 'tool_call':
          return body.stream ? writeNdjson(res, fx.streamToolCall) : json(res, 200, fx.completionToolCall)
        case 'slow':
          return writeNdjson(res, Array.from({ length: 200 }, (_, i) => ({ ...fx.streamText[0], message: { role: 'assistant', content: `w${i} ` } })), 20)
        default:
          return body.stream ? writeNdjson(res, fx.streamText) : json(res, 200, fx.completionText)
      }
    })
    return {
      provider: ollamaProvider({ id: 'ollama', baseURL: up.url }, client === 'undici' ? undiciClient() : fetchClient()),
      model: 'llama3.2',
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const last = up.requests[up.requests.length - 1].json()
        return Array.isArray(last.messages[0].images) && last.messages[0].images[0] === 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      teardown: () => up.close(),
    }
  }
}

providerContract('ollama (undici)', harness('undici'))
providerContract('ollama (fetch)', harness('fetch'))

describe('ollama specifics', () => {
  let up: FakeUpstream
  let reply: (req: RecordedRequest, res: ServerResponse) => void | Promise<void>
  beforeAll(async () => {
    up = await startUpstream((req, res) => reply(req, res))
  })
  afterAll(() => up.close())
  const provider = (extra: Record<string, unknown> = {}) => ollamaProvider({ id: 'ollama', baseURL: up.url, ...extra }, undiciClient())
  const lastBody = () => up.requests[up.requests.length - 1].json()

  it('lists /api/tags under the names people type (":latest" dropped)', async () => {
    reply = (_req, res) => json(res, 200, fx.tags)
    const models = await provider().models()
    expect(models.map((m) => m.id)).toEqual(['llama3.2', 'nomic-embed-text:v1.5'])
    expect(models[0]).toMatchObject({ name: 'llama3.2:latest', ownedBy: 'ollama', created: 1746889608 })
  })

  it('sends messages, tools, images and sampling options in Ollama\'s native shape', async () => {
    reply = (_req, res) => writeNdjson(res, fx.streamText)
    await aggregate(
      provider().chat(
        {
          model: 'llama3.2',
          stream: true,
          messages: [
            { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
            { role: 'user', content: [{ type: 'text', text: 'Weather?' }, { type: 'image', mimeType: 'image/png', data: 'AAAA' }] },
            { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
            { role: 'tool', content: [{ type: 'tool_result', callId: 'call_1', content: [{ type: 'text', text: '18°C' }] }] },
          ],
          tools: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
          maxTokens: 50,
          temperature: 0.2,
          topP: 0.9,
          topK: 40,
          seed: 7,
          stop: ['END'],
          responseFormat: { type: 'json_object' },
        },
        ctx(),
      ),
    )
    const sent = up.requests[up.requests.length - 1]
    expect(sent.url).toBe('/api/chat')
    expect(sent.json()).toEqual({
      model: 'llama3.2',
      stream: true,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather?', images: ['AAAA'] },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: '18°C', tool_name: 'get_weather' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      options: { num_predict: 50, temperature: 0.2, top_p: 0.9, top_k: 40, seed: 7, stop: ['END'] },
      format: 'json',
    })
  })

  it('passes keep_alive and options from the provider config, overridden per request by providerOptions', async () => {
    reply = (_req, res) => writeNdjson(res, fx.streamText)
    const p = provider({ keepAlive: '10m', options: { num_ctx: 8192, temperature: 0.5 } })
    await aggregate(p.chat(ask('hi', { temperature: 0.1 }), ctx()))
    expect(lastBody()).toMatchObject({ keep_alive: '10m', options: { num_ctx: 8192, temperature: 0.1 } })
    await aggregate(p.chat(ask('hi', { providerOptions: { keep_alive: -1, options: { num_ctx: 32768 }, think: false } }), ctx()))
    expect(lastBody()).toMatchObject({ keep_alive: -1, think: false, options: { num_ctx: 32768, temperature: 0.5 } })
  })

  it('sends a JSON schema as format and thinking as think, and reads thinking deltas back', async () => {
    reply = (_req, res) =>
      writeNdjson(res, [
        { model: 'qwen3', created_at: '2025-06-01T00:00:00Z', message: { role: 'assistant', content: '', thinking: 'Let me see.' }, done: false },
        ...fx.streamText,
      ])
    const schema = { type: 'object', properties: { a: { type: 'string' } } }
    const r = await aggregate(provider().chat(ask('hi', { responseFormat: { type: 'json_schema', name: 'x', schema }, thinking: { type: 'enabled' } }), ctx()))
    expect(lastBody()).toMatchObject({ format: schema, think: true })
    expect(r.content).toEqual([
      { type: 'thinking', text: 'Let me see.' },
      { type: 'text', text: 'Hello, world!' },
    ])
  })

  it('maps done_reason length, and usage from prompt_eval_count / eval_count', async () => {
    reply = (_req, res) => json(res, 200, fx.completionLength)
    const r = await aggregate(provider().chat(ask('hi', { stream: false }), ctx()))
    expect(r.finishReason).toBe('length')
    expect(r.usage).toEqual({ inputTokens: 10, outputTokens: 5 })
    expect(lastBody().stream).toBe(false)
  })

  it('gives tool calls an id and JSON arguments, and finish tool_calls although done_reason is stop', async () => {
    reply = (_req, res) => json(res, 200, fx.completionToolCall)
    const r = await aggregate(provider().chat(ask('weather', { stream: false }), ctx()))
    expect(r.finishReason).toBe('tool_calls')
    expect(r.content[0]).toMatchObject({ type: 'tool_call', name: 'get_weather', arguments: '{"city":"Paris"}', id: expect.stringMatching(/^call_/) })
  })

  it('refuses a linked image with a clear 400 (the gateway media stage downloads links before any provider sees them)', async () => {
    const before = up.requests.length
    const req: ChatRequest = { model: 'llama3.2', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', mimeType: 'image/png', url: `${up.url}/cat.png` }] }] }
    const err = await aggregate(provider().chat(req, ctx())).catch((e: unknown) => e)
    expect(err).toMatchObject({ kind: 'invalid_request', status: 400, code: 'invalid_image_url' })
    expect((err as Error).message).toContain('inline only')
    expect(up.requests.length).toBe(before)
  })

  it('refuses audio and broken tool arguments with a clear 400 before calling Ollama', async () => {
    const before = up.requests.length
    const cases: ChatRequest[] = [
      { model: 'llama3.2', stream: true, messages: [{ role: 'user', content: [{ type: 'audio', mimeType: 'audio/wav', data: 'AAAA' }] }] },
      { model: 'llama3.2', stream: true, messages: [{ role: 'assistant', content: [{ type: 'tool_call', id: 'c', name: 'f', arguments: '[1,2' }] }] },
    ]
    for (const req of cases) {
      await expect(aggregate(provider().chat(req, ctx()))).rejects.toMatchObject({ kind: 'invalid_request', status: 400 })
    }
    expect(up.requests.length).toBe(before)
  })

  it('embeds through /api/embed with keep_alive, options and dimensions, usage from prompt_eval_count', async () => {
    reply = (_req, res) => json(res, 200, fx.embed)
    const p = provider({ keepAlive: '1h', options: { num_ctx: 512 } })
    const r = await p.embed!({ model: 'all-minilm', input: ['Why is the sky blue?', 'Why is the grass green?'], dimensions: 10 }, ctx())
    expect(up.requests[up.requests.length - 1].url).toBe('/api/embed')
    expect(lastBody()).toEqual({ model: 'all-minilm', input: ['Why is the sky blue?', 'Why is the grass green?'], dimensions: 10, keep_alive: '1h', options: { num_ctx: 512 } })
    expect(r.embeddings).toEqual(fx.embed.embeddings)
    expect(r.usage).toEqual({ inputTokens: 8 })
  })

  it('splits embeddings into embedBatchSize batches and keeps the order', async () => {
    const seen: number[] = []
    reply = async (req, res) => {
      const input: string[] = req.json().input
      seen.push(input.length)
      await sleep(input[0] === 'text 0' ? 30 : 0) // the first batch answers last
      json(res, 200, { model: 'all-minilm', embeddings: input.map((t) => [Number(t.slice(5))]), prompt_eval_count: input.length })
    }
    const input = Array.from({ length: 10 }, (_, i) => `text ${i}`)
    const r = await provider({ embedBatchSize: 4, embedConcurrency: 3 }).embed!({ model: 'all-minilm', input }, ctx())
    expect(seen.sort()).toEqual([2, 4, 4])
    expect(r.embeddings).toEqual(input.map((_, i) => [i]))
    expect(r.usage).toEqual({ inputTokens: 10 })
  })

  it('reports a model that is not pulled as 404 naming `ollama pull`, for chat and embeddings', async () => {
    for (const body of [fx.errors.notPulled, fx.errors.notFoundNew]) {
      reply = (_req, res) => json(res, 404, body)
      const err = (await aggregate(provider().chat(ask('hi'), ctx())).catch((e) => e)) as GatewayError
      expect(err).toBeInstanceOf(GatewayError)
      expect(err).toMatchObject({ kind: 'not_found', status: 404, code: 'model_not_found', param: 'model', retryable: false })
      expect(err.message).toContain('`ollama pull llama3.2`')
    }
    const err = (await provider().embed!({ model: 'nomic-embed-text', input: ['x'] }, ctx()).catch((e) => e)) as GatewayError
    expect(err.message).toContain('`ollama pull nomic-embed-text`')
  })

  it('fails a stream that reports an error line, or ends without its done line', async () => {
    reply = (_req, res) => writeNdjson(res, [fx.streamText[0], fx.errors.midStream])
    await expect(aggregate(provider().chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('unexpected EOF') })
    reply = (_req, res) => writeNdjson(res, [fx.streamText[0]])
    await expect(aggregate(provider().chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('without its final line') })
    reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.end('{"model":"llama3.2","message":{"content":"Hel\n')
    }
    await expect(aggregate(provider().chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('not JSON') })
  })

  it('maps every error status to the right kind (error table)', async () => {
    const table: Array<[number, unknown, Partial<GatewayError>, Record<string, string>?]> = [
      [400, fx.errors.noTools, { kind: 'invalid_request', status: 400, retryable: false }],
      [401, fx.errors.unauthorized, { kind: 'auth', status: 502, retryable: false, code: 'provider_auth_error' }],
      [403, { error: 'forbidden' }, { kind: 'permission', status: 502, retryable: false }],
      [404, fx.errors.notPulled, { kind: 'not_found', status: 404, retryable: false, code: 'model_not_found' }],
      [429, fx.errors.rateLimited, { kind: 'rate_limit', status: 429, retryable: true, retryAfter: 7 }, { 'retry-after': '7' }],
      [500, fx.errors.runnerDied, { kind: 'upstream', status: 502, retryable: true }],
      [503, fx.errors.busy, { kind: 'unavailable', status: 503, retryable: true }],
    ]
    for (const [status, body, expected, headers] of table) {
      reply = (_req, res) => json(res, status, body, headers)
      const err = await aggregate(provider().chat(ask('hi'), ctx())).catch((e) => e)
      expect(err, `status ${status}`).toMatchObject(expected)
      expect(err.message).toContain('"ollama"')
    }
  })

  it('reports health from /api/version', async () => {
    reply = (req, res) => (req.url === '/api/version' ? json(res, 200, { version: '0.12.6' }) : json(res, 404, {}))
    expect(await provider().health!()).toEqual({ ok: true, detail: 'ollama 0.12.6' })
  })
})
