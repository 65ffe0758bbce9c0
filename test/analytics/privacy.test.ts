import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Anthropic from '@anthropic-ai/sdk'
import Redis from 'ioredis'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { hasRedis, startRedis, type RunningRedis } from '../helpers/redis.js'

const KEY = 'sk-privacy-secret-key-9f3a'

/** Sends a mix of requests whose prompts, answers, tool calls and metadata carry unique markers. */
async function traffic(gw: RunningGateway): Promise<string[]> {
  const m = () => `MARK${randomUUID().replace(/-/g, '')}`
  const markers = Array.from({ length: 8 }, m)
  const [prompt, answer, system, user, toolArg, streamed, anthropicPrompt, anthropicAnswer] = markers
  const openai = new OpenAI({ baseURL: gw.baseURL, apiKey: KEY, maxRetries: 0 })
  const r = await openai.chat.completions.create({
    model: 'mock/mock-1',
    messages: [
      { role: 'system', content: `be brief ${system}` },
      { role: 'user', content: `${prompt} [[mock:reply=${answer}]]` },
    ],
    user,
    metadata: { note: user },
  })
  expect(r.choices[0].message.content).toBe(answer)
  const t = await openai.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: `[[mock:tool=lookup {"q":"${toolArg}"}]]` }] })
  expect(t.choices[0].message.tool_calls?.[0]).toBeDefined()
  const s = await openai.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: streamed }], stream: true })
  let text = ''
  for await (const c of s) text += c.choices[0]?.delta.content ?? ''
  expect(text).toBe(streamed)
  await openai.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: `${prompt} [[mock:error=upstream]]` }] }).catch(() => {})
  const anthropic = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 })
  const msg = await anthropic.messages.create({ model: 'mock/mock-1', max_tokens: 100, messages: [{ role: 'user', content: `${anthropicPrompt} [[mock:reply=${anthropicAnswer}]]` }] })
  expect(msg.content[0]).toMatchObject({ type: 'text', text: anthropicAnswer })
  await gw.gateway.analytics!.flush()
  // The rollups exist: the test would pass vacuously on an empty store otherwise.
  const summary = await (await fetch(`${gw.url}/v1/analytics/summary?range=1h`, { headers: { authorization: `Bearer ${KEY}` } })).json()
  expect(summary.totals.requests).toBe(5)
  return [...markers, KEY]
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else out.push(p)
  }
  return out
}

describe('privacy: no prompt, answer or key ever reaches analytics storage', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lmgw-analytics-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('fs: every stored byte is free of the markers', async () => {
    const gw = await startGateway({
      server: { apiKeys: [KEY] },
      providers: [{ id: 'mock', type: 'mock' }],
      storage: { analytics: { driver: 'fs', base: dir } },
      analytics: { enabled: true, flushIntervalMs: 20 },
    })
    const markers = await traffic(gw)
    await gw.close()
    const files = await filesUnder(dir)
    expect(files.length).toBeGreaterThanOrEqual(3)
    expect((await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('')).toContain('mock/mock-1')
    for (const f of files) {
      const bytes = await readFile(f)
      for (const m of markers) {
        expect(bytes.includes(Buffer.from(m)), `${f} contains a marker`).toBe(false)
        expect(f.includes(m)).toBe(false)
      }
    }
  })

  describe.skipIf(!hasRedis)('redis', () => {
    let redis: RunningRedis
    beforeAll(async () => {
      redis = await startRedis()
    })
    afterAll(() => redis?.close())

    it('redis: no key or value contains the markers', async () => {
      const gw = await startGateway({
        server: { apiKeys: [KEY] },
        providers: [{ id: 'mock', type: 'mock' }],
        storage: { analytics: { driver: 'redis', url: redis.url } },
        analytics: { enabled: true, flushIntervalMs: 20 },
      })
      const markers = await traffic(gw)
      await gw.close()
      const client = new Redis(redis.url)
      try {
        const keys = await client.keys('*')
        expect(keys.filter((k) => k.includes('analytics')).length).toBeGreaterThanOrEqual(3)
        let all = ''
        for (const k of keys) {
          // Plain reads (DUMP may LZF-compress and would hide a marker).
          const type = await client.type(k)
          const value = type === 'string' ? await client.get(k) : type === 'hash' ? JSON.stringify(await client.hgetall(k)) : JSON.stringify(await client.lrange(k, 0, -1))
          const bytes = Buffer.from(value ?? '')
          all += value
          for (const m of markers) {
            expect(k.includes(m)).toBe(false)
            expect(bytes.includes(Buffer.from(m)), `${k} contains a marker`).toBe(false)
          }
        }
        // The read is of the real rollups: the served model is in them.
        expect(all).toContain('mock/mock-1')
      } finally {
        client.disconnect()
      }
    })
  })
})
