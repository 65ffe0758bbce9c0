import { describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatEvent, ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { anthropicProvider } from '../../src/providers/anthropic/index.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import { startFakeAnthropic, type AnthropicScenario } from '../helpers/fake-anthropic.js'
import { providerContract, type Scenario } from '../provider-contract.js'

function harness(client: 'undici' | 'fetch') {
  return async () => {
    const up = await startFakeAnthropic()
    let abortedBefore = 0
    return {
      provider: anthropicProvider({ id: 'claude', baseURL: up.url, apiKey: 'sk-ant-test' }, client === 'undici' ? undiciClient() : fetchClient()),
      model: 'claude-sonnet-4-5-20250929',
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        up.arrange(s === 'image' ? 'text' : (s as AnthropicScenario))
        abortedBefore = up.aborted
      },
      sawImage() {
        const parts = up.last().json().messages[0].content
        return parts.some((p: any) => p.type === 'image' && p.source.type === 'base64' && p.source.media_type === 'image/png' && p.source.data.length > 10)
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      teardown: () => up.close(),
    }
  }
}

providerContract('anthropic (undici)', harness('undici'))
providerContract('anthropic (fetch)', harness('fetch'))

const ctx = () => ({ signal: new AbortController().signal, requestId: 'r', meta: {} })

async function collect(s: ReadableStream<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = []
  for await (const e of s as unknown as AsyncIterable<ChatEvent>) out.push(e)
  return out
}

describe('anthropic provider specifics', () => {
  it('sends x-api-key, anthropic-version, betas, system blocks with cache_control, tool results, and maps cache usage', async () => {
    const up = await startFakeAnthropic()
    up.arrange('thinking')
    const p = anthropicProvider({ id: 'claude', baseURL: `${up.url}/v1`, apiKey: 'sk-ant-1', betas: ['prompt-caching-2024-07-31'] }, undiciClient())
    const req: ChatRequest = {
      model: 'claude-sonnet-4-5-20250929',
      stream: true,
      maxTokens: 2048,
      stop: ['END'],
      thinking: { type: 'enabled', budgetTokens: 1024 },
      toolChoice: 'required',
      parallelToolCalls: false,
      tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, cacheControl: { type: 'ephemeral' } }],
      metadata: { user_id: 'user-1' },
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You are terse.', cacheControl: { type: 'ephemeral', ttl: '1h' } }] },
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
        { role: 'assistant', content: [{ type: 'tool_call', id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', content: [{ type: 'tool_result', callId: 'toolu_1', isError: true, content: [{ type: 'text', text: 'timeout' }], cacheControl: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'Try again' }] },
      ],
    }
    const events = await collect(p.chat(req, ctx()))
    const sent = up.last()
    expect(sent.url).toBe('/v1/messages')
    expect(sent.headers['x-api-key']).toBe('sk-ant-1')
    expect(sent.headers['anthropic-version']).toBe('2023-06-01')
    expect(sent.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31')
    expect(sent.json()).toEqual({
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 2048,
      stream: true,
      stop_sequences: ['END'],
      system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'timeout' }], is_error: true, cache_control: { type: 'ephemeral' } },
            { type: 'text', text: 'Try again' },
          ],
        },
      ],
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-1' },
      // The last assistant turn called a tool without (own) thinking: thinking is left off rather than rejected upstream.
    })
    const result = await aggregate(new ReadableStream({ start: (c) => (events.forEach((e) => c.enqueue(e)), c.close()) }))
    expect(result.content[0]).toMatchObject({ type: 'thinking', text: expect.stringContaining('step by step'), signature: expect.stringMatching(/^gw1:claude:EqQB/) })
    expect(result.content[1]).toEqual({ type: 'text', text: '27 * 453 = 12,231' })
    // input_tokens 12 + cache writes 100 + cache reads 2000 is the whole prompt.
    expect(result.usage).toMatchObject({ inputTokens: 2112, outputTokens: 40, cacheReadTokens: 2000, cacheWriteTokens: 100 })
    await up.close()
  })

  it('sends its own thinking signatures back and drops foreign ones', async () => {
    const up = await startFakeAnthropic()
    const p = anthropicProvider({ id: 'claude', baseURL: up.url, apiKey: 'k' }, undiciClient())
    const turn = (provider: string | undefined): ChatRequest => ({
      model: 'm',
      stream: false,
      thinking: { type: 'enabled', budgetTokens: 2000 },
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Q' }] },
        { role: 'assistant', content: [{ type: 'thinking', text: 'hmm', signature: 'SIG', provider }, { type: 'tool_call', id: 't1', name: 'f', arguments: '{}' }] },
        { role: 'tool', content: [{ type: 'tool_result', callId: 't1', content: [{ type: 'text', text: 'ok' }] }] },
      ],
    })
    await aggregate(p.chat(turn('claude'), ctx()))
    let body = up.last().json()
    expect(body.messages[1].content[0]).toEqual({ type: 'thinking', thinking: 'hmm', signature: 'SIG' })
    expect(body.thinking).toEqual({ type: 'enabled', budget_tokens: 2000 })
    await aggregate(p.chat(turn('other-provider'), ctx()))
    body = up.last().json()
    expect(body.messages[1].content).toEqual([{ type: 'tool_use', id: 't1', name: 'f', input: {} }])
    expect(body.thinking).toBeUndefined()
    await up.close()
  })

  it('fails mid-stream with the upstream error type (overloaded → retryable 529)', async () => {
    const up = await startFakeAnthropic()
    up.arrange('overloaded_mid_stream')
    const p = anthropicProvider({ id: 'claude', baseURL: up.url, apiKey: 'k' }, undiciClient())
    await expect(collect(p.chat({ model: 'm', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }, ctx()))).rejects.toMatchObject({ kind: 'overloaded', status: 529, retryable: true })
    up.arrange('error_529')
    await expect(collect(p.chat({ model: 'm', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }, ctx()))).rejects.toMatchObject({ kind: 'overloaded', retryable: true })
    await up.close()
  })

  it('counts tokens with count_tokens (prompt only) and lists models', async () => {
    const up = await startFakeAnthropic()
    const p = anthropicProvider({ id: 'claude', baseURL: up.url, apiKey: 'k' }, undiciClient())
    const n = await p.countTokens!({ model: 'claude-sonnet-4-5-20250929', stream: false, maxTokens: 10, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, ctx())
    expect(n).toBe(2095)
    const sent = up.last().json()
    expect(sent).toEqual({ model: 'claude-sonnet-4-5-20250929', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })
    const models = await p.models()
    expect(models.map((m) => m.id)).toEqual(['claude-sonnet-4-5-20250929', 'claude-haiku-4-5-20251001'])
    expect(models[0].name).toBe('Claude Sonnet 4.5')
    await up.close()
  })
})
