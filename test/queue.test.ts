import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { providerFor, startOpenAITarget, type Behaviour, type OpenAITarget } from './helpers/openai-target.js'

let open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.map((o) => o.close()))
  open = []
})

/** A gate the fake upstream waits on before answering: requests stay in flight until released. */
function gate() {
  let release!: () => void
  const opened = new Promise<void>((r) => (release = r))
  return { opened, release }
}

async function setup(config: Record<string, unknown>, behave?: OpenAITarget['behave'], deps = {}, models = ['m']) {
  const up = await startOpenAITarget('a', behave)
  const gw = await startGateway({ providers: [providerFor(up, 'a', models)], ...config }, deps)
  open.push(gw, up)
  const client = (key = 'x', headers: Record<string, string> = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, defaultHeaders: headers })
  return { gw, up, client }
}

async function queueState(gw: RunningGateway, key = 'x') {
  const res = await fetch(`${gw.baseURL}/queue`, { headers: { authorization: `Bearer ${key}` } })
  expect(res.status).toBe(200)
  return res.json()
}

/** Resolves once `n` requests wait: lets a test fix the order in which requests arrive. */
async function waiting(gw: RunningGateway, n: number, key = 'x') {
  await expect.poll(async () => (await queueState(gw, key)).waiting, { timeout: 10_000, interval: 10 }).toBe(n)
}

const say = (c: OpenAI, content: string, model = 'a/m') => c.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse()

describe('queue order', () => {
  it('serves higher priority first, FIFO within a class; x-gateway-priority is bounded by what the key may use', async () => {
    const first = gate()
    const { gw, up, client } = await setup(
      {
        server: { apiKeys: ['vip', 'plain'] },
        limits: { models: { 'a/m': { concurrency: 1 } } },
        queue: { keys: { vip: { priority: 'normal', maxPriority: 'high' } } },
      },
      ({ n }): Behaviour => (n === 1 ? { hold: first.opened } : {}),
      { now: () => 0 }, // a still clock: no aging
    )
    const vip = client('vip')
    const answers: Array<Promise<Awaited<ReturnType<typeof say>>>> = [say(vip, 'first')]
    await expect.poll(() => up.calls.length).toBe(1)
    const arrivals: Array<[OpenAI, string]> = [
      [client('vip', { 'x-gateway-priority': 'low' }), 'low1'],
      [client('plain'), 'normal1'],
      [client('vip', { 'x-gateway-priority': 'high' }), 'high1'],
      [client('plain', { 'x-gateway-priority': 'high' }), 'plain-asks-high'],
      [client('vip', { 'x-gateway-priority': 'HIGH' }), 'high2'],
      [client('vip'), 'normal2'],
    ]
    for (const [i, [c, text]] of arrivals.entries()) {
      answers.push(say(c, text))
      await waiting(gw, i + 1, 'vip')
    }
    const q = (await queueState(gw, 'vip')).queues[0]
    expect(q).toMatchObject({ scope: 'model', name: 'a/m', concurrency: 1, active: 1, waiting: 6, by_priority: { high: 2, normal: 3, low: 1 } })
    // No request content in the queue view.
    expect(JSON.stringify(await queueState(gw, 'vip'))).not.toContain('high1')

    first.release()
    const done = await Promise.all(answers)
    expect(up.calls.map((c) => c.prompt)).toEqual(['first', 'high1', 'high2', 'normal1', 'plain-asks-high', 'normal2', 'low1'])
    // Each answer tells where it stood on entering the queue (positions among the waiters then).
    const position = (text: string) => done.find((d) => d.data.choices[0].message.content?.endsWith(`: ${text}`))!.response.headers.get('x-gateway-queue-position')
    expect(done[0].response.headers.get('x-gateway-queue-position')).toBeNull()
    expect(['low1', 'normal1', 'high1', 'plain-asks-high', 'high2', 'normal2'].map(position)).toEqual(['1', '1', '1', '3', '2', '5'])
    expect(done[1].response.headers.get('x-gateway-queue-wait-ms')).toMatch(/^\d+$/)
  })

  it('rejects an unknown x-gateway-priority with a 400 naming the header', async () => {
    const { client } = await setup({ limits: { models: { 'a/m': { concurrency: 1 } } } })
    const err = await say(client('x', { 'x-gateway-priority': 'urgent' }), 'hi').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.code).toBe('invalid_priority')
    expect(err.param).toBe('x-gateway-priority')
    expect(err.message).toContain('expected one of high, normal, low')
  })

  it('ages waiting requests: a low one that has waited agingMs per class overtakes newer high ones', async () => {
    const first = gate()
    const clock = { t: 0 }
    const { gw, up, client } = await setup(
      { limits: { models: { 'a/m': { concurrency: 1 } } }, queue: { agingMs: 1000, defaultMaxPriority: 'high' } },
      ({ n }): Behaviour => (n === 1 ? { hold: first.opened } : {}),
      { now: () => clock.t },
    )
    const answers = [say(client(), 'first')]
    await expect.poll(() => up.calls.length).toBe(1)
    answers.push(say(client('x', { 'x-gateway-priority': 'low' }), 'low-at-0')) // counts as entered at 0 + 2 × 1000
    await waiting(gw, 1)
    clock.t = 1500
    answers.push(say(client('x', { 'x-gateway-priority': 'high' }), 'high-at-1500'))
    await waiting(gw, 2)
    clock.t = 2500
    answers.push(say(client('x', { 'x-gateway-priority': 'high' }), 'high-at-2500'))
    await waiting(gw, 3)
    first.release()
    await Promise.all(answers)
    expect(up.calls.map((c) => c.prompt)).toEqual(['first', 'high-at-1500', 'low-at-0', 'high-at-2500'])
  })

  it('does not starve low priority under a steady stream of high-priority requests', async () => {
    const { gw, up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 1 } } }, queue: { agingMs: 150, defaultMaxPriority: 'high' } }, () => ({ delayMs: 15 }))
    const high = client('x', { 'x-gateway-priority': 'high' })
    let stop = false
    let highsServed = 0
    const loops = Array.from({ length: 6 }, async (_, i) => {
      while (!stop) {
        await say(high, `high-${i}`)
        highsServed++
      }
    })
    await expect.poll(async () => (await queueState(gw)).waiting, { timeout: 10_000 }).toBeGreaterThanOrEqual(4)
    const t0 = Date.now()
    const low = await say(client('x', { 'x-gateway-priority': 'low' }), 'low')
    const lowWait = Date.now() - t0
    const queuedWhenLowServed = (await queueState(gw)).waiting
    stop = true
    await Promise.all(loops)
    expect(low.data.choices[0].message.content).toBe('a:m: low')
    // High-priority requests were still waiting when the low one got its turn: it was not served because they ran out.
    expect(queuedWhenLowServed).toBeGreaterThanOrEqual(3)
    expect(highsServed).toBeGreaterThan(6)
    expect(Number(low.response.headers.get('x-gateway-queue-wait-ms'))).toBeLessThan(5_000)
    expect(lowWait).toBeLessThan(5_000)
  })
})

describe('queue limits', () => {
  it('answers 429 queue_full beyond the per-model queue size', async () => {
    const first = gate()
    const { gw, up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 1 } } }, queue: { maxPerModel: 2 } }, ({ n }): Behaviour => (n === 1 ? { hold: first.opened } : {}))
    const answers = [say(client(), 'first'), say(client(), 'q1'), say(client(), 'q2')]
    await waiting(gw, 2)
    const err = await say(client(), 'q3').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.code).toBe('queue_full')
    expect(err.message).toContain('the queue for "a/m" is full (2 waiting)')
    expect(err.headers.get('retry-after')).toMatch(/^\d+$/)
    first.release()
    await Promise.all(answers)
    expect(up.calls).toHaveLength(3)
  })

  it('answers 429 queue_full beyond the global queue size', async () => {
    const first = gate()
    const { gw, client } = await setup(
      { limits: { models: { 'a/m': { concurrency: 1 }, 'a/n': { concurrency: 1 } } }, queue: { maxSize: 2, maxPerModel: 10 } },
      ({ n }): Behaviour => (n <= 2 ? { hold: first.opened } : {}),
      {},
      ['m', 'n'],
    )
    const answers = [say(client(), 'm1', 'a/m'), say(client(), 'n1', 'a/n')]
    answers.push(say(client(), 'm2', 'a/m'))
    answers.push(say(client(), 'n2', 'a/n'))
    await waiting(gw, 2)
    const err = await say(client(), 'm3', 'a/m').catch((e) => e)
    expect(err.status).toBe(429)
    expect(err.code).toBe('queue_full')
    expect(err.message).toContain("the gateway's queue is full (2 waiting)")
    first.release()
    await Promise.all(answers)
  })

  it('answers 503 with Retry-After after the maximum wait, and the upstream never sees the request', async () => {
    const first = gate()
    const { up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 1 } } }, queue: { maxWaitMs: 300 } }, ({ n }): Behaviour => (n === 1 ? { hold: first.opened } : {}))
    const held = say(client(), 'first')
    await expect.poll(() => up.calls.length).toBe(1)
    const t0 = Date.now()
    const err = await say(client(), 'second').catch((e) => e)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290)
    expect(err).toBeInstanceOf(OpenAI.InternalServerError)
    expect(err.status).toBe(503)
    expect(err.code).toBe('queue_timeout')
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    first.release()
    await held
    expect(up.calls).toHaveLength(1)
  })

  it('a client that disconnects while queued leaves the queue at once', async () => {
    const first = gate()
    const { gw, up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 1 } } } }, ({ n }): Behaviour => (n === 1 ? { hold: first.opened } : {}))
    const held = say(client(), 'first')
    await expect.poll(() => up.calls.length).toBe(1)
    const ac = new AbortController()
    const gone = client()
      .chat.completions.create({ model: 'a/m', messages: [{ role: 'user', content: 'gone' }] }, { signal: ac.signal })
      .catch((e) => e)
    const stays = say(client(), 'stays')
    await waiting(gw, 2)
    ac.abort()
    expect(await gone).toBeInstanceOf(OpenAI.APIUserAbortError)
    await waiting(gw, 1)
    first.release()
    await held
    await stays
    expect(up.calls.map((c) => c.prompt)).toEqual(['first', 'stays'])
  })
})

describe('wait estimates and load', () => {
  it('estimates converge on the real waits under a steady load, and GET /v1/queue shows the measured service time', async () => {
    const { gw, client } = await setup({ limits: { models: { 'a/m': { concurrency: 2 } } } }, () => ({ delayMs: 60 }))
    const samples: Array<{ position: number; estimate: number; waited: number }> = []
    let seen = 0
    // Six clients in a closed loop on two slots: about four are always waiting.
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        for (let j = 0; j < 12; j++) {
          const { response } = await say(client(), `c${i}-${j}`)
          const position = response.headers.get('x-gateway-queue-position')
          const estimate = response.headers.get('x-gateway-queue-estimated-wait-ms')
          if (position && estimate && seen++ >= 12) samples.push({ position: Number(position), estimate: Number(estimate), waited: Number(response.headers.get('x-gateway-queue-wait-ms')) })
        }
      }),
    )
    expect(samples.length).toBeGreaterThan(30)
    for (const s of samples) expect(s.position).toBeGreaterThanOrEqual(1)
    for (const s of samples) expect(s.position).toBeLessThanOrEqual(4)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const estimated = mean(samples.map((s) => s.estimate))
    const waited = mean(samples.map((s) => s.waited))
    // Mean estimate within 35% of the mean real wait once the service time is measured.
    expect(Math.abs(estimated - waited) / waited).toBeLessThan(0.35)
    const q = (await queueState(gw)).queues[0]
    expect(q.service_ms).toBeGreaterThanOrEqual(55)
    expect(q).toMatchObject({ waiting: 0, active: 0, estimated_wait_ms: 0 })
  })

  it('200 concurrent clients against a slow upstream: every request gets an answer or a clear error', { timeout: 120_000 }, async () => {
    const { gw, up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 4 } } }, queue: { maxPerModel: 150 } }, () => ({ delayMs: 40 }))
    const c = client()
    const one = async (i: number) => {
      if (i % 2) {
        const stream = await c.chat.completions.create({ model: 'a/m', messages: [{ role: 'user', content: `s${i}` }], stream: true })
        let text = ''
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
        return text
      }
      return (await c.chat.completions.create({ model: 'a/m', messages: [{ role: 'user', content: `j${i}` }] })).choices[0].message.content
    }
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => one(i)))
    const ok = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<string>[]
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    expect(ok.length + failed.length).toBe(200)
    // 4 in flight + 150 waiting fit; the rest are told the queue is full.
    expect(ok.length).toBeGreaterThanOrEqual(154)
    for (const f of failed) {
      expect(f.reason.status).toBe(429)
      expect(f.reason.code).toBe('queue_full')
    }
    for (const [i, r] of results.entries()) if (r.status === 'fulfilled') expect(r.value).toBe(`a:m: ${i % 2 ? 's' : 'j'}${i}`)
    expect(up.calls).toHaveLength(ok.length)
    expect((await queueState(gw)).queues[0]).toMatchObject({ waiting: 0, active: 0 })
  })

  it('with room in the queue for all of them, all 200 concurrent clients are served', { timeout: 120_000 }, async () => {
    const { gw, up, client } = await setup({ limits: { models: { 'a/m': { concurrency: 4 } } } }, () => ({ delayMs: 40 }))
    const c = client()
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => say(c, `r${i}`)))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200)
    expect(up.calls).toHaveLength(200)
    expect((await queueState(gw)).queues[0]).toMatchObject({ waiting: 0, active: 0 })
  })

  it('GET /v1/queue answers (empty) when nothing is capped, and needs an API key like the rest of /v1', async () => {
    const { gw } = await setup({ server: { apiKeys: ['k'] } })
    expect((await fetch(`${gw.baseURL}/queue`)).status).toBe(401)
    expect(await queueState(gw, 'k')).toEqual({ object: 'queue', enabled: true, waiting: 0, max_size: 1000, queues: [] })
  })
})

describe('queue config', () => {
  it('refuses mistakes at start', async () => {
    await expect(startGateway({ queue: { maxWait: 5 } })).rejects.toThrow(/queue.*maxWait/)
    await expect(startGateway({ queue: { defaultPriority: 'urgent' } })).rejects.toThrow(/queue\.defaultPriority/)
  })
})

