import Anthropic from '@anthropic-ai/sdk'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import type { FakeUpstream } from './helpers/upstream.js'

const KEY = 'gw-key'
const weatherTool = { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } }

/** Reads an SSE body into [event line, parsed data] pairs, failing on a frame without `event:`. */
async function sseEvents(res: Response): Promise<Array<{ event: string; data: any }>> {
  const text = await res.text()
  const out: Array<{ event: string; data: any }> = []
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l && !l.startsWith(':') && !l.startsWith('id:') && !l.startsWith('retry:'))
    if (!lines.length) continue
    const event = lines.find((l) => l.startsWith('event: '))?.slice(7)
    const data = lines.find((l) => l.startsWith('data: '))?.slice(6)
    if (!event) throw new Error(`frame without event: line: ${block}`)
    out.push({ event, data: JSON.parse(data!) })
  }
  return out
}

function post(gw: RunningGateway, body: unknown, headers: Record<string, string> = {}, path = '/v1/messages') {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
}

let upstream: FakeUpstream
let gw: RunningGateway
beforeAll(async () => {
  upstream = await startFakeOpenAI()
  gw = await startGateway({
    server: { apiKeys: [KEY] },
    providers: [
      { id: 'mock', type: 'mock', models: ['mock-1', 'claude-sonnet-4.5', 'claude-haiku-4.5'] },
      { id: 'oai', type: 'openai-compatible', baseURL: `${upstream.url}/v1`, apiKey: 'sk-up' },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

const client = () => new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 })

describe.each([
  // The mock calls a tool named in the user's text, filling string arguments with that text.
  { provider: 'mock', model: 'mock-1', say: 'Say [[mock:reply=Hello, world!]]', call: 'get_weather Paris', input: { city: 'get_weather Paris' } },
  { provider: 'openai-compatible', model: 'oai/gpt-4o-mini', say: 'Say hello', call: 'Weather in Paris?', input: { city: 'Paris' } },
])('the Anthropic SDK over $provider', ({ model, say, call, input }) => {
  it('messages.create: a message object with the asked model, msg_ id, end_turn and usage', async () => {
    const res = await client().messages.create({ model, max_tokens: 16000, messages: [{ role: 'user', content: say }] })
    expect(res).toMatchObject({ type: 'message', role: 'assistant', model, stop_reason: 'end_turn', stop_sequence: null, content: [{ type: 'text', text: 'Hello, world!' }] })
    expect(res.id).toMatch(/^msg_/)
    expect(res.usage.input_tokens).toBeGreaterThan(0)
    expect(res.usage.output_tokens).toBeGreaterThan(0)
    expect(res._request_id).toBeTruthy()
  })

  it('messages.stream: text events and finalMessage()', async () => {
    const stream = client().messages.stream({ model, max_tokens: 100, messages: [{ role: 'user', content: say }] })
    let text = ''
    stream.on('text', (t) => (text += t))
    const final = await stream.finalMessage()
    expect(text).toBe('Hello, world!')
    expect(final.content).toEqual([{ type: 'text', text: 'Hello, world!', citations: undefined }].map(({ citations, ...b }) => b))
    expect(final.stop_reason).toBe('end_turn')
    expect(final.usage.output_tokens).toBeGreaterThan(0)
  })

  it('tool use round trip: tool_use with parsed input, then the tool_result answered', async () => {
    const first = await client().messages.create({ model, max_tokens: 100, tools: [weatherTool], messages: [{ role: 'user', content: call }] })
    expect(first.stop_reason).toBe('tool_use')
    const use = first.content.find((b) => b.type === 'tool_use')!
    expect(use).toMatchObject({ type: 'tool_use', name: 'get_weather', input })
    const second = client().messages.stream({
      model,
      max_tokens: 100,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: call },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: (use as { id: string }).id, content: 'Sunny, 21°C' }] },
      ],
    })
    const final = await second.finalMessage()
    expect(final.stop_reason).toBe('end_turn')
    expect(final.content[0].type).toBe('text')
  })

  it('streams a tool call as a tool_use block with input_json_delta', async () => {
    const stream = client().messages.stream({ model, max_tokens: 100, tools: [weatherTool], messages: [{ role: 'user', content: call }] })
    const deltas: string[] = []
    stream.on('inputJson', (partial) => deltas.push(partial))
    const final = await stream.finalMessage()
    expect(deltas.length).toBeGreaterThan(0)
    expect(final.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'get_weather', input })
    expect(final.stop_reason).toBe('tool_use')
  })

  it('count_tokens answers {input_tokens}, and message_start carries the same count', async () => {
    const params = { model, messages: [{ role: 'user' as const, content: 'How many tokens is this sentence, roughly?' }], system: 'Be brief.' }
    const counted = await client().messages.countTokens(params)
    expect(counted.input_tokens).toBeGreaterThan(5)
    const events = await sseEvents(await post(gw, { ...params, max_tokens: 50, stream: true }))
    if (model === 'mock-1') expect(events[0].data.message.usage.input_tokens).toBe(counted.input_tokens)
    else expect(events[0].data.message.usage.input_tokens).toBeGreaterThan(0)
  })
})

describe('Anthropic wire details (CLIENTS.md §2–3)', () => {
  it('streams the exact event sequence, each with its event: line, ping after message_start, usage in message_delta', async () => {
    const res = await post(gw, { model: 'mock-1', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Hi there [[mock:thinking=Let me think]]' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    expect(res.headers.get('request-id')).toBeTruthy()
    const events = await sseEvents(res)
    for (const e of events) expect(e.data.type).toBe(e.event)
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ])
    expect(events[0].data.message).toMatchObject({ type: 'message', role: 'assistant', model: 'mock-1', content: [], stop_reason: null })
    expect(events[0].data.message.id).toMatch(/^msg_/)
    expect(events[2].data.content_block).toEqual({ type: 'thinking', thinking: '', signature: '' })
    expect(events[3].data.delta).toEqual({ type: 'thinking_delta', thinking: 'Let me think' })
    expect(events[4].data.delta.type).toBe('signature_delta')
    expect(events[6].data).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } })
    expect(events[10].data.delta).toEqual({ stop_reason: 'end_turn', stop_sequence: null })
    expect(events[10].data.usage.output_tokens).toBeGreaterThan(0)
  })

  it('accepts both auth styles, any anthropic-version or none, anthropic-beta and ?beta=true', async () => {
    const body = { model: 'mock-1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }
    const variants: Array<Record<string, string>> = [
      { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
      { 'x-api-key': '', authorization: `Bearer ${KEY}`, 'anthropic-version': '2026-10-21' },
      { 'anthropic-version': '' },
      { 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,some-future-beta' },
    ]
    for (const headers of variants) {
      const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== ''))
      const res = await fetch(`${gw.url}/v1/messages?beta=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...('authorization' in clean || 'x-api-key' in clean ? {} : { 'x-api-key': KEY }), ...clean },
        body: JSON.stringify(body),
      })
      expect(res.status, JSON.stringify(headers)).toBe(200)
      expect((await res.json()).type).toBe('message')
    }
    // The 0.x SDK style: x-api-key and ?beta=true on client.beta.
    const old = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 })
    const beta = await old.beta.messages.create({ model: 'mock-1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], betas: ['context-management-2025-06-27'] })
    expect(beta.content[0]).toMatchObject({ type: 'text', text: 'hi' })
  })

  it('ignores unknown top-level fields and Claude Code extras: role "system" in messages, adaptive thinking, output_config, context_management, metadata.user_id', async () => {
    const res = await post(gw, {
      model: 'mock-1',
      max_tokens: 32000,
      messages: [
        { role: 'system', content: 'From the middle' },
        { role: 'user', content: 'Go [[mock:system]]' },
      ],
      thinking: { type: 'adaptive' },
      output_config: { effort: 'high' },
      context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
      metadata: { user_id: JSON.stringify({ device_id: 'd', session_id: 's' }) },
      a_field_from_the_future: { x: 1 },
      service_tier: 'auto',
    })
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body.content[0].text).toContain('[system: From the middle]')
  })

  it('passes the text and tool calls of one turn back as one message (JSON and stream)', async () => {
    const content = 'Check [[mock:reply=Let me check.]] [[mock:tool=get_weather {"city":"Paris"}]] [[mock:tool=get_weather {"city":"Rome"}]]'
    const json = await client().messages.create({ model: 'mock-1', max_tokens: 100, tools: [weatherTool], messages: [{ role: 'user', content }] })
    expect(json.content.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use'])
    const streamed = await client().messages.stream({ model: 'mock-1', max_tokens: 100, tools: [weatherTool], messages: [{ role: 'user', content }] }).finalMessage()
    expect(streamed.content.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use'])
    expect(streamed.content.slice(1).map((b) => (b as { input: unknown }).input)).toEqual([{ city: 'Paris' }, { city: 'Rome' }])
  })

  it('maps tool_choice, stop_sequences and max_tokens to stop reasons', async () => {
    const forced = await client().messages.create({ model: 'mock-1', max_tokens: 100, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'anything' }] })
    expect(forced.stop_reason).toBe('tool_use')
    const stopped = await client().messages.create({ model: 'mock-1', max_tokens: 100, stop_sequences: ['STOP'], messages: [{ role: 'user', content: 'one two STOP three' }] })
    expect(stopped).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'STOP', content: [{ type: 'text', text: 'one two ' }] })
    const cut = await client().messages.create({ model: 'mock-1', max_tokens: 2, messages: [{ role: 'user', content: 'a rather long sentence that will not fit in two tokens' }] })
    expect(cut.stop_reason).toBe('max_tokens')
  })

  it('surfaces errors as the SDK typed errors, with Anthropic error types and request ids', async () => {
    const c = client()
    const cases: Array<[string, unknown, string, number]> = [
      ['[[mock:error=rate_limit]]', Anthropic.RateLimitError, 'rate_limit_error', 429],
      ['[[mock:error=overloaded]]', Anthropic.InternalServerError, 'overloaded_error', 529],
      ['[[mock:error=upstream]]', Anthropic.InternalServerError, 'api_error', 502],
      ['[[mock:error=invalid_request]]', Anthropic.BadRequestError, 'invalid_request_error', 400],
    ]
    for (const [directive, cls, type, status] of cases) {
      const err = await c.messages.create({ model: 'mock-1', max_tokens: 10, messages: [{ role: 'user', content: `x ${directive}` }] }).catch((e) => e)
      expect(err, directive).toBeInstanceOf(cls as never)
      expect(err.status).toBe(status)
      expect(err.error).toMatchObject({ type: 'error', error: { type } })
      expect(err.requestID).toBeTruthy()
    }
    const notFound = await c.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(notFound).toBeInstanceOf(Anthropic.NotFoundError)
    expect(notFound.error.error.type).toBe('not_found_error')
    const auth = await new Anthropic({ baseURL: gw.url, apiKey: 'wrong', maxRetries: 0 }).messages.create({ model: 'mock-1', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(auth).toBeInstanceOf(Anthropic.AuthenticationError)
    expect(auth.error.error.type).toBe('authentication_error')
  })

  it('reports a failure mid-stream as event: error, which the SDK throws', async () => {
    const res = await post(gw, { model: 'mock-1', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'one two three four five [[mock:fail_after=2]]' }] })
    const events = await sseEvents(res)
    const last = events[events.length - 1]
    expect(last).toEqual({ event: 'error', data: { type: 'error', error: { type: 'api_error', message: expect.stringContaining('mid-stream') } } })
    const stream = client().messages.stream({ model: 'mock-1', max_tokens: 100, messages: [{ role: 'user', content: 'one two three four five [[mock:fail_after=2]]' }] })
    await expect(stream.finalMessage()).rejects.toMatchObject({ type: 'api_error' })
  })

  it('maps a dated Claude id to the closest model served, echoing the asked name', async () => {
    const res = await client().messages.create({ model: 'claude-sonnet-4-5-20250929', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    expect(res.model).toBe('claude-sonnet-4-5-20250929')
    const r2 = await post(gw, { model: 'claude-haiku-4-5-20251001', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    expect(r2.headers.get('x-gateway-model')).toBe('mock/claude-haiku-4.5')
    expect((await r2.json()).model).toBe('claude-haiku-4-5-20251001')
  })

  it('answers HEAD / (Claude Code probes it without a key)', async () => {
    const res = await fetch(`${gw.url}/`, { method: 'HEAD' })
    expect(res.status).toBe(200)
  })
})

describe('a Claude Code request replayed from a fixture', () => {
  const body = JSON.parse(readFileSync(new URL('./fixtures/claude-code/messages-request.json', import.meta.url), 'utf8'))
  const headers = JSON.parse(readFileSync(new URL('./fixtures/claude-code/headers.json', import.meta.url), 'utf8'))

  it.each([
    ['mock', 'mock/claude-sonnet-4.5'],
    ['openai-compatible', 'oai/gpt-4o-mini'],
    ['a dated id', 'claude-sonnet-4-5-20250929'],
  ])('streams over %s: system blocks with cache_control, 22 tools in JSON Schema 2020-12, tool_result with is_error', async (_name, model) => {
    const res = await fetch(`${gw.url}/v1/messages?beta=true`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ ...body, model }) })
    expect(res.status).toBe(200)
    const events = await sseEvents(res)
    expect(events[0].event).toBe('message_start')
    expect(events[0].data.message.model).toBe(model)
    expect(events[0].data.message.usage.input_tokens).toBeGreaterThan(500)
    expect(events[events.length - 1].event).toBe('message_stop')
    const delta = events.find((e) => e.event === 'message_delta')!
    expect(delta.data.usage.output_tokens).toBeGreaterThan(0)
  })

  it('reaches the openai-compatible upstream with the tools, the error result and the system prompt', async () => {
    const before = upstream.requests.length
    const res = await post(gw, { ...body, model: 'oai/gpt-4o-mini', stream: false })
    expect(res.status).toBe(200)
    const sent = upstream.requests[before].json()
    expect(sent.tools).toHaveLength(22)
    expect(sent.tools[0].function.parameters.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(sent.messages[0]).toMatchObject({ role: 'system', content: expect.stringContaining('You are Claude Code') })
    expect(sent.messages.find((m: any) => m.role === 'tool' && m.tool_call_id === 'toolu_01VBxq3jzrgPpQ3WZDeYqYHv').content).toContain('Missing script')
    expect(sent.max_tokens).toBe(32000)
  })
})

describe('count_tokens', () => {
  it('counts the system prompt, tools and messages, and 404s an unknown model', async () => {
    const c = client()
    const small = await c.messages.countTokens({ model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] })
    const big = await c.messages.countTokens({ model: 'mock-1', system: 'A long system prompt '.repeat(50), tools: [weatherTool], messages: [{ role: 'user', content: 'hi' }] })
    expect(big.input_tokens).toBeGreaterThan(small.input_tokens + 200)
    const err = await c.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(Anthropic.NotFoundError)
  })
})
