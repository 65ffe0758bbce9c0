import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { sleep, startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { blocks, chatBody, streamWords, words } from './sse-client.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const failures: unknown[] = []
const onFailure = (err: unknown) => failures.push(err)

type Point = 'before_headers' | 'after_headers' | 'mid_stream'

/** Starts a stream and drops it at `point`; resolves once the client has let go. */
async function dropAt(base: string, point: Point, headers: Record<string, string> = {}): Promise<void> {
  const ac = new AbortController()
  const body = chatBody({ messages: [{ role: 'user', content: point }] })
  const pending = fetch(`${base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: ac.signal })
  if (point === 'before_headers') {
    await sleep(20)
    ac.abort()
    await pending.catch(() => {})
    return
  }
  const res = await pending
  expect(res.status).toBe(200)
  if (point === 'mid_stream') {
    let content = 0
    for await (const b of blocks(res.body!)) if (b.data?.includes('"content":"w') && ++content === 3) break
  }
  ac.abort()
  await res.body?.cancel().catch(() => {})
}

/** `n` streams dropped at rotating points by 50 concurrent clients. */
async function dropConcurrently(base: string, n: number): Promise<void> {
  const points: Point[] = ['before_headers', 'after_headers', 'mid_stream']
  let next = 0
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < n) {
        const i = next++
        await dropAt(base, points[i % 3])
      }
    }),
  )
}

function slowUpstream(): Promise<FakeUpstream> {
  return startUpstream((req, res) => {
    const early = req.json().messages[0].content === 'before_headers'
    return streamWords(res, words(100), { firstDelayMs: early ? 300 : 0, delayMs: 10 })
  })
}

describe('client aborts', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  beforeAll(async () => {
    process.on('unhandledRejection', onFailure)
    process.on('uncaughtException', onFailure)
    up = await slowUpstream()
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }], streaming: { reconnectGraceSec: 0, resumeWindowSec: 1 } })
  })
  afterAll(async () => {
    process.off('unhandledRejection', onFailure)
    process.off('uncaughtException', onFailure)
    await gw.close()
    await up.close()
  })

  it('abort mid-stream 100 times: the process stays up, no unhandled rejection, no leaked upstream sockets', async () => {
    const abortedBefore = up.aborted
    for (let i = 0; i < 100; i++) await dropAt(gw.baseURL, 'mid_stream', i % 2 ? { 'accept-encoding': 'gzip' } : {})
    await expect.poll(() => up.aborted - abortedBefore, { timeout: 10_000 }).toBe(100)
    // Each aborted stream's connection is closed. What may stay open is the upstream pool's one
    // spare keep-alive connection (undici connects it after an aborted request): never one per stream.
    await expect.poll(() => up.openSockets(), { timeout: 10_000 }).toBeLessThanOrEqual(2)
    for (let i = 0; i < 50; i++) await dropAt(gw.baseURL, 'mid_stream')
    await expect.poll(() => up.aborted - abortedBefore, { timeout: 10_000 }).toBe(150)
    await expect.poll(() => up.openSockets(), { timeout: 10_000 }).toBeLessThanOrEqual(2)
    await expect.poll(() => gw.gateway.streaming.store!.liveCount, { timeout: 5000 }).toBe(0)
    expect(failures).toEqual([])
    const health = await fetch(`${gw.url}/health`)
    expect(health.status).toBe(200)
  })

  it('1,000 streams aborted at any point (before headers, after them, mid-stream) end their upstream calls and give the memory back', { timeout: 180_000 }, async () => {
    // Warm-up at the same concurrency, so that lazily built code and both sides' connection pools count in the baseline.
    await dropConcurrently(gw.baseURL, 150)
    await expect.poll(() => up.aborted, { timeout: 20_000 }).toBe(up.requests.length)
    await sleep(1500)
    // The fake upstream records every request; keep its record out of the gateway's memory figures.
    let started = up.requests.length
    up.requests.length = 0
    gc()
    const baseline = process.memoryUsage().heapUsed
    const abortedBefore = up.aborted
    await dropConcurrently(gw.baseURL, 1000)
    // Every upstream call that started was ended by the gateway; none ran to completion.
    const reached = up.requests.length
    await expect.poll(() => up.aborted - abortedBefore, { timeout: 20_000 }).toBe(reached)
    expect(reached).toBeGreaterThanOrEqual(666)
    started += reached
    up.requests.length = 0
    // What may stay open is idle keep-alive connections of the gateway's upstream pool (a drop while
    // undici was still connecting leaves one, reused later): about one per concurrent client, not one per aborted stream.
    expect(up.openSockets()).toBeLessThanOrEqual(100)
    await expect.poll(() => gw.gateway.streaming.store!.liveCount, { timeout: 5000 }).toBe(0)
    // Past the resume window the buffers are gone from storage too.
    await sleep(1500)
    expect(await gw.gateway.storage.mount('streams').getKeys()).toEqual([])
    gc()
    const grown = process.memoryUsage().heapUsed - baseline
    expect(grown).toBeLessThan(4 * 1024 * 1024)
    expect(started).toBeGreaterThan(1000)
    expect(failures).toEqual([])
  })
})

describe('reconnect grace', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  beforeAll(async () => {
    up = await slowUpstream()
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }], streaming: { reconnectGraceSec: 0.5 } })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('keeps generating for the grace period after a drop, then ends the upstream call when nobody reconnects', async () => {
    const before = up.aborted
    await dropAt(gw.baseURL, 'mid_stream')
    const t0 = Date.now()
    await sleep(250)
    expect(up.aborted).toBe(before)
    await expect.poll(() => up.aborted, { timeout: 3000, interval: 20 }).toBe(before + 1)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400)
  })

  it('a drop before the answer began ends the upstream call at once (the client never got a stream id)', async () => {
    const before = up.aborted
    const t0 = Date.now()
    await dropAt(gw.baseURL, 'before_headers')
    await expect.poll(() => up.aborted, { timeout: 3000, interval: 10 }).toBe(before + 1)
    expect(Date.now() - t0).toBeLessThan(400)
  })
})
