import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { estimateRequestTokens } from '../src/core/tokens.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { providerFor, startOpenAITarget, type OpenAITarget } from './helpers/openai-target.js'
import { hasRedis, startRedis, type RunningRedis } from './helpers/redis.js'

/** Two gateway instances sharing their buckets through one Redis. */
describe.skipIf(!hasRedis)('rate limits in Redis, shared by two gateway instances', () => {
  let redis: RunningRedis
  let up: OpenAITarget
  let g1: RunningGateway
  let g2: RunningGateway
  const client = (g: RunningGateway) => new OpenAI({ baseURL: g.baseURL, apiKey: 'x', maxRetries: 0 })
  const say = (g: RunningGateway, model: string) => client(g).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).withResponse()

  beforeAll(async () => {
    redis = await startRedis()
    up = await startOpenAITarget('a')
    const config = {
      providers: [providerFor(up, 'a', ['m', 'burst', 'tok'])],
      limits: { store: { driver: 'redis', url: redis.url, prefix: `test:${Date.now()}:` }, models: { 'a/m': { rpm: 4 }, 'a/burst': { rpm: 10 }, 'a/tok': { tpm: 200 } } },
    }
    g1 = await startGateway(config)
    g2 = await startGateway(config)
  })
  afterAll(async () => {
    await Promise.all([g1?.close(), g2?.close()])
    await up?.close()
    await redis?.close()
  })

  it('counts requests to either instance against one budget', async () => {
    const remaining: Array<string | null> = []
    for (const g of [g1, g2, g1, g2]) remaining.push((await say(g, 'a/m')).response.headers.get('x-ratelimit-remaining-requests'))
    expect(remaining).toEqual(['3', '2', '1', '0'])
    for (const g of [g1, g2]) {
      const err = await say(g, 'a/m').catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.RateLimitError)
      // 4 per minute: one every 15 s.
      expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(14)
      expect(Number(err.headers.get('retry-after'))).toBeLessThanOrEqual(15)
    }
  })

  it('is atomic: 30 concurrent requests over both instances, exactly 10 get through', async () => {
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => say(i % 2 ? g1 : g2, 'a/burst')))
    const ok = results.filter((r) => r.status === 'fulfilled').length
    expect(ok).toBe(10)
    for (const r of results) if (r.status === 'rejected') expect(r.reason.status).toBe(429)
  })

  it('shares the token correction with real usage', async () => {
    // Each answer reports 15 tokens used; a request is counted at its estimate up front and corrected after.
    const estimate = estimateRequestTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }) + 100
    const ask = (g: RunningGateway) => client(g).chat.completions.create({ model: 'a/tok', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }).withResponse()
    const a = await ask(g1)
    expect(Number(a.response.headers.get('x-ratelimit-remaining-tokens'))).toBe(200 - estimate)
    // Uncorrected, a second estimate would not fit (twice the estimate is over 200); corrected, g2 sees g1's request at its real 15.
    const b = await ask(g2)
    const remaining = Number(b.response.headers.get('x-ratelimit-remaining-tokens'))
    expect(remaining).toBeGreaterThanOrEqual(200 - 15 - estimate)
    expect(remaining).toBeLessThanOrEqual(200 - 15 - estimate + 2) // a little refill while the test runs
  })

  it('lets requests through (and does not crash) when Redis goes away', async () => {
    await redis.stop()
    const { data } = await say(g1, 'a/burst')
    expect(data.choices[0].message.content).toBe('a:burst: hi')
  })
})
