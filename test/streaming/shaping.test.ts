import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { chatBody, contentOf, parseBlocks, streamWords, words } from './sse-client.js'

const JSON_HEADERS = { 'content-type': 'application/json' }

function contentChunks(text: string): string[] {
  return parseBlocks(text)
    .filter((b) => b.data?.startsWith('{'))
    .map((b) => JSON.parse(b.data!).choices?.[0]?.delta?.content)
    .filter((c): c is string => typeof c === 'string' && c !== '')
}

describe('coalescing tiny deltas', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  const full = words(40)
  beforeAll(async () => {
    up = await startUpstream((req, res) => streamWords(res, full, { delayMs: 3 }))
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }] })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('is off by default: one frame per upstream delta', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody() })
    expect(contentChunks(await res.text())).toEqual(full)
  })

  it('merges deltas within stream_options.coalesce_ms, sends the first token alone and at once, and keeps the text', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody({ stream_options: { coalesce_ms: 40 } }) })
    const chunks = contentChunks(await res.text())
    expect(chunks[0]).toBe('w0 ')
    expect(chunks.length).toBeLessThan(full.length / 2)
    expect(chunks.join('')).toBe(full.join(''))
  })

  it('takes the window from x-gateway-coalesce-ms, and the openai SDK reads the merged stream', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const final = await client.chat.completions
      .stream({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } }, { headers: { 'x-gateway-coalesce-ms': '30' } })
      .finalChatCompletion()
    expect(final.choices[0].message.content).toBe(full.join(''))
    expect(final.usage?.completion_tokens).toBe(5)
  })

  it('rejects a bad window before calling the model', async () => {
    const before = up.requests.length
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody({ stream_options: { coalesce_ms: 5000 } }) })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'stream_options.coalesce_ms' } })
    const hdr = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-gateway-coalesce-ms': 'soon' }, body: chatBody() })
    expect(hdr.status).toBe(400)
    expect(await hdr.json()).toMatchObject({ error: { param: 'x-gateway-coalesce-ms', code: 'invalid_value' } })
    expect(up.requests.length).toBe(before)
  })
})

describe('event filters', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ providers: [{ id: 'mock', type: 'mock' }] })
  })
  afterAll(async () => {
    await gw.close()
  })
  const post = (content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify({ model: 'mock/mock-1', stream: true, messages: [{ role: 'user', content }], ...extra }) })
  const deltas = (text: string) =>
    parseBlocks(text)
      .filter((b) => b.data?.startsWith('{'))
      .map((b) => JSON.parse(b.data!).choices[0]?.delta)

  it('drops thinking deltas with no-thinking', async () => {
    const all = deltas(await (await post('Hello there [[mock:thinking=pondering]]')).text())
    expect(all.some((d) => d?.reasoning_content)).toBe(true)
    const filtered = deltas(await (await post('Hello there [[mock:thinking=pondering]]', { stream_options: { events: ['no-thinking'] } })).text())
    expect(filtered.some((d) => d?.reasoning_content)).toBe(false)
    expect(filtered.map((d) => d?.content ?? '').join('').trim()).toBe('Hello there')
  })

  it('no-empty folds the role into the first real chunk, which the SDK still needs', async () => {
    const filtered = deltas(await (await post('Hello there', {}, { 'x-gateway-events': 'no-empty' })).text())
    expect(filtered[0]).toEqual({ role: 'assistant', content: 'Hello ' })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const final = await client.chat.completions.stream({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'Hello there' }] }, { headers: { 'x-gateway-events': 'no-empty' } }).finalChatCompletion()
    expect(final.choices[0].message).toMatchObject({ role: 'assistant', content: 'Hello there' })
  })

  it('text mode keeps only text: no thinking, no tool calls, no role-only chunk', async () => {
    const text = await (await post('[[mock:reply=Look]] [[mock:thinking=hmm]] [[mock:tool=get_weather {"city":"Paris"}]]', { stream_options: { events: 'text' } })).text()
    const ds = deltas(text)
    expect(ds.some((d) => d?.tool_calls || d?.reasoning_content)).toBe(false)
    expect(ds[0]).toMatchObject({ role: 'assistant' })
    expect(ds.map((d) => d?.content ?? '').join('').trim()).toBe('Look')
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const final = await client.chat.completions
      .stream({ model: 'mock/mock-1', messages: [{ role: 'user', content: '[[mock:reply=Look]] [[mock:tool=get_weather {"city":"Paris"}]]' }], stream_options: { events: 'text' } as never })
      .finalChatCompletion()
    expect(final.choices[0].message.tool_calls ?? []).toEqual([])
    expect(final.choices[0].message.content).toBe('Look')
  })

  it('rejects unknown filters with a 400 naming the field or header', async () => {
    const res = await post('hi', { stream_options: { events: ['no-everything'] } })
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ error: { message: expect.stringContaining('unknown event filter "no-everything"'), type: 'invalid_request_error', param: 'stream_options.events', code: 'invalid_value' } })
    const hdr = await post('hi', {}, { 'x-gateway-events': 'text,bogus' })
    expect(hdr.status).toBe(400)
    expect(await hdr.json()).toMatchObject({ error: { param: 'x-gateway-events' } })
  })
})

describe('server-timing', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  beforeAll(async () => {
    up = await startUpstream(async (req, res) => {
      await new Promise((r) => setTimeout(r, 120))
      if (req.json().stream) return streamWords(res, words(3))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }))
    })
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }] })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  const metric = (header: string | null, name: string) => Number(new RegExp(`(?:^|, )${name};dur=([\\d.]+)`).exec(header ?? '')?.[1])

  it('a complete answer: gateway overhead, queue wait, upstream time to first token and total', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody({ stream: false }) })
    const st = res.headers.get('server-timing')
    expect(st).toMatch(/^gateway;dur=[\d.]+, queue;dur=[\d.]+, ttfb;dur=[\d.]+, upstream;dur=[\d.]+$/)
    expect(metric(st, 'ttfb')).toBeGreaterThanOrEqual(100)
    expect(metric(st, 'upstream')).toBeGreaterThanOrEqual(metric(st, 'ttfb'))
    expect(metric(st, 'gateway')).toBeLessThan(100)
  })

  it('a stream: the same up to its first token', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody() })
    const st = res.headers.get('server-timing')
    await res.text()
    expect(st).toMatch(/^gateway;dur=[\d.]+, queue;dur=[\d.]+, ttfb;dur=[\d.]+$/)
    expect(metric(st, 'ttfb')).toBeGreaterThanOrEqual(100)
  })

  it('every other answer, errors included, says what the gateway took', async () => {
    for (const res of [await fetch(`${gw.baseURL}/models`), await fetch(`${gw.baseURL}/nope`), await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: '{' })]) {
      expect(res.headers.get('server-timing')).toMatch(/^gateway;dur=[\d.]+$/)
    }
  })
})
