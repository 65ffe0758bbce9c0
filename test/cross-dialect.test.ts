import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeAnthropic } from './helpers/fake-anthropic.js'
import { startFakeOpenAI } from './helpers/fake-openai.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import type { FakeUpstream } from './helpers/upstream.js'

/**
 * Any dialect over any provider: an Anthropic client over an OpenAI-compatible
 * upstream, and OpenAI clients (chat and Responses) over the anthropic
 * provider, see the same content, tool calls and usage the upstream sent.
 */
let oai: FakeUpstream
let ant: Awaited<ReturnType<typeof startFakeAnthropic>>
let gw: RunningGateway
beforeAll(async () => {
  oai = await startFakeOpenAI()
  ant = await startFakeAnthropic()
  gw = await startGateway({
    providers: [
      { id: 'oai', type: 'openai-compatible', baseURL: `${oai.url}/v1` },
      { id: 'claude', type: 'anthropic', baseURL: ant.url, apiKey: 'sk-ant' },
      { id: 'claude2', type: 'anthropic', baseURL: ant.url, apiKey: 'sk-ant' },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
  await oai?.close()
  await ant?.close()
})

const anthropic = () => new Anthropic({ baseURL: gw.url, apiKey: 'x', maxRetries: 0 })
const openai = () => new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
const weather = { name: 'get_weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }

describe('Anthropic client over an OpenAI-compatible upstream', () => {
  it('text and usage (10 in, 5 out), streaming and not', async () => {
    const m = await anthropic().messages.create({ model: 'oai/gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
    expect(m.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    expect(m.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 })
    const s = await anthropic().messages.stream({ model: 'oai/gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage()
    expect(s.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    expect(s.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 })
  })

  it('tool call with arguments and usage (82/17)', async () => {
    const s = await anthropic().messages.stream({ model: 'oai/gpt-4o-mini', max_tokens: 50, tools: [weather], messages: [{ role: 'user', content: 'weather?' }] }).finalMessage()
    expect(s.stop_reason).toBe('tool_use')
    expect(s.content).toEqual([{ type: 'tool_use', id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', input: { city: 'Paris' } }])
    expect(s.usage).toMatchObject({ input_tokens: 82, output_tokens: 17 })
  })
})

describe('OpenAI clients over the anthropic provider', () => {
  it('chat completions: text and usage (10/5)', async () => {
    ant.arrange('text')
    const c = await openai().chat.completions.create({ model: 'claude/claude-sonnet-4-5-20250929', messages: [{ role: 'user', content: 'hi' }] })
    expect(c.choices[0].message.content).toBe('Hello, world!')
    expect(c.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 })
  })

  it('chat completions stream: text then a tool call in one message, usage 472/89', async () => {
    ant.arrange('tool_call')
    const s = openai().chat.completions.stream({ model: 'claude/claude-sonnet-4-5-20250929', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather.input_schema } }], stream_options: { include_usage: true } })
    const final = await s.finalChatCompletion()
    expect(final.choices).toHaveLength(1)
    expect(final.choices[0].message.content).toBe('Okay, let me check.')
    expect(final.choices[0].message.tool_calls).toEqual([{ id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }])
    expect(final.choices[0].finish_reason).toBe('tool_calls')
    expect(final.usage).toMatchObject({ prompt_tokens: 472, completion_tokens: 89 })
  })

  it('Responses: text + function call items and usage, same as the upstream sent', async () => {
    ant.arrange('tool_call')
    const r = await openai().responses.stream({ model: 'claude/claude-sonnet-4-5-20250929', input: 'weather?', tools: [{ type: 'function', name: 'get_weather', parameters: weather.input_schema, strict: false }] }).finalResponse()
    expect(r.output.map((o) => o.type)).toEqual(['message', 'function_call'])
    expect(r.output_text).toBe('Okay, let me check.')
    expect(r.output[1]).toMatchObject({ name: 'get_weather', call_id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', arguments: '{"city": "Paris"}' })
    expect(r.usage).toMatchObject({ input_tokens: 472, output_tokens: 89 })
  })
})

describe('Anthropic client over the anthropic provider', () => {
  it('message_start carries the upstream input count and cache counters; thinking signatures go back only to their provider', async () => {
    ant.arrange('thinking')
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude/claude-sonnet-4-5-20250929', max_tokens: 4000, stream: true, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: [{ role: 'user', content: '27 * 453?' }] }) })
    const text = await res.text()
    const start = JSON.parse(text.split('\n').find((l) => l.startsWith('data: {"type":"message_start"'))!.slice(6))
    expect(start.message.usage).toMatchObject({ input_tokens: 12, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000 })
    // count_tokens was not called: the upstream's own count came first.
    expect(ant.requests.filter((r) => r.url === '/v1/messages/count_tokens')).toHaveLength(0)

    ant.arrange('thinking')
    const first = await anthropic().messages.stream({ model: 'claude/claude-sonnet-4-5-20250929', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: [{ role: 'user', content: '27 * 453?' }] }).finalMessage()
    const thinking = first.content[0] as { type: string; signature: string }
    expect(thinking.type).toBe('thinking')
    const history = [
      { role: 'user' as const, content: '27 * 453?' },
      { role: 'assistant' as const, content: first.content },
      { role: 'user' as const, content: 'And times 2?' },
    ]
    ant.arrange('text')
    await anthropic().messages.create({ model: 'claude/claude-sonnet-4-5-20250929', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: history })
    expect(ant.last().json().messages[1].content[0]).toEqual({ type: 'thinking', thinking: expect.stringContaining('step by step'), signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds' })
    await anthropic().messages.create({ model: 'claude2/claude-sonnet-4-5-20250929', max_tokens: 4000, messages: history })
    expect(ant.last().json().messages[1].content).toEqual([{ type: 'text', text: '27 * 453 = 12,231' }])
  })
})
