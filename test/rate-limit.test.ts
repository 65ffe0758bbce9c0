import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { estimateRequestTokens } from '../src/core/tokens.js'
import { keyId } from '../src/middleware/auth.js'
import { duration } from '../src/routes/limit-headers.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { providerFor, startOpenAITarget, type OpenAITarget } from './helpers/openai-target.js'

let open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.map((o) => o.close()))
  open = []
})

async function setup(config: Record<string, unknown>, clock?: { t: number }): Promise<{ gw: RunningGateway; up: OpenAITarget; client: (key?: string) => OpenAI }> {
  const up = await startOpenAITarget('a')
  const gw = await startGateway({ providers: [providerFor(up)], ...config }, clock ? { now: () => clock.t } : {})
  open.push(gw, up)
  return { gw, up, client: (key = 'unused') => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 }) }
}

const hi = (client: OpenAI, extra: Record<string, unknown> = {}) => client.chat.completions.create({ model: 'a/m', messages: [{ role: 'user', content: 'hi' }], ...extra }).withResponse()
const HI_TOKENS = estimateRequestTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })

describe('requests per minute', () => {
  it('lets exactly the limit through, then 429 with Retry-After and x-ratelimit-* headers, until the bucket refills', async () => {
    const clock = { t: 1_000_000 }
    const { up, client } = await setup({ limits: { models: { 'a/m': { rpm: 3 } } } }, clock)
    const c = client()
    const seen: Array<[string | null, string | null]> = []
    for (let i = 0; i < 3; i++) {
      const { response } = await hi(c)
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('3')
      seen.push([response.headers.get('x-ratelimit-remaining-requests'), response.headers.get('x-ratelimit-reset-requests')])
    }
    expect(seen).toEqual([
      ['2', '20s'],
      ['1', '40s'],
      ['0', '1m0s'],
    ])

    const err = await hi(c).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.code).toBe('rate_limit_exceeded')
    expect(err.type).toBe('rate_limit_error')
    expect(err.message).toContain('model a/m: 3 requests per minute')
    expect(err.headers.get('retry-after')).toBe('20')
    expect(err.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(err.headers.get('x-ratelimit-reset-requests')).toBe('1m0s')
    expect(err.headers.get('x-should-retry')).toBe('true')
    expect(up.calls).toHaveLength(3)

    // One token refills every 20 s: 1 ms short is still too early.
    clock.t += 19_999
    const early = await hi(c).catch((e) => e)
    expect(early.status).toBe(429)
    expect(early.headers.get('retry-after')).toBe('1')
    clock.t += 1
    const { response } = await hi(c)
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(up.calls).toHaveLength(4)
  })

  it('limits a provider across its models, and a streaming request is refused with a real 429 before any byte', async () => {
    const clock = { t: 0 }
    const up = await startOpenAITarget('a')
    const gw = await startGateway({ providers: [providerFor(up, 'a', ['m', 'n'])], limits: { providers: { a: { rpm: 2 } } } }, { now: () => clock.t })
    open.push(gw, up)
    const c = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    await c.chat.completions.create({ model: 'a/m', messages: [{ role: 'user', content: 'hi' }] })
    await c.chat.completions.create({ model: 'a/n', messages: [{ role: 'user', content: 'hi' }] })
    const err = await c.chat.completions.create({ model: 'a/n', messages: [{ role: 'user', content: 'hi' }], stream: true }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.message).toContain('provider a: 2 requests per minute')
    expect(err.headers.get('retry-after')).toBe('30')
  })
})

describe('tokens per minute', () => {
  it('counts the prompt estimate plus max_tokens up front and corrects it with the real usage afterwards, exact at the boundary', async () => {
    const clock = { t: 0 }
    const { up, client } = await setup({ limits: { models: { 'a/m': { tpm: 100 } } } }, clock)
    const c = client()
    const est = (max: number) => HI_TOKENS + max
    // The fake reports 15 tokens used (10 in, 5 out) for every answer.
    const a = await hi(c, { max_tokens: 40 })
    expect(a.response.headers.get('x-ratelimit-limit-tokens')).toBe('100')
    expect(a.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(100 - est(40)))
    const b = await hi(c, { max_tokens: 40 })
    expect(b.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(100 - 15 - est(40)))
    // 70 left: a request estimated at exactly 70 passes …
    const exact = await hi(c, { max_tokens: 70 - HI_TOKENS })
    expect(exact.response.headers.get('x-ratelimit-remaining-tokens')).toBe('0')
    // … after which 55 are left (70 − 15 used): 56 is one too many, 55 fits.
    const over = await hi(c, { max_tokens: 56 - HI_TOKENS }).catch((e) => e)
    expect(over).toBeInstanceOf(OpenAI.RateLimitError)
    expect(over.message).toContain('100 tokens per minute')
    expect(over.headers.get('retry-after')).toBe('1')
    expect(over.headers.get('x-ratelimit-remaining-tokens')).toBe('55')
    await hi(c, { max_tokens: 55 - HI_TOKENS })
    expect(up.calls).toHaveLength(4)
  })

  it('a request larger than the whole per-minute budget is refused as not retryable', async () => {
    const { up, client } = await setup({ limits: { models: { 'a/m': { tpm: 100 } } } })
    const err = await hi(client(), { max_tokens: 200 }).catch((e) => e)
    expect(err.status).toBe(429)
    expect(err.message).toMatch(/Request too large for model a\/m: about \d+ tokens/)
    expect(err.headers.get('x-should-retry')).toBe('false')
    expect(err.headers.get('retry-after')).toBeNull()
    expect(up.calls).toHaveLength(0)
  })
})

describe('per API key', () => {
  it('limits each key on its own, by key or key id, with a default for the others; Anthropic clients get their own error shape', async () => {
    const clock = { t: 0 }
    const k2id = await keyId('k2')
    const gw = await startGateway(
      { server: { apiKeys: ['k1', 'k2', 'k3'] }, providers: [{ id: 'mock', type: 'mock' }], limits: { keys: { k1: { rpm: 2 }, [k2id]: { rpm: 1 } }, defaultKey: { rpm: 5 } } },
      { now: () => clock.t },
    )
    open.push(gw)
    const openai = (key: string) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 })
    const say = (key: string) => openai(key).chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'hi' }] })
    await say('k1')
    await say('k1')
    await say('k2')
    for (let i = 0; i < 5; i++) await say('k3')
    expect((await say('k2').catch((e) => e)).status).toBe(429)
    expect((await say('k3').catch((e) => e)).status).toBe(429)

    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'k1', maxRetries: 0 })
    const err = await anthropic.messages.create({ model: 'mock/mock-1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(Anthropic.RateLimitError)
    expect(err.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } })
    expect(err.error.error.message).toContain(`API key ${await keyId('k1')}: 2 requests per minute`)
    expect(err.headers.get('retry-after')).toBe('30')
    expect(err.headers.get('x-ratelimit-limit-requests')).toBe('2')
  })

  it('caps a key at N concurrent requests', async () => {
    const gw = await startGateway({ server: { apiKeys: ['k1'] }, providers: [{ id: 'mock', type: 'mock', delayMs: 50 }], limits: { keys: { k1: { concurrency: 1 } } } })
    open.push(gw)
    const c = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k1', maxRetries: 0 })
    const say = () => c.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'one two three four' }] })
    const results = await Promise.allSettled([say(), say()])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const err = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason
    expect(err.status).toBe(429)
    expect(err.code).toBe('concurrency_limit_exceeded')
    // The slot is given back when the answer ends.
    await say()
  })
})

describe('limits config and headers', () => {
  it('refuses mistakes at start with the path of the bad setting', async () => {
    await expect(startGateway({ limits: { models: { 'a/m': { rpn: 3 } } } })).rejects.toThrow(/limits\.models\.a\/m.*rpn/)
    await expect(startGateway({ limits: { store: { driver: 'redis' } } })).rejects.toThrow(/limits\.store\.url/)
    await expect(startGateway({ limits: { keys: { k: { tpm: -5 } } } })).rejects.toThrow(/limits\.keys\.k\.tpm/)
  })

  it('writes reset durations the way OpenAI does', () => {
    expect([20, 999, 1000, 1500, 20_000, 60_000, 360_000, 3_723_000].map(duration)).toEqual(['20ms', '999ms', '1s', '1.5s', '20s', '1m0s', '6m0s', '1h2m3s'])
  })
})
