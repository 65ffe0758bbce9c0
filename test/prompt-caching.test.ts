import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as fx from './fixtures/openai/chat.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { startUpstream, writeSse, type FakeUpstream } from './helpers/upstream.js'

/**
 * Prompt caching on an OpenAI-compatible backend: the hint (`prompt_cache_key`)
 * goes upstream, Anthropic `cache_control` markers are accepted but not sent
 * to a backend that has no such field, and the backend's cached-token count
 * comes back in each dialect's own usage field.
 */
const CACHED = 1920
const usage = { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, prompt_tokens_details: { cached_tokens: CACHED, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } }

let up: FakeUpstream
let gw: RunningGateway

beforeAll(async () => {
  up = await startUpstream(async (req, res) => {
    const body = req.json()
    if (body.stream) {
      const chunks: unknown[] = [...fx.streamText.slice(0, -1), { ...fx.streamText[fx.streamText.length - 1], usage }]
      return writeSse(res, chunks)
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...fx.completionText, usage }))
  })
  gw = await startGateway({
    providers: [{ id: 'openai', type: 'openai-compatible', baseURL: `${up.url}/v1`, apiKey: 'sk-upstream' }],
    cache: { enabled: true },
  })
})
afterAll(async () => {
  await gw.close()
  await up.close()
})

const longSystem = 'You are a meticulous assistant. '.repeat(200)

describe('prompt caching on an OpenAI-compatible backend', () => {
  it('passes prompt_cache_key upstream and reports cached_tokens (plain and streamed)', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'none', maxRetries: 0 })
    const body = { model: 'openai/gpt-4o-mini', prompt_cache_key: 'tenant-42-docs', messages: [{ role: 'system' as const, content: longSystem }, { role: 'user' as const, content: 'hi' }] }
    const plain = await client.chat.completions.create(body)
    expect(up.requests.at(-1)!.json().prompt_cache_key).toBe('tenant-42-docs')
    expect(plain.usage?.prompt_tokens_details?.cached_tokens).toBe(CACHED)
    expect(plain.usage?.prompt_tokens).toBe(2006)

    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })
    let last: OpenAI.CompletionUsage | undefined
    for await (const chunk of stream) if (chunk.usage) last = chunk.usage
    expect(up.requests.at(-1)!.json().prompt_cache_key).toBe('tenant-42-docs')
    expect(last?.prompt_tokens_details?.cached_tokens).toBe(CACHED)
  })

  it('accepts Anthropic cache_control breakpoints, sends none to the OpenAI wire, and reports cache_read_input_tokens', async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: 'none', maxRetries: 0 })
    const msg = await client.messages.create({
      model: 'openai/gpt-4o-mini',
      max_tokens: 300,
      system: [{ type: 'text', text: longSystem, cache_control: { type: 'ephemeral' } }],
      tools: [{ name: 'lookup', description: 'Look a word up', input_schema: { type: 'object', properties: { word: { type: 'string' } } }, cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral', ttl: '1h' } }] }],
    })
    const sent = up.requests.at(-1)!.body
    expect(sent).not.toContain('cache_control')
    expect(sent).toContain('You are a meticulous assistant.')
    expect(msg.usage.cache_read_input_tokens).toBe(CACHED)
  })

  it('treats prompt-cache hints as hints: requests that differ only in them share one response-cache entry', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'none', maxRetries: 0 })
    const before = up.requests.length
    const ask = (key: string) =>
      client.chat.completions
        .create({ model: 'openai/gpt-4o-mini', temperature: 0, prompt_cache_key: key, messages: [{ role: 'user', content: 'same question' }] })
        .withResponse()
    const a = await ask('key-a')
    const b = await ask('key-b')
    expect(a.response.headers.get('x-gateway-cache')).toBe('miss')
    expect(b.response.headers.get('x-gateway-cache')).toBe('hit')
    expect(up.requests.length - before).toBe(1)
  })
})
