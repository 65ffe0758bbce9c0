import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../src/core/aggregate.js'
import type { ChatRequest } from '../src/core/types.js'
import { undiciClient } from '../src/entry/undici-client.js'
import { silentLogger } from '../src/logger.js'
import { cacheStage, parseCacheConfig } from '../src/pipeline/cache.js'
import { openAICompatibleProvider } from '../src/providers/openai-compatible/index.js'
import { openStorage } from '../src/storage/index.js'
import { startEchoUpstream, type EchoUpstream } from './helpers/echo-upstream.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { hasRedis, startRedis, type RunningRedis } from './helpers/redis.js'

const KEY_A = 'sk-gw-alpha-0123456789'
const KEY_B = 'sk-gw-bravo-0123456789'
const ADMIN = 'sk-gw-admin-0123456789'
const SECRET = 'a-test-only-cache-secret-of-32-chars!'

type DriverCase = { name: 'memory' | 'fs' | 'redis'; config: () => Record<string, unknown>; raw: () => Promise<string[]> }

let redis: RunningRedis | undefined
let fsBase = ''
let redisDb = 0

beforeAll(async () => {
  fsBase = await mkdtemp(join(tmpdir(), 'lmgw-cache-'))
  if (hasRedis) redis = await startRedis()
})
afterAll(async () => {
  await redis?.close()
  await rm(fsBase, { recursive: true, force: true })
})

/** Each gateway gets fresh storage: a new fs directory, a new Redis key prefix. */
function driverCases(): DriverCase[] {
  let fsDir = ''
  let prefix = ''
  return [
    { name: 'memory', config: () => ({ driver: 'memory' }), raw: async () => [] },
    {
      name: 'fs',
      config: () => {
        fsDir = join(fsBase, `g${++redisDb}`)
        return { driver: 'fs', base: fsDir }
      },
      raw: async () => {
        const files = (await readdir(fsDir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile())
        return Promise.all(files.map((f) => readFile(join(f.parentPath, f.name), 'utf8')))
      },
    },
    {
      name: 'redis',
      config: () => {
        prefix = `t${++redisDb}`
        return { driver: 'redis', url: redis!.url, base: prefix }
      },
      raw: async () => {
        const client = new Redis(redis!.url)
        try {
          const keys = await client.keys(`${prefix}:*`)
          return [...keys, ...(await Promise.all(keys.map((k) => client.get(k).then((v) => v ?? ''))))]
        } finally {
          client.disconnect()
        }
      },
    },
  ]
}

const ask = (text: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}) => ({
  model: 'up/gpt-4o-mini',
  temperature: 0,
  messages: [{ role: 'user' as const, content: text }],
  ...extra,
})

async function streamed(client: OpenAI, body: ReturnType<typeof ask>, headers: Record<string, string> = {}) {
  const { data, response } = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { headers }).withResponse()
  const deltas: string[] = []
  const tools: string[] = []
  let finish: string | null = null
  let usage: OpenAI.CompletionUsage | undefined
  for await (const chunk of data) {
    const choice = chunk.choices[0]
    if (choice?.delta.content) deltas.push(choice.delta.content)
    for (const t of choice?.delta.tool_calls ?? []) tools.push(JSON.stringify({ i: t.index, id: t.id, n: t.function?.name, a: t.function?.arguments }))
    if (choice?.finish_reason) finish = choice.finish_reason
    if (chunk.usage) usage = chunk.usage
  }
  return { deltas, tools, finish, usage, cache: response.headers.get('x-gateway-cache'), model: response.headers.get('x-gateway-model') }
}

async function plain(client: OpenAI, body: ReturnType<typeof ask>, headers: Record<string, string> = {}) {
  const { data, response } = await client.chat.completions.create(body, { headers }).withResponse()
  return { text: data.choices[0].message.content, data, cache: response.headers.get('x-gateway-cache'), model: response.headers.get('x-gateway-model') }
}

for (const driver of driverCases()) {
  describe.skipIf(driver.name === 'redis' && !hasRedis)(`response cache on ${driver.name}`, () => {
    let up: EchoUpstream
    let gw: RunningGateway
    let a: OpenAI
    let b: OpenAI
    let admin: OpenAI

    async function start(cache: Record<string, unknown> = {}, storage: Record<string, unknown> = {}) {
      up = await startEchoUpstream()
      gw = await startGateway({
        server: { apiKeys: [KEY_A, KEY_B, ADMIN], adminKeys: [ADMIN] },
        providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, apiKey: 'sk-upstream' }],
        cache: { enabled: true, ...cache },
        storage: { cache: { ...driver.config(), ...storage } },
      })
      a = new OpenAI({ baseURL: gw.baseURL, apiKey: KEY_A, maxRetries: 0 })
      b = new OpenAI({ baseURL: gw.baseURL, apiKey: KEY_B, maxRetries: 0 })
      admin = new OpenAI({ baseURL: gw.baseURL, apiKey: ADMIN, maxRetries: 0 })
    }

    afterEach(async () => {
      await gw?.close()
      await up?.close()
    })

    it('answers a repeated deterministic request from the cache: miss, then hit, one upstream call, cached tokens reported', async () => {
      await start()
      const first = await plain(a, ask('What is 2+2?'))
      expect(first.cache).toBe('miss')
      expect(first.text).toBe('Echo v1: What is 2+2?')
      expect(first.data.usage?.prompt_tokens_details?.cached_tokens).toBe(0)
      const second = await plain(a, ask('What is 2+2?'))
      expect(second.cache).toBe('hit')
      expect(second.text).toBe(first.text)
      expect(second.model).toBe('up/gpt-4o-mini')
      expect(second.data.usage?.prompt_tokens).toBe(first.data.usage?.prompt_tokens)
      expect(second.data.usage?.completion_tokens).toBe(first.data.usage?.completion_tokens)
      expect(second.data.usage?.prompt_tokens_details?.cached_tokens).toBe(first.data.usage?.prompt_tokens)
      expect(up.calls()).toBe(1)
      const other = await plain(a, ask('What is 3+3?'))
      expect(other.cache).toBe('miss')
      expect(up.calls()).toBe(2)
    })

    it('replays a streamed answer as a stream equal in content to the original, and serves it to a non-streaming request too', async () => {
      await start()
      const original = await streamed(a, ask('Tell me a short story about caching'))
      expect(original.cache).toBe('miss')
      expect(original.deltas.join('')).toBe('Echo v1: Tell me a short story about caching')
      expect(original.deltas.length).toBeGreaterThan(3)
      const replay = await streamed(a, ask('Tell me a short story about caching'))
      expect(replay.cache).toBe('hit')
      expect(replay.deltas).toEqual(original.deltas)
      expect(replay.finish).toBe(original.finish)
      expect(replay.usage?.completion_tokens).toBe(original.usage?.completion_tokens)
      expect(replay.usage?.prompt_tokens_details?.cached_tokens).toBe(original.usage?.prompt_tokens)
      const asJson = await plain(a, ask('Tell me a short story about caching'))
      expect(asJson.cache).toBe('hit')
      expect(asJson.text).toBe(original.deltas.join(''))
      expect(up.calls()).toBe(1)
    })

    it('replays a streamed tool call with the same id, name and argument fragments', async () => {
      await start()
      const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
      const original = await streamed(a, ask('please call get_weather for Paris', { tools }))
      const replay = await streamed(a, ask('please call get_weather for Paris', { tools }))
      expect(original.finish).toBe('tool_calls')
      expect(replay.cache).toBe('hit')
      expect(replay.tools).toEqual(original.tools)
      expect(replay.finish).toBe('tool_calls')
      expect(up.calls()).toBe(1)
    })

    it('honours x-gateway-cache bypass and refresh, and Cache-Control: no-store', async () => {
      await start()
      await plain(a, ask('steer me'))
      const bypass = await plain(a, ask('steer me'), { 'x-gateway-cache': 'bypass' })
      expect(bypass.cache).toBe('bypass')
      expect(up.calls()).toBe(2)
      up.version = 2
      const refresh = await plain(a, ask('steer me'), { 'x-gateway-cache': 'refresh' })
      expect(refresh.cache).toBe('miss')
      expect(refresh.text).toBe('Echo v2: steer me')
      expect(up.calls()).toBe(3)
      const after = await plain(a, ask('steer me'))
      expect(after.cache).toBe('hit')
      expect(after.text).toBe('Echo v2: steer me')

      const noStore = await plain(a, ask('do not keep this'), { 'cache-control': 'no-store' })
      expect(noStore.cache).toBe('bypass')
      const next = await plain(a, ask('do not keep this'))
      expect(next.cache).toBe('miss')
      expect(up.calls()).toBe(5)
    })

    it('caches only deterministic requests by default; x-gateway-cache: use opts a sampled one in', async () => {
      await start()
      const sampled = { temperature: 0.7 }
      expect((await plain(a, ask('creative', sampled))).cache).toBe('bypass')
      expect((await plain(a, ask('creative', sampled))).cache).toBe('bypass')
      expect(up.calls()).toBe(2)
      const { temperature: _t, ...noTemperature } = ask('no temperature given')
      expect((await plain(a, noTemperature as ReturnType<typeof ask>)).cache).toBe('bypass')
      expect((await plain(a, ask('creative', sampled), { 'x-gateway-cache': 'use' })).cache).toBe('miss')
      expect((await plain(a, ask('creative', sampled), { 'x-gateway-cache': 'use' })).cache).toBe('hit')
      expect(up.calls()).toBe(4)
    })

    it('keeps API keys apart: an identical request with another key is a miss', async () => {
      await start()
      await plain(a, ask('shared question'))
      const other = await plain(b, ask('shared question'))
      expect(other.cache).toBe('miss')
      expect((await plain(b, ask('shared question'))).cache).toBe('hit')
      expect(up.calls()).toBe(2)
    })

    it('makes one upstream call for 10 concurrent identical requests, streamed or not', async () => {
      await start()
      up.delayMs = 150
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? streamed(a, ask('stampede')).then((r) => ({ text: r.deltas.join(''), cache: r.cache })) : plain(a, ask('stampede')))),
      )
      expect(up.calls()).toBe(1)
      for (const r of results) expect(r.text).toBe('Echo v1: stampede')
      expect(results.filter((r) => r.cache === 'miss')).toHaveLength(1)
      expect(results.filter((r) => r.cache === 'hit')).toHaveLength(9)
    })

    it('DELETE /v1/cache drops entries by model, by API key and all; only for admin keys', async () => {
      await start()
      const keyIdA = await keyIdOf(KEY_A)
      await plain(a, ask('one'))
      await plain(b, ask('one'))
      await plain(a, ask('two', { model: 'up/other-model' }))
      const denied = await fetch(`${gw.url}/v1/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY_A}` } })
      expect(denied.status).toBe(403)
      expect((await denied.json()).error.code).toBe('admin_required')
      const bad = await fetch(`${gw.url}/v1/cache?key_id=sk-not-an-id`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
      expect(bad.status).toBe(400)
      expect((await bad.json()).error.param).toBe('key_id')

      const byModel = await adminDelete(`?model=${encodeURIComponent('up/other-model')}`)
      expect(byModel).toMatchObject({ object: 'cache.invalidation', deleted: 1, model: 'up/other-model' })
      expect((await plain(a, ask('two', { model: 'up/other-model' }))).cache).toBe('miss')

      const byKey = await adminDelete(`?key_id=${keyIdA}`)
      expect(byKey.deleted).toBe(2)
      expect((await plain(a, ask('one'))).cache).toBe('miss')
      expect((await plain(b, ask('one'))).cache).toBe('hit')

      const all = await adminDelete('')
      expect(all.deleted).toBe(2)
      expect((await plain(b, ask('one'))).cache).toBe('miss')
      void admin
    })

    it('stores entries encrypted: the raw stored bytes contain neither prompt nor answer', async () => {
      if (driver.name === 'memory') {
        await start({ encryptionKey: SECRET })
        await plain(a, ask('PLAINTEXT-CANARY-7781 what is the secret?'))
        await settled()
        const map = (gw.gateway.storage.mount('cache').getMount('').driver.getInstance!() as Map<string, { value: unknown }>)
        const raw = [...map.entries()].map(([k, v]) => `${k} ${String(v.value)}`)
        expect(raw).toHaveLength(1)
        for (const r of raw) expect(r).not.toMatch(/CANARY|secret|Echo/)
      } else {
        await start({ encryptionKey: SECRET })
        await streamed(a, ask('PLAINTEXT-CANARY-7781 what is the secret?'))
        await plain(a, ask('PLAINTEXT-CANARY-7781 what is the secret?'))
        await settled()
        const raw = await driver.raw()
        expect(raw.join('').length).toBeGreaterThan(100)
        for (const r of raw) expect(r).not.toMatch(/CANARY|secret|Echo/)
      }
      const hit = await plain(a, ask('PLAINTEXT-CANARY-7781 what is the secret?'))
      expect(hit.cache).toBe('hit')
      expect(hit.text).toBe('Echo v1: PLAINTEXT-CANARY-7781 what is the secret?')
      expect(up.calls()).toBe(1)
    })

    it('without a key, entries are stored as readable JSON (the encryption test above is meaningful)', async () => {
      await start()
      await plain(a, ask('PLAINTEXT-CANARY-9913'))
      await settled()
      const raw = driver.name === 'memory' ? [...(gw.gateway.storage.mount('cache').getMount('').driver.getInstance!() as Map<string, { value: unknown }>).values()].map((v) => String(v.value)) : await driver.raw()
      expect(raw.join('\n')).toContain('PLAINTEXT-CANARY-9913')
    })

    it('passes an answer larger than maxEntryBytes through without storing it', async () => {
      await start({ maxEntryBytes: 2000 })
      const long = `long ${'x'.repeat(3000)}`
      expect((await plain(a, ask(long))).cache).toBe('miss')
      expect((await plain(a, ask(long))).cache).toBe('miss')
      expect((await plain(a, ask('short'))).cache).toBe('miss')
      expect((await plain(a, ask('short'))).cache).toBe('hit')
      expect(up.calls()).toBe(3)
    })

    it('answers bad cache headers with a precise 400 in the OpenAI error shape', async () => {
      await start()
      const err1 = await a.chat.completions.create(ask('x'), { headers: { 'x-gateway-cache': 'sometimes' } }).catch((e) => e)
      expect(err1).toBeInstanceOf(OpenAI.BadRequestError)
      expect(err1.param).toBe('x-gateway-cache')
      expect(err1.message).toContain('use, bypass or refresh')
      const err2 = await a.chat.completions.create({ ...ask('x'), stream: true }, { headers: { 'x-gateway-cache-ttl': '-5' } }).catch((e) => e)
      expect(err2).toBeInstanceOf(OpenAI.BadRequestError)
      expect(err2.param).toBe('x-gateway-cache-ttl')
      expect(up.calls()).toBe(0)
    })

    it('answers an Anthropic client from the cache, as an Anthropic stream, with cache_read_input_tokens', async () => {
      await start()
      const client = new Anthropic({ baseURL: gw.url, apiKey: KEY_A, maxRetries: 0 })
      const body = { model: 'up/gpt-4o-mini', max_tokens: 100, temperature: 0, messages: [{ role: 'user' as const, content: 'Anthropic says hello' }] }
      const first = await client.messages.create(body).withResponse()
      expect(first.response.headers.get('x-gateway-cache')).toBe('miss')
      const stream = client.messages.stream(body)
      const text: string[] = []
      stream.on('text', (t) => text.push(t))
      const final = await stream.finalMessage()
      expect(text.join('')).toBe('Echo v1: Anthropic says hello')
      expect(final.content[0]).toMatchObject({ type: 'text', text: 'Echo v1: Anthropic says hello' })
      expect(final.usage.cache_read_input_tokens).toBeGreaterThan(0)
      expect(up.calls()).toBe(1)
    })

    async function adminDelete(query: string) {
      const res = await fetch(`${gw.url}/v1/cache${query}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
      expect(res.status).toBe(200)
      return res.json()
    }
  })
}

/** Entries are written just after an answer completes; give the write a moment. */
function settled(): Promise<void> {
  return new Promise((r) => setTimeout(r, 30))
}

async function keyIdOf(key: string): Promise<string> {
  const { keyId } = await import('../src/middleware/auth.js')
  return keyId(key)
}

describe('response cache with a controllable clock (TTL)', () => {
  for (const driver of driverCases()) {
    it.skipIf(driver.name === 'redis' && !hasRedis)(`expires entries after the global, per-model and per-request TTL on ${driver.name}`, async () => {
      const up = await startEchoUpstream()
      const storage = await openStorage({ cache: driver.config() as never })
      let clock = 1_000_000
      const provider = openAICompatibleProvider({ id: 'up', baseURL: `${up.url}/v1`, apiKey: 'sk' }, undiciClient())
      const cache = cacheStage(provider, {
        config: parseCacheConfig({ enabled: true, ttl: 60, ttlByModel: { 'short-model': 5 } }),
        store: storage.mount('cache'),
        logger: silentLogger,
        now: () => clock,
      })
      const req = (text: string, model = 'gpt-4o-mini'): ChatRequest => ({ model, stream: false, temperature: 0, messages: [{ role: 'user', content: [{ type: 'text', text }] }] })
      const run = async (r: ChatRequest, headers: Record<string, string> = {}) => {
        const meta: Record<string, unknown> = {}
        const result = await aggregate(cache.chat(r, { signal: new AbortController().signal, requestId: 'r', meta, headers: new Headers(headers) }))
        await new Promise((res) => setTimeout(res, 20)) // the entry is written after the answer completes
        return { status: meta.cache, text: result.content[0]?.type === 'text' ? result.content[0].text : '' }
      }
      try {
        expect((await run(req('ttl global'))).status).toBe('miss')
        expect((await run(req('ttl short', 'short-model'))).status).toBe('miss')
        expect((await run(req('ttl header'), { 'x-gateway-cache-ttl': '2' })).status).toBe('miss')
        clock += 1_500
        expect((await run(req('ttl header'))).status).toBe('hit')
        clock += 1_000 // 2.5 s: past the request's own TTL
        expect((await run(req('ttl header'))).status).toBe('miss')
        expect((await run(req('ttl short', 'short-model'))).status).toBe('hit')
        clock += 3_000 // 5.5 s
        expect((await run(req('ttl short', 'short-model'))).status).toBe('miss')
        expect((await run(req('ttl global'))).status).toBe('hit')
        clock += 60_000
        expect((await run(req('ttl global'))).status).toBe('miss')
        expect(up.calls()).toBe(6)
      } finally {
        await storage.close()
        await up.close()
      }
    })
  }
})

describe('memory cache budget', () => {
  it('evicts the least recently used entries to stay within maxBytes', async () => {
    const up = await startEchoUpstream()
    const gw = await startGateway({
      providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, apiKey: 'sk' }],
      cache: { enabled: true },
      storage: { cache: { driver: 'memory', maxBytes: 3500 } },
    })
    try {
      const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'none', maxRetries: 0 })
      const map = gw.gateway.storage.mount('cache').getMount('').driver.getInstance!() as Map<string, { bytes: number }>
      const bytes = () => [...map.values()].reduce((n, s) => n + s.bytes, 0)
      await plain(client, ask(`first ${'a'.repeat(1000)}`))
      await plain(client, ask(`second ${'b'.repeat(1000)}`))
      await settled()
      expect(map.size).toBe(2)
      // Two entries fit the budget, three do not.
      expect(bytes()).toBeLessThanOrEqual(3500)
      expect(bytes() * 1.5).toBeGreaterThan(3500)
      // Reading the first makes the second the least recently used.
      expect((await plain(client, ask(`first ${'a'.repeat(1000)}`))).cache).toBe('hit')
      await plain(client, ask(`third ${'c'.repeat(1000)}`))
      await settled()
      expect(bytes()).toBeLessThanOrEqual(3500)
      expect(map.size).toBe(2)
      expect((await plain(client, ask(`first ${'a'.repeat(1000)}`))).cache).toBe('hit')
      expect((await plain(client, ask(`third ${'c'.repeat(1000)}`))).cache).toBe('hit')
      expect((await plain(client, ask(`second ${'b'.repeat(1000)}`))).cache).toBe('miss')
    } finally {
      await gw.close()
      await up.close()
    }
  })
})

describe.skipIf(!hasRedis)('a Redis that goes away', () => {
  it('degrades to misses (logged) and never fails a chat request', async () => {
    const own = await startRedis()
    const up = await startEchoUpstream()
    const lines: string[] = []
    const { createLogger } = await import('../src/logger.js')
    const gw = await startGateway(
      {
        providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, apiKey: 'sk' }],
        cache: { enabled: true },
        storage: { cache: { driver: 'redis', url: own.url } },
      },
      { logger: createLogger('warn', (l) => lines.push(l)) },
    )
    try {
      const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'none', maxRetries: 0 })
      await plain(client, ask('before the outage'))
      expect((await plain(client, ask('before the outage'))).cache).toBe('hit')
      await own.stop()
      const during = await plain(client, ask('before the outage'))
      expect(during.cache).toBe('miss')
      expect(during.text).toBe('Echo v1: before the outage')
      const streamedDuring = await streamed(client, ask('during the outage'))
      expect(streamedDuring.deltas.join('')).toBe('Echo v1: during the outage')
      expect(lines.some((l) => l.includes('cache lookup failed'))).toBe(true)
      expect(lines.join('\n')).not.toContain('before the outage')
    } finally {
      await gw.close()
      await up.close()
      await own.close()
    }
  })
})

describe('cache encryption', () => {
  it('reads entries sealed by either implementation (node:crypto and WebCrypto), and only with the same key and storage key', async () => {
    const { aesGcmSealer } = await import('../src/pipeline/cache-crypto.js')
    const node = await aesGcmSealer(SECRET)
    const web = await aesGcmSealer(SECRET, 'webcrypto')
    const other = await aesGcmSealer(`${SECRET}-other`)
    const plainText = JSON.stringify({ answer: 'héllo 🌍' })
    const a = await node.seal(plainText, 'key_a:m:h')
    const b = await web.seal(plainText, 'key_a:m:h')
    expect(a).not.toBe(b)
    expect(a).not.toContain('llo')
    expect(await web.open(a, 'key_a:m:h')).toBe(plainText)
    expect(await node.open(b, 'key_a:m:h')).toBe(plainText)
    await expect(node.open(a, 'key_b:m:h')).rejects.toThrow()
    await expect(web.open(a, 'key_b:m:h')).rejects.toThrow()
    await expect(other.open(a, 'key_a:m:h')).rejects.toThrow()
  })
})

describe('response cache: clients that leave', () => {
  async function setup() {
    const up = await startEchoUpstream()
    up.chunkDelayMs = 20
    const storage = await openStorage()
    const cache = cacheStage(openAICompatibleProvider({ id: 'up', baseURL: `${up.url}/v1`, apiKey: 'sk' }, undiciClient()), {
      config: parseCacheConfig({ enabled: true }),
      store: storage.mount('cache'),
      logger: silentLogger,
    })
    const text = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')
    const req: ChatRequest = { model: 'gpt-4o-mini', stream: true, temperature: 0, messages: [{ role: 'user', content: [{ type: 'text', text }] }] }
    const call = () => {
      const abort = new AbortController()
      const meta: Record<string, unknown> = {}
      const stream = cache.chat(req, { signal: abort.signal, requestId: 'r', meta, headers: new Headers() })
      return { stream, abort, meta }
    }
    return { up, storage, call, text, close: async () => (await storage.close(), await up.close()) }
  }

  it('the only client leaving mid-stream cancels the upstream call, and nothing is stored', async () => {
    const t = await setup()
    try {
      const { stream } = t.call()
      const reader = stream.getReader()
      await reader.read()
      await reader.read()
      await reader.cancel()
      await expect.poll(() => t.up.aborted, { timeout: 3000 }).toBe(1)
      await settled()
      expect(await t.storage.mount('cache').getKeys()).toEqual([])
      t.up.chunkDelayMs = 0
      const again = t.call()
      await aggregate(again.stream)
      expect(again.meta.cache).toBe('miss')
      expect(t.up.calls()).toBe(2)
    } finally {
      await t.close()
    }
  })

  it('the first client of a shared answer leaving does not cut the others off; the answer is still stored', async () => {
    const t = await setup()
    try {
      const leader = t.call()
      const reader = leader.stream.getReader()
      await reader.read()
      const follower = t.call()
      const rest = aggregate(follower.stream)
      await reader.read()
      leader.abort.abort()
      await reader.cancel()
      const result = await rest
      expect(follower.meta.cache).toBe('hit')
      expect(result.content[0]).toEqual({ type: 'text', text: `Echo v1: ${t.text}` })
      expect(t.up.aborted).toBe(0)
      await settled()
      const later = t.call()
      await aggregate(later.stream)
      expect(later.meta.cache).toBe('hit')
      expect(t.up.calls()).toBe(1)
    } finally {
      await t.close()
    }
  })

  it('a client whose own signal aborts while it waits on a shared answer gets a cancelled error, the others finish', async () => {
    const t = await setup()
    try {
      const leader = t.call()
      const done = aggregate(leader.stream)
      const follower = t.call()
      const waiting = aggregate(follower.stream).catch((e) => e)
      await new Promise((r) => setTimeout(r, 60))
      follower.abort.abort()
      const err = await waiting
      expect(err).toMatchObject({ kind: 'cancelled' })
      expect((await done).content[0]).toEqual({ type: 'text', text: `Echo v1: ${t.text}` })
      expect(t.up.calls()).toBe(1)
    } finally {
      await t.close()
    }
  })
})
