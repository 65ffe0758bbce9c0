import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import type { FakeUpstream } from './helpers/upstream.js'

const KEY = 'gw-key'
const weather = { type: 'function' as const, name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }

let upstream: FakeUpstream
let gw: RunningGateway
beforeAll(async () => {
  upstream = await startFakeOpenAI()
  gw = await startGateway({
    server: { apiKeys: [KEY] },
    providers: [
      { id: 'mock', type: 'mock' },
      { id: 'oai', type: 'openai-compatible', baseURL: `${upstream.url}/v1`, apiKey: 'sk-up' },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

const client = () => new OpenAI({ baseURL: gw.baseURL, apiKey: KEY, maxRetries: 0 })

async function rawEvents(body: unknown): Promise<Array<{ event: string; data: any }>> {
  const res = await fetch(`${gw.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) })
  expect(res.status).toBe(200)
  const out: Array<{ event: string; data: any }> = []
  for (const block of (await res.text()).split('\n\n')) {
    const lines = block.split('\n')
    const event = lines.find((l) => l.startsWith('event: '))?.slice(7)
    const data = lines.find((l) => l.startsWith('data: '))?.slice(6)
    if (data) out.push({ event: event!, data: JSON.parse(data) })
  }
  return out
}

describe.each([
  { provider: 'mock', model: 'mock-1', say: 'Say [[mock:reply=Hello, world!]]', call: 'get_weather Paris', args: { city: 'get_weather Paris' } },
  { provider: 'openai-compatible', model: 'oai/gpt-4o-mini', say: 'Say hello', call: 'Weather in Paris?', args: { city: 'Paris' } },
])('the openai Responses client over $provider', ({ model, say, call, args }) => {
  it('responses.create: a completed response with output_text, usage and store false', async () => {
    const r = await client().responses.create({ model, input: say, instructions: 'Be brief.', store: false })
    expect(r).toMatchObject({ object: 'response', status: 'completed', model, store: false, previous_response_id: null, instructions: 'Be brief.' })
    expect(r.id).toMatch(/^resp_/)
    expect(r.output_text).toBe('Hello, world!')
    expect(r.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello, world!', annotations: [] }] })
    expect(r.usage!.input_tokens).toBeGreaterThan(0)
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + r.usage!.output_tokens)
  })

  it('responses.stream: deltas and finalResponse()', async () => {
    const stream = client().responses.stream({ model, input: [{ role: 'user', content: say }] })
    let text = ''
    stream.on('response.output_text.delta', (e) => (text += e.delta))
    const final = await stream.finalResponse()
    expect(text).toBe('Hello, world!')
    expect(final.output_text).toBe('Hello, world!')
    expect(final.status).toBe('completed')
  })

  it('function calling round trip, replaying the gateway’s own items (Codex style)', async () => {
    const first = await client().responses.create({ model, input: [{ type: 'message', role: 'developer', content: 'You are a helpful agent.' }, { role: 'user', content: call }], tools: [weather] })
    const fc = first.output.find((o) => o.type === 'function_call')!
    expect(fc).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' })
    expect(fc.id).toMatch(/^fc_/)
    expect(JSON.parse((fc as { arguments: string }).arguments)).toEqual(args)
    const second = client().responses.stream({
      model,
      store: false,
      tools: [weather],
      input: [
        { type: 'message', role: 'developer', content: 'You are a helpful agent.' },
        { role: 'user', content: call },
        ...(first.output as never[]),
        { type: 'function_call_output', call_id: (fc as { call_id: string }).call_id, output: 'Sunny, 21°C' },
      ],
    })
    const final = await second.finalResponse()
    expect(final.output.some((o) => o.type === 'message')).toBe(true)
    expect(final.output_text.length).toBeGreaterThan(0)
  })
})

describe('Responses wire details', () => {
  it('streams response.created first, every event with event: and a rising sequence_number, then response.completed', async () => {
    const events = await rawEvents({ model: 'mock-1', stream: true, input: 'one two three', tools: [weather] })
    expect(events[0].event).toBe('response.created')
    expect(events[0].data.response).toMatchObject({ status: 'in_progress', output: [] })
    events.forEach((e, i) => {
      expect(e.data.type).toBe(e.event)
      expect(e.data.sequence_number).toBe(i)
    })
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ])
    expect(events[7].data.text).toBe('one two three')
    expect(events[10].data.response.output[0].content[0].text).toBe('one two three')
  })

  it('streams text and function calls of one turn as consecutive output items', async () => {
    const events = await rawEvents({ model: 'mock-1', stream: true, input: 'x [[mock:reply=Checking.]] [[mock:tool=get_weather {"city":"Paris"}]]', tools: [weather] })
    const added = events.filter((e) => e.event === 'response.output_item.added').map((e) => [e.data.output_index, e.data.item.type])
    expect(added).toEqual([
      [0, 'message'],
      [1, 'function_call'],
    ])
    const args = events.filter((e) => e.event === 'response.function_call_arguments.delta').map((e) => e.data.delta).join('')
    expect(JSON.parse(args)).toEqual({ city: 'Paris' })
    expect(events.find((e) => e.event === 'response.function_call_arguments.done')!.data.arguments).toBe('{"city":"Paris"}')
    const done = events[events.length - 1].data.response
    expect(done.output.map((o: any) => o.type)).toEqual(['message', 'function_call'])
  })

  it('accepts what Codex sends: namespace tools (flattened, mapped back), web_search ignored, reasoning/include/prompt_cache_key/client_metadata, replayed output_text with annotations and logprobs', async () => {
    const r = await client().responses.create({
      model: 'mock-1',
      input: [
        { type: 'message', id: 'msg_dev1', role: 'developer', content: [{ type: 'input_text', text: 'You are Codex.' }] } as never,
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'earlier' }] },
        { type: 'message', id: 'msg_prev', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Earlier answer', annotations: [], logprobs: [] }] } as never,
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' } as never,
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'now [[mock:tool=crm__lookup {"q":"acme"}]]' }] },
      ],
      tools: [weather, { type: 'namespace', name: 'crm', description: 'CRM tools', tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }] } as never, { type: 'web_search' } as never],
      reasoning: { effort: 'medium', summary: 'auto' },
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'session-1',
      store: false,
      ...({ client_metadata: { originator: 'codex_cli_rs' } } as object),
    })
    const fc = r.output.find((o) => o.type === 'function_call') as unknown as { name: string; namespace: string; arguments: string }
    expect(fc).toMatchObject({ name: 'lookup', namespace: 'crm', arguments: '{"q":"acme"}' })
  })

  it('previous_response_id is a clear 400: no conversation state is kept', async () => {
    const err = await client().responses.create({ model: 'mock-1', input: 'hi', previous_response_id: 'resp_123' }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.param).toBe('previous_response_id')
    expect(err.message).toMatch(/keeps no conversation state/)
  })

  it('honours max_output_tokens (incomplete), temperature and text.format json_schema reaching the provider', async () => {
    const cut = await client().responses.create({ model: 'mock-1', input: 'a rather long sentence that cannot fit', max_output_tokens: 2 })
    expect(cut.status).toBe('incomplete')
    expect(cut.incomplete_details).toEqual({ reason: 'max_output_tokens' })
    const before = upstream.requests.length
    await client().responses.create({ model: 'oai/gpt-4o-mini', input: 'json please', temperature: 0.2, text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } } })
    expect(upstream.requests[before].json()).toMatchObject({ temperature: 0.2, response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object' } } } })
  })

  it('reports a failure mid-stream as an error event then response.failed', async () => {
    const events = await rawEvents({ model: 'mock-1', stream: true, input: 'one two three four [[mock:fail_after=2]]' })
    const types = events.map((e) => e.event)
    expect(types.slice(-2)).toEqual(['error', 'response.failed'])
    expect(events[events.length - 2].data).toMatchObject({ type: 'error', message: expect.stringContaining('mid-stream') })
    expect(events[events.length - 1].data.response).toMatchObject({ status: 'failed', error: { message: expect.stringContaining('mid-stream') } })
    await expect(client().responses.stream({ model: 'mock-1', input: 'one two three four [[mock:fail_after=2]]' }).finalResponse()).rejects.toBeTruthy()
  })
})
