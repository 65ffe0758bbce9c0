import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DurableObjectNamespaceLike } from '../../src/pipeline/durable-object-limit-store.js'
import { startOpenAITarget, providerFor, type OpenAITarget } from '../helpers/openai-target.js'
import { dripText, dripUpstream, type DripUpstream } from '../helpers/drip-upstream.js'
import { sleep, waitFor } from '../helpers/upstream.js'
import { connectWs, streamedText, type Frame } from '../helpers/ws-client.js'
import { startWorkerd, type RuntimeServer } from '../runtimes/spawn.js'

/**
 * The WebSocket API on Workers with the WS_SESSIONS binding (wrangler.toml):
 * the bundle wrangler builds, in workerd, sockets held by the WsSessions
 * Durable Object of their API key. What the object adds over sockets in the
 * isolate: a stream outlives its dropped socket and is resumed whole, and
 * every socket of the key hears the notices.
 */
const KEY = 'sk-ws-do'
const OTHER = 'sk-ws-do-other'
const GRACE_SEC = 1
const TICK_MS = 30

let up: DripUpstream
let bad: OpenAITarget
let server: RuntimeServer & { mf: import('miniflare').Miniflare }

/** The prompt `<n>:<word>` streams n chunks `<word>-<i> `, one every TICK_MS. */
const words = (prompt: string) => Number(prompt.split(':')[0])
const expected = (prompt: string) => dripText(prompt.split(':')[1], words(prompt))

beforeAll(async () => {
  up = await dripUpstream((prompt) => ({ n: words(prompt), word: prompt.split(':')[1], delayMs: TICK_MS }))
  bad = await startOpenAITarget('bad', () => ({ status: 500 }))
  server = await startWorkerd(
    {
      server: { apiKeys: [KEY, OTHER] },
      providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }, providerFor(bad)],
      models: { solo: { targets: ['bad/m'] } },
      routing: { retries: 0, breaker: { failureThreshold: 1, cooldownMs: 60_000 } },
      streaming: { reconnectGraceSec: GRACE_SEC },
      websocket: { notices: { healthPollMs: 50 } },
    },
    {},
    { durableObjects: { WS_SESSIONS: 'WsSessions' } },
  )
}, 120_000)
afterAll(async () => {
  await server?.close()
  await up?.close()
  await bad?.close()
})

const url = () => `${server.url}/v1/ws`
const stream = (id: string, prompt: string) => ({ id, type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] } })
const eventsOf = (frames: Frame[], id: string) => frames.filter((f) => f.id === id && f.type === 'event')

describe('WebSocket API on workerd with the WsSessions Durable Object', () => {
  it('keeps a stream generating while its socket is gone; a resume on a new socket gets the rest, no event lost or repeated, then done', async () => {
    const prompt = '40:alive'
    const calls = up.requests.length
    const aborted = up.aborted
    const c = await connectWs(url(), { key: KEY })
    c.send(stream('r', prompt))
    await c.next((f) => f.id === 'r' && f.type === 'event' && f.event_id === 5)
    // The next socket is open before the drop, so that the resume is one frame away, well within the grace.
    const c2 = await connectWs(url(), { key: KEY })
    c.ws.terminate()
    const seen = eventsOf(c.frames, 'r')
    const last = seen.at(-1)!
    // The stream goes on without its socket (events 2.. are content chunks 0..): the resume replays some from the buffer.
    await waitFor(() => up.chunksWritten(prompt) >= last.event_id + 1, 'the stream to go on after the drop')
    c2.send({ type: 'resume', id: 'r', stream_id: last.stream_id, last_event_id: last.event_id })
    const rest = await c2.until('r')
    const events = [...seen, ...rest.filter((f) => f.type === 'event')]
    expect(events.map((f) => f.event_id)).toEqual(events.map((_, n) => n + 1))
    expect(rest.at(-1)).toEqual({ id: 'r', type: 'done', stream_id: last.stream_id })
    expect(streamedText(events)).toBe(expected(prompt))
    expect(up.requests.length - calls).toBe(1)
    expect(up.aborted).toBe(aborted)
    c2.close()
  })

  it('resumes whole a stream that finished while no socket was connected', async () => {
    const prompt = '12:quiet'
    const c = await connectWs(url(), { key: KEY })
    c.send(stream('q', prompt))
    await c.next((f) => f.id === 'q' && f.type === 'event' && f.event_id === 2)
    c.ws.terminate()
    const seen = eventsOf(c.frames, 'q')
    const last = seen.at(-1)!
    await waitFor(() => up.chunksWritten(prompt) === words(prompt), 'the upstream to write the whole answer')
    await sleep(100)
    const c2 = await connectWs(url(), { key: KEY })
    c2.send({ type: 'resume', id: 'q2', stream_id: last.stream_id, last_event_id: last.event_id })
    const rest = await c2.until('q2')
    const events = [...seen, ...rest.filter((f) => f.type === 'event')]
    expect(events.map((f) => f.event_id)).toEqual(events.map((_, n) => n + 1))
    expect(rest.at(-1)).toMatchObject({ type: 'done' })
    expect(streamedText(events)).toBe(expected(prompt))
    c2.close()
  })

  it('stops a stream nobody resumes after the reconnect grace: the upstream sees the abort', async () => {
    const prompt = '300:forgotten'
    const aborted = up.aborted
    const c = await connectWs(url(), { key: KEY })
    c.send(stream('f', prompt))
    await c.next((f) => f.id === 'f' && f.type === 'event' && f.event_id === 3)
    c.ws.terminate()
    const t0 = Date.now()
    await waitFor(() => up.aborted > aborted, 'the upstream to see the abort')
    const waited = Date.now() - t0
    expect(up.aborted - aborted).toBe(1)
    expect(waited).toBeGreaterThanOrEqual(GRACE_SEC * 1000 - 100)
    expect(up.chunksWritten(prompt)).toBeLessThan(words(prompt))
  })

  it("does not let another key resume a stream (its socket lands in its own object): 404 stream_not_found", async () => {
    const c = await connectWs(url(), { key: KEY })
    c.send(stream('mine', '10:private'))
    const [first] = await Promise.all([c.next((f) => f.id === 'mine' && f.type === 'event'), c.until('mine')])
    const thief = await connectWs(url(), { key: OTHER })
    thief.send({ type: 'resume', id: 't', stream_id: first.stream_id, last_event_id: 0 })
    const [answer] = await thief.until('t')
    expect(answer).toMatchObject({ type: 'error', status: 404, error: { error: { code: 'stream_not_found' } } })
    c.close()
    thief.close()
  })

  it("pushes provider_health to every socket of the key, not only the one whose request tripped the breaker", async () => {
    const c1 = await connectWs(url(), { key: KEY })
    const c2 = await connectWs(url(), { key: KEY })
    await sleep(100)
    c1.send({ id: 1, type: 'request', path: '/v1/chat/completions', body: { model: 'solo', messages: [{ role: 'user', content: 'x' }] } })
    expect((await c1.until(1))[0]).toMatchObject({ type: 'error', status: 502, error: { error: { type: 'upstream_error' } } })
    for (const c of [c1, c2]) {
      const notice = await c.next((f) => f.type === 'notice' && f.event === 'provider_health')
      expect(notice).toMatchObject({ type: 'notice', event: 'provider_health', target: 'bad/m', provider: 'bad', state: 'open', previous: 'closed', consecutive_failures: 1 })
    }
    c1.close()
    c2.close()
  })

  it('refuses hand-overs that do not come from the Worker: 426 without an upgrade, 400 without a valid identity', async () => {
    const ns = (await server.mf.getDurableObjectNamespace('WS_SESSIONS')) as unknown as DurableObjectNamespaceLike
    const stub = () => ns.get(ns.idFromName('probe'))
    const plain = await stub().fetch('https://ws-sessions.internal/connect')
    expect(plain.status).toBe(426)
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('upgrade_required')
    for (const identity of [undefined, 'not json', '{"keyId":7,"isAdmin":false}']) {
      const headers: Record<string, string> = { upgrade: 'websocket' }
      if (identity !== undefined) headers['x-lmgw-ws-identity'] = identity
      const res = await stub().fetch('https://ws-sessions.internal/connect', { headers })
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_identity')
    }
    expect((await stub().fetch('https://ws-sessions.internal/elsewhere')).status).toBe(404)
  })
})

describe('WebSocket API on workerd with WS_SESSIONS bound to the wrong class', () => {
  it('fails the handshake with 503 websocket_sessions_unavailable instead of accepting a socket that cannot run', async () => {
    const wrong = await startWorkerd({ server: { apiKeys: [KEY] }, providers: [{ id: 'mock', type: 'mock' }] }, {}, { durableObjects: { WS_SESSIONS: 'RateLimitCounter' } })
    try {
      await expect(connectWs(`${wrong.url}/v1/ws`, { key: KEY })).rejects.toThrow('handshake answered 503')
      // A bad key is still closed with 4401 in the Worker, before the object is asked.
      const refused = await connectWs(`${wrong.url}/v1/ws`, { key: 'sk-nope' })
      expect((await refused.closed).code).toBe(4401)
    } finally {
      await wrong.close()
    }
  }, 60_000)
})
