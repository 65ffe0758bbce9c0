/**
 * Cloudflare Workers deployment, run in workerd (Miniflare) from the bundle
 * `wrangler deploy --dry-run` builds: the reverse bridge through the
 * BridgeRelay Durable Object, the response cache on a KV namespace, and RPM
 * limits in the RateLimitCounter Durable Object. Plus the bundle budget of
 * `npm run build:worker`.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { connectReverse, type ReverseConnection } from '../bridge/src/reverse.js'
import { slowText, type FakeChatModel } from './fakes/vscode.js'
import { startGateway } from './helpers/gateway.js'
import { sleep, startUpstream, type FakeUpstream } from './helpers/upstream.js'
import { startBridge, type RunningBridge } from './helpers/vscode-bridge.js'
import * as fx from './fixtures/openai/chat.js'
import type { DurableObjectNamespaceLike } from '../src/pipeline/durable-object-limit-store.js'
import { root, startWorkerd, type RuntimeServer } from './runtimes/spawn.js'

const TOKEN = 'workers-bridge-token'
const OBJECTS = { BRIDGE_RELAY: 'BridgeRelay', RATE_LIMITS: 'RateLimitCounter' }
const perChar = (t: string) => t.length

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

describe('npm run build:worker', () => {
  it('bundles offline into dist/worker.js, under the 1 MB gzip budget', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('npm', ['run', 'build:worker'], { cwd: root, env: { ...process.env, CI: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let log = ''
      child.stdout.on('data', (d) => (log += d))
      child.stderr.on('data', (d) => (log += d))
      child.once('exit', (code) => (code === 0 ? resolve(log) : reject(new Error(`build:worker failed (${code}): ${log}`))))
    })
    // The bindings wrangler.toml declares are in the build.
    expect(out).toContain('env.BRIDGE_RELAY (BridgeRelay)')
    expect(out).toContain('env.RATE_LIMITS (RateLimitCounter)')
    expect(out).toContain('env.GATEWAY_KV')
    const file = join(root, 'dist', 'worker.js')
    expect(existsSync(file)).toBe(true)
    const code = readFileSync(file)
    const gzipped = gzipSync(code, { level: 9 }).length
    console.log(`dist/worker.js: ${(code.length / 1024).toFixed(0)} KiB, gzip ${(gzipped / 1024).toFixed(0)} KiB (budget 1024 KiB)`)
    expect(gzipped).toBeLessThan(1024 * 1024)
    // The Durable Object classes are exported by the entry module.
    expect(code.toString('utf8')).toMatch(/export\s*\{[^}]*\bBridgeRelay\b[^}]*\bRateLimitCounter\b|export\s*\{[^}]*\bRateLimitCounter\b[^}]*\bBridgeRelay\b/)
  }, 120_000)
})

describe('workerd: reverse bridge through the BridgeRelay Durable Object', () => {
  let bridge: RunningBridge
  let server: RuntimeServer
  let client: OpenAI
  let model: FakeChatModel
  let connection: ReverseConnection | undefined

  beforeAll(async () => {
    bridge = await startBridge(TOKEN)
    model = bridge.vscode.fake.addModel({ id: 'copilot-gpt-4o', vendor: 'copilot', countTokens: perChar })
    // Nothing listens at the URL: the Worker reaches this bridge only through the socket it dials.
    server = await startWorkerd(
      { server: { apiKeys: ['sk-w'] }, providers: [{ id: 'vscode', type: 'vscode-bridge', url: 'http://127.0.0.1:1', token: TOKEN }], streaming: { reconnectGraceSec: 0 } },
      {},
      { durableObjects: OBJECTS },
    )
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-w', maxRetries: 0 })
  }, 120_000)
  afterAll(async () => {
    connection?.close()
    await server?.close()
    await bridge?.close()
  })

  it('refuses a bridge with a wrong token before upgrading; plain GET is 426', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/bridge/connect`, { headers: { authorization: 'Bearer wrong' } })
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('open', () => reject(new Error('upgraded with a wrong token')))
      ws.on('error', () => {})
    })
    expect(status).toBe(401)
    expect((await fetch(`${server.url}/bridge/connect`)).status).toBe(426)
  })

  it('answers 503 naming reverse mode while no bridge is connected', async () => {
    const err = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.APIError)
    expect(err.status).toBe(503)
    expect(err.message).toContain('No bridge is connected in reverse mode either')
  })

  it('serves chat, streaming and the model list over the socket the bridge dialled', async () => {
    connection = connectReverse({ url: server.url, token: TOKEN, handler: bridge.app.fetch, WebSocket, minDelayMs: 20, maxDelayMs: 200 })
    await until(() => connection!.state === 'open', 'the bridge to connect')
    model.reply = slowText(['Over ', 'the ', 'relay.'], 5)
    const res = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hello' }] })
    expect(res.choices[0].message.content).toBe('Over the relay.')
    // Exact counts from the model's own tokenizer, fetched over the same relay.
    expect(res.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 15 })

    model.reply = slowText(['one ', 'two ', 'three'], 5)
    const stream = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'count' }], stream: true })
    const deltas: string[] = []
    for await (const c of stream) if (c.choices[0]?.delta.content) deltas.push(c.choices[0].delta.content)
    expect(deltas.join('')).toBe('one two three')
    expect(deltas.length).toBeGreaterThanOrEqual(3)

    expect((await client.models.list()).data.map((m) => m.id)).toContain('vscode/copilot-gpt-4o')
    const health = await (await fetch(`${server.url}/health`)).json()
    expect(health.providers[0]).toMatchObject({ ok: true, detail: expect.stringContaining('reverse mode') })
  })

  it('a client that goes away mid-stream cancels the model call in VS Code', async () => {
    model.reply = async function* (ctx) {
      for (let i = 0; i < 200; i++) {
        await ctx.sleep(20)
        if (ctx.token.isCancellationRequested) return
        yield ctx.text(`t${i} `)
      }
    }
    const before = model.requests.length
    const ac = new AbortController()
    const stream = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'long' }], stream: true }, { signal: ac.signal })
    let n = 0
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++n === 2) {
          ac.abort()
          break
        }
      }
    } catch {
      /* aborted */
    }
    expect(n).toBe(2)
    const req = model.requests[before]
    await until(() => req.cancelled, 'the cancel to reach VS Code')
    // Stopped long before its 200 parts.
    expect(req.cancelled).toBe(true)
  })

  it('fails over to the URL again once the bridge disconnects', async () => {
    connection!.close()
    await until(() => connection!.state === 'closed', 'the socket to close')
    let err: { status?: number; message?: string } | undefined
    const deadline = Date.now() + 5000
    // The relay object learns of the close asynchronously.
    while (Date.now() < deadline) {
      err = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'x' }] }).then(() => undefined, (e) => e)
      if (err?.status === 503) break
      await sleep(50)
    }
    expect(err?.status).toBe(503)
    expect(err?.message).toContain('No bridge is connected in reverse mode either')
  })
})

describe('workerd: bridge by URL (a tunnel) while none is connected to the relay', () => {
  let bridge: RunningBridge
  let server: RuntimeServer
  beforeAll(async () => {
    bridge = await startBridge(TOKEN)
    bridge.vscode.fake.addModel({ id: 'copilot-gpt-4o', vendor: 'copilot', countTokens: perChar })
    server = await startWorkerd({ server: { apiKeys: ['sk-w'] }, providers: [{ id: 'vscode', type: 'vscode-bridge', url: bridge.url, token: TOKEN }] }, {}, { durableObjects: OBJECTS })
  }, 120_000)
  afterAll(async () => {
    await server?.close()
    await bridge?.close()
  })

  it('asks the relay, finds no socket, and serves the chat over the URL', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-w', maxRetries: 0 })
    const res = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'via the tunnel' }] })
    expect(res.choices[0].message.content).toBe('via the tunnel')
    const health = await (await fetch(`${server.url}/health`)).json()
    expect(health.providers[0]).toMatchObject({ ok: true, detail: expect.stringContaining(`at ${bridge.url}`) })
  })
})

describe('workerd: response cache on a KV namespace', () => {
  let upstream: FakeUpstream
  let server: RuntimeServer & { mf: import('miniflare').Miniflare }
  let calls = 0

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
      calls++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.completionText))
    })
    server = await startWorkerd(
      {
        server: { apiKeys: ['sk-w'] },
        providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${upstream.url}/v1` }],
        cache: { enabled: true },
        storage: { cache: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' } },
      },
      {},
      { kvNamespaces: ['GATEWAY_KV'], durableObjects: OBJECTS },
    )
  }, 120_000)
  afterAll(async () => {
    await server?.close()
    await upstream?.close()
  })

  it('answers the second identical request from KV without calling the upstream', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-w', maxRetries: 0 })
    const ask = () => client.chat.completions.create({ model: 'up/gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: 'cache me on KV' }] }).withResponse()
    const first = await ask()
    expect(first.response.headers.get('x-gateway-cache')).toBe('miss')
    expect(calls).toBe(1)
    const kv = (await server.mf.getKVNamespace('GATEWAY_KV')) as unknown as { list(): Promise<{ keys: Array<{ name: string }> }> }
    // Saved after the answer ended: wait for the write to land in KV.
    let keys: string[] = []
    const deadline = Date.now() + 5000
    while (keys.length === 0 && Date.now() < deadline) {
      keys = (await kv.list()).keys.map((k) => k.name)
      if (keys.length === 0) await sleep(20)
    }
    expect(keys.length).toBeGreaterThan(0)
    expect(keys.every((k) => k.startsWith('cache:'))).toBe(true)
    // No prompt text in KV keys or values (the cache stores hashes and the answer only).
    expect(keys.join(' ')).not.toContain('cache me')

    const second = await ask()
    expect(second.response.headers.get('x-gateway-cache')).toBe('hit')
    expect(second.data.choices[0].message.content).toBe(first.data.choices[0].message.content)
    expect(calls).toBe(1)
  })
})

describe('workerd: RPM limits in the RateLimitCounter Durable Object', () => {
  let server: RuntimeServer & { mf: import('miniflare').Miniflare }
  beforeAll(async () => {
    server = await startWorkerd(
      { server: { apiKeys: ['sk-w'] }, providers: [{ id: 'mock', type: 'mock' }], limits: { store: { driver: 'durable-object' }, models: { 'mock/mock-1': { rpm: 2 }, 'mock/mock-2': { rpm: 5 } } } },
      {},
      { durableObjects: OBJECTS },
    )
  }, 120_000)
  afterAll(() => server?.close())

  it('lets two requests through, answers the third 429 with Retry-After, and keeps the buckets in the object', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-w', maxRetries: 0 })
    const ask = () => client.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'limited' }] })
    await ask()
    await ask()
    const err = await ask().catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.error.code).toBe('rate_limit_exceeded')
    expect(err.message).toContain('model mock/mock-1: 2 requests per minute')
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)

    // The bucket lives in the Durable Object, where every isolate debits it: asked directly, it is empty.
    const ns = (await server.mf.getDurableObjectNamespace('RATE_LIMITS')) as unknown as DurableObjectNamespaceLike
    const stub = ns.get(ns.idFromName('limits'))
    const res = await stub.fetch('https://rate-limits.internal/take', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ specs: [{ key: 'm:mock/mock-1:r', capacity: 2, perMs: 2 / 60_000, cost: 1 }], now: Date.now() }),
    })
    const taken = (await res.json()) as { ok: boolean; states: Array<{ remaining: number }> }
    expect(taken.ok).toBe(false)
    expect(taken.states[0].remaining).toBeLessThan(1)
  })

  it('admits exactly the limit out of 12 concurrent requests', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-w', maxRetries: 0 })
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => client.chat.completions.create({ model: 'mock/mock-2', messages: [{ role: 'user', content: `burst ${i}` }] }).then(() => 'ok', (e) => (e instanceof OpenAI.RateLimitError ? '429' : String(e)))),
    )
    expect(results.filter((r) => r === 'ok')).toHaveLength(5)
    expect(results.filter((r) => r === '429')).toHaveLength(7)
  })

  it('rejects malformed calls to the object with a 400', async () => {
    const ns = (await server.mf.getDurableObjectNamespace('RATE_LIMITS')) as unknown as DurableObjectNamespaceLike
    const stub = ns.get(ns.idFromName('limits'))
    const bad = await stub.fetch('https://rate-limits.internal/take', { method: 'POST', body: '{"specs":[]}' })
    expect(bad.status).toBe(400)
    const garbage = await stub.fetch('https://rate-limits.internal/take', { method: 'POST', body: 'not json' })
    expect(garbage.status).toBe(400)
  })
})

describe('workerd: a missing binding', () => {
  it('answers 500 naming the KV binding to add, on every request, without crashing', async () => {
    const server = await startWorkerd({ storage: { cache: { driver: 'cloudflare-kv-binding', binding: 'NOT_BOUND' } } }, {}, { waitHealthy: false })
    try {
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${server.url}/health`)
        expect(res.status).toBe(500)
        const body = (await res.json()) as { error: { message: string; code: string } }
        expect(body.error.code).toBe('gateway_misconfigured')
        expect(body.error.message).toContain('no KV namespace binding named "NOT_BOUND"')
      }
    } finally {
      await server.close()
    }
  })
})

describe('limits.store durable-object outside Workers', () => {
  it('fails start-up naming the missing binding', async () => {
    const err = await startGateway({ providers: [{ id: 'mock', type: 'mock' }], limits: { store: { driver: 'durable-object' } } }).catch((e) => e)
    expect(err).toBeInstanceOf(Error)
    expect(err.message).toContain('no Durable Object namespace binding named "RATE_LIMITS"')
  })
})
