/**
 * What a response-cache hit costs: `npx tsx bench/cache.ts`.
 *
 * 1. Stage: the cache stage alone answering a hit (key hash, storage read,
 *    decrypt, validate, replay of the event stream, aggregated), per driver.
 * 2. HTTP: a whole /v1/chat/completions request through the gateway's fetch
 *    handler (in-process, no socket), served from the cache, next to the same
 *    request bypassing the cache to the in-process mock provider.
 * Prints p50/p99 in ms. Redis is measured when redis-server is installed.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGateway } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { aggregate } from '../src/core/aggregate.js'
import type { ChatRequest } from '../src/core/types.js'
import { silentLogger } from '../src/logger.js'
import { cacheStage, parseCacheConfig } from '../src/pipeline/cache.js'
import { mockProvider } from '../src/providers/mock/index.js'
import { openStorage, type StorageConfig } from '../src/storage/index.js'
import { hasRedis, startRedis } from '../test/helpers/redis.js'

const N = Number(process.env.BENCH_N ?? 2000)
const WARMUP = 200

function percentiles(samples: number[]): { p50: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b)
  return { p50: s[Math.floor(s.length * 0.5)], p99: s[Math.floor(s.length * 0.99)] }
}

async function time(fn: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < WARMUP; i++) await fn()
  const samples: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    await fn()
    samples.push(performance.now() - t0)
  }
  return percentiles(samples)
}

const fmt = (r: { p50: number; p99: number }) => `p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms`

// A realistic small exchange: a system prompt, a question, a ~120-word answer streamed in ~25 chunks.
const question = 'Explain in a paragraph what a response cache in an LLM gateway does and when it is safe to use. '.repeat(3)
const request: ChatRequest = {
  model: 'mock-1',
  stream: true,
  temperature: 0,
  messages: [
    { role: 'system', content: [{ type: 'text', text: 'You are a concise assistant. '.repeat(20) }] },
    { role: 'user', content: [{ type: 'text', text: `${question} [[mock:reply=${'A response cache stores answers. '.repeat(24)}]]` }] },
  ],
}

async function stageBench(label: string, storageConfig: StorageConfig, encryptionKey?: string): Promise<void> {
  const storage = await openStorage(storageConfig)
  const cache = cacheStage(mockProvider({ id: 'mock' }), {
    config: parseCacheConfig({ enabled: true, ...(encryptionKey ? { encryptionKey } : {}) }),
    store: storage.mount('cache'),
    logger: silentLogger,
  })
  const ctx = () => ({ signal: new AbortController().signal, requestId: 'bench', meta: {} as Record<string, unknown>, headers: new Headers() })
  const first = ctx()
  await aggregate(cache.chat(request, first))
  await new Promise((r) => setTimeout(r, 50))
  const check = ctx()
  await aggregate(cache.chat(request, check))
  if (check.meta.cache !== 'hit') throw new Error(`${label}: expected a hit, got ${String(check.meta.cache)}`)
  const r = await time(() => aggregate(cache.chat(request, ctx())))
  console.log(`stage hit  ${label.padEnd(24)} ${fmt(r)}`)
  await storage.close()
}

async function httpBench(): Promise<void> {
  const gateway = await createGateway(loadConfig({ providers: [{ id: 'mock', type: 'mock' }], cache: { enabled: true } }, {}), { logger: silentLogger })
  const body = JSON.stringify({
    model: 'mock/mock-1',
    temperature: 0,
    messages: request.messages.map((m) => ({ role: m.role, content: (m.content[0] as { text: string }).text })),
  })
  const call = async (headers: Record<string, string> = {}) => {
    const res = await gateway.fetch(new Request('http://gw/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }))
    await res.text()
    return res.headers.get('x-gateway-cache')
  }
  await call()
  await new Promise((r) => setTimeout(r, 50))
  if ((await call()) !== 'hit') throw new Error('http: expected a hit')
  const hit = await time(() => call())
  const bypass = await time(() => call({ 'x-gateway-cache': 'bypass' }))
  console.log(`http hit   ${'memory'.padEnd(24)} ${fmt(hit)}`)
  console.log(`http bypass to in-process mock      ${fmt(bypass)}`)
  console.log(`→ a hit answers ${(bypass.p50 - hit.p50).toFixed(3)} ms faster at p50 than even a zero-latency in-process provider`)
  await gateway.close()
}

const dir = await mkdtemp(join(tmpdir(), 'lmgw-bench-'))
const secret = 'bench-only-secret-0123456789abcdef'
try {
  console.log(`response cache hit latency, ${N} runs each after ${WARMUP} warm-up runs`)
  await stageBench('memory', {})
  await stageBench('memory, encrypted', {}, secret)
  await stageBench('fs, encrypted', { cache: { driver: 'fs', base: dir } }, secret)
  if (hasRedis) {
    const redis = await startRedis()
    try {
      await stageBench('redis, encrypted', { cache: { driver: 'redis', url: redis.url } }, secret)
    } finally {
      await redis.close()
    }
  }
  await httpBench()
} finally {
  await rm(dir, { recursive: true, force: true })
}
