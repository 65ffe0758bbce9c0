import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as fx from './fixtures/openai/chat.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { assertOpenAISchema } from './helpers/openai-spec.js'
import { sleep, startUpstream, writeSse, type FakeUpstream } from './helpers/upstream.js'

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

/** Reads an SSE body into its data payloads, as a plain HTTP client sees them (id:, retry: and comment lines aside). */
async function sseData(res: Response): Promise<string[]> {
  const text = await res.text()
  return text
    .split('\n\n')
    .map((e) => e.split('\n').find((l) => l.startsWith('data: '))?.slice(6))
    .filter((d): d is string => d !== undefined)
}

describe('OpenAI chat completions over the mock provider, with the official client', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['sk-gw-test'] }, providers: [{ id: 'mock', type: 'mock' }] })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw-test', maxRetries: 0 })
  })
  afterAll(() => gw.close())

  it('lists models and retrieves one by any accepted name', async () => {
    const list = await client.models.list()
    // `auto` (routing picks a model by the request) is listed with the providers' models.
    expect(list.data.map((m) => m.id)).toEqual(['mock/mock-1', 'mock/mock-2', 'auto'])
    for (const m of list.data) assertOpenAISchema('Model', m)
    const one = await client.models.retrieve('mock/mock-1')
    expect(one).toMatchObject({ id: 'mock/mock-1', object: 'model', owned_by: 'mock' })
    expect((await client.models.retrieve('mock-2')).id).toBe('mock-2')
  })

  it('answers 404 in OpenAI shape for an unknown model id', async () => {
    const err = await client.models.retrieve('no-such-model').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'model_not_found', param: 'model' })
  })

  it('answers a plain chat completion that matches OpenAI’s schema', async () => {
    const res = await client.chat.completions.create({
      model: 'mock/mock-1',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'developer', content: 'Really terse.' },
        { role: 'user', content: [{ type: 'text', text: 'Hello gateway' }] },
      ],
      temperature: 0,
      top_p: 1,
      seed: 7,
      user: 'u1',
    })
    assertOpenAISchema('CreateChatCompletionResponse', res)
    expect(res.object).toBe('chat.completion')
    expect(res.model).toBe('mock/mock-1')
    expect(res.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Hello gateway' } })
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens)
    expect(res._request_id).toMatch(/^req_/)
  })

  it('streams chunks that the SDK helper assembles, with a final usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock-1',
      messages: [{ role: 'user', content: 'one two three four' }],
      stream: true,
      stream_options: { include_usage: true },
    })
    const chunks: OpenAI.ChatCompletionChunk[] = []
    for await (const chunk of stream) chunks.push(chunk)
    for (const c of chunks) assertOpenAISchema('CreateChatCompletionStreamResponse', c)
    expect(chunks[0].choices[0].delta.role).toBe('assistant')
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('one two three four')
    const last = chunks[chunks.length - 1]
    expect(last.choices).toEqual([])
    expect(last.usage!.completion_tokens).toBeGreaterThan(0)
    expect(chunks[chunks.length - 2].choices[0].finish_reason).toBe('stop')
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1)

    const helper = client.chat.completions.stream({ model: 'mock-1', messages: [{ role: 'user', content: 'stream helper' }] })
    const final = await helper.finalChatCompletion()
    expect(final.choices[0].message.content).toBe('stream helper')
  })

  it('returns tool calls, streamed as index/id/arguments deltas, and takes the result back', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ]
    const first = await client.chat.completions.create({ model: 'mock-1', messages: [{ role: 'user', content: 'Paris' }], tools, tool_choice: 'required' })
    assertOpenAISchema('CreateChatCompletionResponse', first)
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall
    expect(first.choices[0].finish_reason).toBe('tool_calls')
    expect(call.function.name).toBe('get_weather')
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' })

    const streamed = client.chat.completions.stream({
      model: 'mock-1',
      messages: [{ role: 'user', content: 'Paris' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    })
    const final = await streamed.finalChatCompletion()
    const sCall = final.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall
    expect(JSON.parse(sCall.function.arguments)).toEqual({ city: 'Paris' })
    expect(final.choices[0].finish_reason).toBe('tool_calls')

    const answer = await client.chat.completions.create({
      model: 'mock-1',
      tools,
      messages: [
        { role: 'user', content: 'Paris' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: 'sunny, 21C' },
      ],
    })
    expect(answer.choices[0].message.content).toBe('Tool result: sunny, 21C')
    expect(answer.choices[0].finish_reason).toBe('stop')
  })

  it('maps max_tokens to finish_reason length and stop sequences to stop', async () => {
    const long = await client.chat.completions.create({ model: 'mock-1', max_completion_tokens: 2, messages: [{ role: 'user', content: 'a fairly long sentence that will not fit in two tokens' }] })
    expect(long.choices[0].finish_reason).toBe('length')
    expect(long.choices[0].message.content!.length).toBeLessThanOrEqual(8)
    const stopped = await client.chat.completions.create({ model: 'mock-1', stop: ['STOP'], messages: [{ role: 'user', content: 'before STOP after' }] })
    expect(stopped.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'before ' } })
  })

  it('accepts data: URL images and refuses remote image URLs unless enabled', async () => {
    const ok = await client.chat.completions.create({
      model: 'mock-1',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'describe' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
    })
    expect(ok.choices[0].message.content).toBe('describe')
    const err = await client.chat.completions
      .create({ model: 'mock-1', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] })
      .catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error.param).toBe('messages[0].content[0].image_url.url')
  })

  it('refuses n > 1 with a clear 400', async () => {
    const err = await client.chat.completions.create({ model: 'mock-1', n: 2, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error).toMatchObject({ param: 'n', code: 'unsupported_value' })
  })

  it('serves legacy text completions as text_completion objects and chunks', async () => {
    const res = await client.completions.create({ model: 'mock-1', prompt: 'Once upon a time' })
    assertOpenAISchema('CreateCompletionResponse', res)
    expect(res).toMatchObject({ object: 'text_completion', choices: [{ text: 'Once upon a time', index: 0, finish_reason: 'stop' }] })
    const stream = await client.completions.create({ model: 'mock-1', prompt: 'the end', stream: true, echo: true })
    const texts: string[] = []
    for await (const chunk of stream) {
      // The spec has no schema of its own for legacy stream chunks: they are CreateCompletionResponse with finish_reason null until the end.
      assertOpenAISchema('CreateCompletionResponse', { ...chunk, choices: chunk.choices.map((c) => ({ ...c, finish_reason: c.finish_reason ?? 'stop' })) })
      expect(chunk.object).toBe('text_completion')
      texts.push(chunk.choices[0]?.text ?? '')
    }
    expect(texts.join('')).toBe('the endthe end')
  })

  it('reports mid-stream failures in-band so the SDK throws', async () => {
    const stream = await client.chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'a b c d e [[mock:fail_after=2]]' }] })
    const seen: string[] = []
    const err = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '')
    })().catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.APIError)
    expect(err.message).toContain('failed mid-stream')
    expect(seen.join('')).toBe('a b ')
  })

  it('surfaces upstream failures before the first byte as HTTP errors with Retry-After', async () => {
    const err = await client.chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: '[[mock:error=rate_limit]]' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.headers.get('retry-after')).toBe('7')
  })

  it('requires the API key (Bearer or x-api-key), and leaves health and docs public', async () => {
    const bad = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-wrong', maxRetries: 0 })
    const err = await bad.models.list().catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(err.error).toMatchObject({ code: 'invalid_api_key', param: null })
    const viaHeader = await fetch(`${gw.baseURL}/models`, { headers: { 'x-api-key': 'sk-gw-test' } })
    expect(viaHeader.status).toBe(200)
    expect((await fetch(`${gw.url}/health`)).status).toBe(200)
    expect((await fetch(`${gw.url}/openapi.json`)).status).toBe(200)
  })

  it('puts x-request-id on every answer, keeping a sane client-sent one', async () => {
    const res = await fetch(`${gw.baseURL}/models`, { headers: { authorization: 'Bearer sk-gw-test', 'x-request-id': 'my-trace-1' } })
    expect(res.headers.get('x-request-id')).toBe('my-trace-1')
    const err = await fetch(`${gw.baseURL}/nope`, { headers: { authorization: 'Bearer sk-gw-test' } })
    expect(err.status).toBe(404)
    expect(err.headers.get('x-request-id')).toMatch(/^req_/)
  })
})

describe('OpenAI chat over an openai-compatible upstream (exact wire format)', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    up = await startUpstream()
    // No reconnect grace: a client that goes away cancels the upstream call at once (the default keeps it briefly for resume).
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, apiKey: 'sk-upstream' }], streaming: { reconnectGraceSec: 0 } })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('relays a recorded text stream chunk for chunk, and aggregates it without streaming', async () => {
    up.handle((req, res) => {
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
      return req.json().stream ? writeSse(res, fx.streamText) : void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.completionText))
    })
    const stream = await client.chat.completions.create({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } })
    const chunks: OpenAI.ChatCompletionChunk[] = []
    for await (const c of stream) chunks.push(c)
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello, world!')
    expect(chunks[chunks.length - 1].usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 })
    expect(up.requests[up.requests.length - 1].headers.authorization).toBe('Bearer sk-upstream')

    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    assertOpenAISchema('CreateChatCompletionResponse', res)
    expect(res.choices[0].message.content).toBe('Hello, world!')
    expect(res.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 })
  })

  it('relays recorded tool-call deltas so the SDK rebuilds the call', async () => {
    up.handle((_req, res) => writeSse(res, fx.streamToolCall))
    const final = await client.chat.completions
      .stream({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] })
      .finalChatCompletion()
    const call = final.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall
    expect(call).toMatchObject({ id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } })
    expect(final.choices[0].finish_reason).toBe('tool_calls')
  })

  it('passes response_format, tools and parameters to the upstream', async () => {
    up.handle((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.completionText)))
    await client.chat.completions.create({
      model: 'up/gpt-4o-mini',
      messages: [{ role: 'user', content: 'json please' }],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
      parallel_tool_calls: false,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      max_tokens: 100,
      temperature: 0.2,
    })
    expect(up.requests[up.requests.length - 1].json()).toMatchObject({
      model: 'gpt-4o-mini',
      response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true } },
      parallel_tool_calls: false,
      tool_choice: 'auto',
      max_tokens: 100,
      temperature: 0.2,
    })
  })

  it('maps upstream 4xx/5xx to precise errors', async () => {
    for (const [status, expected] of [
      [400, OpenAI.BadRequestError],
      [401, OpenAI.InternalServerError],
      [429, OpenAI.RateLimitError],
      [500, OpenAI.InternalServerError],
    ] as const) {
      up.handle((_req, res) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(fx.errors[status])))
      const err = await client.chat.completions.create({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
      expect(err, `status ${status}`).toBeInstanceOf(expected)
      assertOpenAISchema('ErrorResponse', err.error ? { error: err.error } : {})
      if (status === 401) {
        expect(err.status).toBe(502)
        expect(err.error.message).toContain('Provider "up" answered 401')
      }
    }
  })

  it('answers 503 naming the provider when the upstream refuses connections', async () => {
    const dead = await startUpstream()
    const url = dead.url
    await dead.close()
    const g = await startGateway({ providers: [{ id: 'dead', type: 'openai-compatible', baseURL: url, models: ['m'] }] })
    const c = new OpenAI({ baseURL: g.baseURL, apiKey: 'x', maxRetries: 0 })
    const err = await c.chat.completions.create({ model: 'dead/m', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(err.status).toBe(503)
    expect(err.error).toMatchObject({ code: 'provider_unreachable' })
    expect(err.error.message).toContain('"dead"')
    await g.close()
  })

  it('aborts the upstream call when the client disconnects mid-stream', async () => {
    up.handle((_req, res) => writeSse(res, Array.from({ length: 500 }, (_, i) => ({ ...fx.streamText[1], choices: [{ index: 0, delta: { content: `t${i} ` }, finish_reason: null }] })), { delayMs: 10 }))
    const before = up.aborted
    const ac = new AbortController()
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'go' }] }),
      signal: ac.signal,
    })
    const reader = res.body!.getReader()
    await reader.read()
    await reader.read()
    ac.abort()
    await expect.poll(() => up.aborted, { timeout: 5000 }).toBeGreaterThan(before)
    await sleep(50)
    // The gateway is still healthy afterwards.
    expect((await fetch(`${gw.url}/health`)).status).toBe(200)
  })

  it('writes plain SSE framing: data lines, blank-line separated, ending in [DONE]', async () => {
    up.handle((_req, res) => writeSse(res, fx.streamText))
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'go' }] }),
    })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const data = await sseData(res)
    expect(data[data.length - 1]).toBe('[DONE]')
    for (const d of data.slice(0, -1)) assertOpenAISchema('CreateChatCompletionStreamResponse', JSON.parse(d))
  })
})
