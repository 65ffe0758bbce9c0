import type { Socket } from 'node:net'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { sleep, waitFor } from '../helpers/upstream.js'
import { connectWs, streamedText, type Frame } from '../helpers/ws-client.js'
import { startOpenAITarget, providerFor, type OpenAITarget } from '../helpers/openai-target.js'
import { dripText, dripUpstream } from '../helpers/drip-upstream.js'

const KEY = 'sk-ws-test'
const OTHER_KEY = 'sk-ws-other'

/** An OpenAI-compatible upstream streaming `n` word chunks with `delayMs` between them (the real chunk shape), counting aborts; a cancelled stream (`stop`) is too long to end by itself. */
const slowUpstream = (n: number, delayMs: number) => dripUpstream((prompt) => ({ n: prompt === 'stop' ? 100_000 : n, delayMs }))

const expected = dripText

describe('WebSocket API on Node: auth', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: [KEY] }, providers: [{ id: 'mock', type: 'mock' }] })
  })
  afterAll(() => gw.close())

  it('closes with 4401 before reading any frame when the key is missing or wrong', async () => {
    for (const opts of [{}, { key: 'sk-wrong' }, { protocols: ['bearer.sk-wrong', 'lm-gateway.v1'] }]) {
      const c = await connectWs(`${gw.url}/v1/ws`, opts)
      c.send({ id: 'r1', type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] } })
      const closed = await c.closed
      expect(closed.code).toBe(4401)
      expect(closed.reason).toMatch(opts && 'key' in opts ? /Incorrect API key/ : /Incorrect API key|Missing API key/)
      expect(c.frames).toEqual([])
    }
    const none = await connectWs(`${gw.url}/v1/ws`)
    expect((await none.closed).reason).toMatch(/^Missing API key/)
  })

  it('accepts the key as Authorization header, x-api-key, or the subprotocol bearer.<key> (echoing lm-gateway.v1)', async () => {
    const viaHeader = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const viaXApiKey = await connectWs(`${gw.url}/v1/ws`, { headers: { 'x-api-key': KEY } })
    const viaProtocol = await connectWs(`${gw.url}/v1/ws`, { protocols: [`bearer.${KEY}`, 'lm-gateway.v1'] })
    expect(viaProtocol.protocol).toBe('lm-gateway.v1')
    for (const c of [viaHeader, viaXApiKey, viaProtocol]) {
      c.send({ type: 'ping', id: 7 })
      expect(await c.next((f) => f.type === 'pong')).toEqual({ type: 'pong', id: 7 })
      c.close()
    }
  })

  it('answers a plain GET /v1/ws with 426 in the OpenAI error shape', async () => {
    const res = await fetch(`${gw.url}/v1/ws`, { headers: { authorization: `Bearer ${KEY}` } })
    expect(res.status).toBe(426)
    expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'upgrade_required' })
  })

  it('answers 404 websocket_disabled when websocket.enabled is false, and names a bad websocket setting at start-up', async () => {
    const off = await startGateway({ server: { apiKeys: [KEY] }, websocket: { enabled: false } })
    try {
      const err = await connectWs(`${off.url}/v1/ws`, { key: KEY }).catch((e: Error) => e)
      expect(String(err)).toMatch(/handshake answered 404/)
      const res = await fetch(`${off.url}/v1/ws`, { headers: { authorization: `Bearer ${KEY}` } })
      expect((await res.json()).error.code).toBe('websocket_disabled')
    } finally {
      await off.close()
    }
    await expect(startGateway({ websocket: { maxInFlight: 0 } })).rejects.toThrow(/websocket\.maxInFlight/)
  })

  it('refuses a handshake from an address outside ipAllow with the app\'s 403, before upgrading', async () => {
    const locked = await startGateway({ server: { apiKeys: [KEY], ipAllow: ['10.0.0.0/8'] }, providers: [{ id: 'mock', type: 'mock' }] })
    try {
      const err = await connectWs(`${locked.url}/v1/ws`, { key: KEY }).catch((e: Error) => e)
      expect(String(err)).toMatch(/handshake answered 403/)
    } finally {
      await locked.close()
    }
  })
})

describe('WebSocket API on Node: requests', () => {
  let gw: RunningGateway
  let up: Awaited<ReturnType<typeof slowUpstream>>
  beforeAll(async () => {
    up = await slowUpstream(30, 20)
    gw = await startGateway({
      server: { apiKeys: [KEY, OTHER_KEY] },
      providers: [
        { id: 'mock', type: 'mock', delayMs: 5 },
        { id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] },
      ],
      // Longer than any wait here: an upstream abort a test sees is the cancel's own, never the grace's end.
      streaming: { reconnectGraceSec: 120 },
      websocket: { maxFrameBytes: 4096 },
    })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('runs 10 streams on one socket at once, interleaved, each with its own content and a done frame', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const ids = Array.from({ length: 10 }, (_, i) => `s${i}`)
    const prompt = (i: number) => `stream number ${i} says ${'word '.repeat(8)}end`
    ids.forEach((id, i) => c.send({ id, type: 'request', method: 'POST', path: '/v1/chat/completions', body: { model: 'mock-1', stream: true, messages: [{ role: 'user', content: prompt(i) }] } }))
    const all = await Promise.all(ids.map((id) => c.until(id)))
    all.forEach((frames, i) => {
      expect(streamedText(frames)).toBe(prompt(i))
      expect(frames.at(-1)).toMatchObject({ id: ids[i], type: 'done' })
      const events = frames.filter((f) => f.type === 'event')
      expect(events.every((f) => f.event === 'message' && typeof f.stream_id === 'string')).toBe(true)
      // Event ids count from 1 without gaps, as in the SSE stream.
      expect(events.map((f) => f.event_id)).toEqual(events.map((_, n) => n + 1))
      expect(events.at(-1)!.data.choices[0].finish_reason).toBe('stop')
    })
    // Interleaved: the frames of one stream do not all come before the next one's.
    const order = c.frames.filter((f) => f.type === 'event').map((f) => f.id)
    const switches = order.filter((id, n) => n > 0 && id !== order[n - 1]).length
    expect(switches).toBeGreaterThan(20)
    c.close()
  })

  it('answers a non-streaming request with one response frame carrying the HTTP body and gateway headers', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    c.send({ id: 1, type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'plain answer' }] } })
    const [res] = await c.until(1)
    expect(res).toMatchObject({ id: 1, type: 'response', status: 200, body: { object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'plain answer' } }] } })
    expect(res.headers['x-gateway-model']).toBe('mock/mock-1')
    expect(res.headers['x-request-id']).toMatch(/.+/)
    c.send({ id: 2, type: 'request', method: 'GET', path: '/v1/models' })
    const [models] = await c.until(2)
    expect(models.body.data.map((m: { id: string }) => m.id)).toContain('mock/mock-1')
    c.close()
  })

  it('speaks the Anthropic dialect on /v1/messages: event names and Anthropic-shaped errors', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    c.send({ id: 'a', type: 'request', path: '/v1/messages', body: { model: 'mock-1', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hello anthropic' }] } })
    const frames = await c.until('a')
    expect(frames.filter((f) => f.type === 'event').map((f) => f.event)).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
    expect(frames.filter((f) => f.type === 'event').every((f) => f.data.type === f.event)).toBe(true)
    expect(streamedText(frames)).toBe('hello anthropic')
    c.send({ id: 'b', type: 'request', path: '/v1/messages', body: { model: 'mock-1', messages: [{ role: 'user', content: 'no max_tokens' }] } })
    const [bad] = await c.until('b')
    expect(bad).toMatchObject({ id: 'b', type: 'error', status: 400, error: { type: 'error', error: { type: 'invalid_request_error' } } })
    expect(bad.error.error.message).toMatch(/max_tokens/)
    c.close()
  })

  it('answers pipeline errors with the HTTP status and the dialect\'s error body', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    c.send({ id: 'x', type: 'request', path: '/v1/chat/completions', body: { model: 'no-such-model', stream: true, messages: [{ role: 'user', content: 'x' }] } })
    const [err] = await c.until('x')
    expect(err).toMatchObject({ type: 'error', status: 404, error: { error: { code: 'model_not_found', type: 'invalid_request_error' } } })
    c.send({ id: 'y', type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', stream: true, messages: [{ role: 'user', content: '[[mock:fail_after=2]] one two three four' }] } })
    const frames = await c.until('y')
    expect(frames.filter((f) => f.type === 'event').length).toBeGreaterThan(0)
    expect(frames.at(-1)).toMatchObject({ type: 'error', status: 502, error: { error: { type: 'upstream_error' } } })
    c.close()
  })

  it('cancels one stream mid-way: the upstream sees the abort at once, the others finish', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const abortedBefore = up.aborted
    for (const id of ['keep1', 'stop', 'keep2']) c.send({ id, type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: id }] } })
    await c.next((f) => f.id === 'stop' && f.type === 'event' && f.data.choices[0]?.delta?.content === 'stop-2 ')
    c.send({ id: 'stop', type: 'cancel' })
    const [keep1, stop, keep2] = await Promise.all(['keep1', 'stop', 'keep2'].map((id) => c.until(id)))
    expect(stop.at(-1)).toMatchObject({ id: 'stop', type: 'error', status: 499, error: { error: { type: 'cancelled', code: 'client_cancelled' } } })
    // No reconnect grace (120 s here, longer than the test may run) for a cancel: the upstream connection is closed, the stream stops.
    await waitFor(() => up.aborted > abortedBefore, 'the upstream to see the abort')
    expect(up.aborted - abortedBefore).toBe(1)
    expect(up.chunksWritten('stop')).toBeLessThan(100_000)
    expect(streamedText(keep1)).toBe(expected('keep1', 30))
    expect(streamedText(keep2)).toBe(expected('keep2', 30))
    expect(keep1.at(-1)!.type).toBe('done')
    // Cancelling again, or an id never sent, is a no-op.
    c.send({ id: 'stop', type: 'cancel' })
    c.send({ id: 'nope', type: 'cancel' })
    c.send({ type: 'ping' })
    await c.next((f) => f.type === 'pong')
    expect(c.frames.filter((f) => f.id === 'stop' && f.type === 'error')).toHaveLength(1)
    c.close()
  })

  it('answers invalid frames with an error frame each and keeps the socket', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const n = () => c.frames.length
    const cases: Array<[() => void, Partial<Frame>]> = [
      [() => c.sendRaw('{not json'), { status: 400, error: { error: { code: 'invalid_json' } } }],
      [() => c.send({ id: 'u', type: 'subscribe' }), { id: 'u', status: 400, error: { error: { code: 'unknown_frame_type', param: 'type' } } }],
      [() => c.send({ id: 'big', type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'x'.repeat(5000) }] } }), { id: 'big', status: 413, error: { error: { code: 'frame_too_large' } } }],
      [() => c.send({ id: 'p', type: 'request', path: '/v1/nowhere', body: {} }), { id: 'p', status: 404, error: { error: { code: 'unknown_route' } } }],
      [() => c.send({ id: 'q', type: 'request', path: '/health' }), { id: 'q', status: 404, error: { error: { code: 'unknown_route', param: 'path' } } }],
      [() => c.send({ id: 'w', type: 'request', path: '/v1/ws' }), { id: 'w', status: 404 }],
      [() => c.send({ id: 'm', type: 'request' }), { id: 'm', status: 400, error: { error: { code: 'invalid_frame', param: 'path' } } }],
      [() => c.send({ id: 'h', type: 'request', path: '/v1/models', method: 'GET', headers: { authorization: 'Bearer other' } }), { id: 'h', status: 400, error: { error: { code: 'invalid_frame', param: 'headers.authorization' } } }],
      [() => c.send({ type: 'request', path: '/v1/models' }), { status: 400, error: { error: { param: 'id' } } }],
      [() => c.send([1, 2]), { status: 400, error: { error: { code: 'invalid_frame' } } }],
      [() => c.sendRaw(Buffer.from('{"type":"ping"}'), true), { status: 400, error: { error: { code: 'invalid_frame' } } }],
    ]
    for (const [send, want] of cases) {
      const from = n()
      send()
      const f = await c.next(() => true, 3000, from)
      expect(f).toMatchObject({ type: 'error', ...want })
      expect(c.ws.readyState).toBe(WebSocket.OPEN)
    }
    // The socket still works.
    c.send({ id: 'ok', type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'still here' }] } })
    expect((await c.until('ok'))[0].body.choices[0].message.content).toBe('still here')
    c.close()
  })

  it('refuses an id already in flight with 409 and leaves the running request alone', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const body = { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'dup' }] }
    c.send({ id: 'd', type: 'request', path: '/v1/chat/completions', body })
    await c.next((f) => f.id === 'd' && f.type === 'event')
    c.send({ id: 'd', type: 'request', path: '/v1/chat/completions', body })
    const refused = await c.next((f) => f.id === 'd' && f.type === 'error')
    expect(refused).toMatchObject({ status: 409, error: { error: { code: 'duplicate_id', param: 'id' } } })
    await c.next((f) => f.id === 'd' && f.type === 'done')
    const frames = c.frames.filter((f) => f.id === 'd')
    expect(frames.filter((f) => f.type === 'error')).toHaveLength(1)
    expect(frames.at(-1)!.type).toBe('done')
    expect(streamedText(frames)).toBe(expected('dup', 30))
    c.close()
  })

  it('resumes a stream on a new socket after a forced disconnect: no event lost or repeated, one upstream call', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    const calls = up.requests.length
    c.send({ id: 'r', type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'resumed' }] } })
    await c.next((f) => f.id === 'r' && f.type === 'event' && f.event_id === 6)
    c.ws.terminate()
    await c.closed
    const seen = c.frames.filter((f) => f.id === 'r' && f.type === 'event')
    const last = seen.at(-1)!
    // The stream goes on without a socket (events 2.. are content chunks 0..): the resume replays some from the buffer.
    await waitFor(() => up.chunksWritten('resumed') >= last.event_id + 2, 'the stream to go on after the drop')
    const c2 = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    c2.send({ type: 'resume', id: 'r2', stream_id: last.stream_id, last_event_id: last.event_id })
    const rest = await c2.until('r2')
    expect(rest.at(-1)).toMatchObject({ id: 'r2', type: 'done' })
    const events = [...seen, ...rest.filter((f) => f.type === 'event')]
    expect(events.map((f) => f.event_id)).toEqual(events.map((_, n) => n + 1))
    expect(streamedText(events)).toBe(expected('resumed', 30))
    expect(up.requests.length - calls).toBe(1)
    // Without an id the events come under the stream id; from 0 the whole stream is replayed.
    c2.send({ type: 'resume', stream_id: last.stream_id, last_event_id: 0 })
    const replay = await c2.until(last.stream_id)
    expect(streamedText(replay)).toBe(expected('resumed', 30))
    c2.send({ type: 'resume', id: 'gone', stream_id: 'str_doesnotexist', last_event_id: 0 })
    expect((await c2.until('gone'))[0]).toMatchObject({ type: 'error', status: 404, error: { error: { code: 'stream_not_found' } } })
    c2.close()
    // Another key's socket cannot resume it.
    const other = await connectWs(`${gw.url}/v1/ws`, { key: OTHER_KEY })
    other.send({ type: 'resume', id: 'steal', stream_id: last.stream_id, last_event_id: 0 })
    expect((await other.until('steal'))[0]).toMatchObject({ type: 'error', status: 404, error: { error: { code: 'stream_not_found' } } })
    other.close()
  })
})

describe('WebSocket API on Node: limits, backpressure, liveness', () => {
  it('limits requests in flight and the frame rate per socket, with clear errors', async () => {
    const gw = await startGateway({ server: { apiKeys: [KEY] }, providers: [{ id: 'mock', type: 'mock', delayMs: 30 }], websocket: { maxInFlight: 2, messagesPerSec: 0.001, burst: 6 } })
    try {
      const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
      const body = { model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'a b c d' }] }
      for (const id of [1, 2, 3]) c.send({ id, type: 'request', path: '/v1/chat/completions', body })
      const third = await c.next((f) => f.id === 3)
      expect(third).toMatchObject({ type: 'error', status: 429, error: { error: { code: 'too_many_in_flight', type: 'rate_limit_error' } } })
      for (let i = 0; i < 4; i++) c.send({ type: 'ping', id: `p${i}` })
      // 6 frames spent the burst; at 0.001 a second none comes back during the test, however slowly it runs.
      const limited = await c.next((f) => f.type === 'error' && f.id === 'p3')
      expect(limited).toMatchObject({ status: 429, error: { error: { code: 'frame_rate_exceeded' } } })
      expect(c.frames.filter((f) => f.type === 'pong')).toHaveLength(3)
      const [one, two] = await Promise.all([c.until(1), c.until(2)])
      expect(streamedText(one)).toBe('a b c d')
      expect(streamedText(two)).toBe('a b c d')
      c.close()
    } finally {
      await gw.close()
    }
  })

  it('stops reading the upstream while the socket cannot take more (backpressure), then delivers everything', async () => {
    // Far more than the kernel's loopback buffers hold, so only backpressure can stall the upstream.
    const N = 20_000
    const MAX_BUFFERED = 16 * 1024
    const prompt = 'x'.repeat(1000)
    const up = await dripUpstream((p) => ({ n: p === prompt ? N : 200, delayMs: 0 }))
    const gw = await startGateway({ server: { apiKeys: [KEY] }, providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }], websocket: { maxBufferedBytes: MAX_BUFFERED } })
    // The gateway's end of each socket, in the order they open: its write buffer is the socket's bufferedAmount.
    const serverEnds: Socket[] = []
    gw.server.on('upgrade', (_req, s: Socket) => serverEnds.push(s))
    const chat = (id: string, content: string) => ({ id, type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content }] } })
    try {
      const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
      const held = serverEnds[0]
      const other = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
      // The client stops reading: the kernel buffers fill, then the gateway's send buffer.
      const clientEnd = (c.ws as unknown as { _socket: Socket })._socket
      clientEnd.pause()
      c.send(chat('bp', prompt))
      // Stalled: the send buffer is over the threshold and the upstream's write is blocked; and it stays so (the gateway
      // sends not one more frame on this socket, the upstream writes not one more chunk) while another socket's whole
      // stream goes through the same gateway and upstream. Until it settles, the pipeline and kernel buffers are filling.
      let stalledAt: number | undefined
      for (let round = 0; stalledAt === undefined; round++) {
        await waitFor(() => (held.writableLength > MAX_BUFFERED && up.blocked(prompt)) || up.chunksWritten(prompt) === N, 'the send buffer over the threshold and the upstream blocked')
        const written = up.chunksWritten(prompt)
        const buffered = held.writableLength
        expect(written, 'the upstream wrote the whole answer while the client read nothing').toBeLessThan(N)
        other.send(chat(`o${round}`, `other${round}`))
        expect(streamedText(await other.until(`o${round}`))).toBe(expected(`other${round}`, 200))
        if (held.writableLength === buffered && up.blocked(prompt) && up.chunksWritten(prompt) === written) stalledAt = written
      }
      expect(held.writableLength).toBeGreaterThan(MAX_BUFFERED)
      // Most of the answer was never read from the upstream (it is not piling up in the gateway).
      expect(stalledAt).toBeLessThan(N / 2)
      clientEnd.resume()
      const frames = await c.until('bp', 60_000)
      expect(frames.at(-1)!.type).toBe('done')
      const events = frames.filter((f) => f.type === 'event')
      expect(events.map((f) => f.event_id)).toEqual(events.map((_, i) => i + 1))
      expect(streamedText(frames)).toBe(expected(prompt, N))
      c.close()
      other.close()
    } finally {
      await gw.close()
      await up.close()
    }
  }, 90_000)

  it('pings a silent socket and closes it when no pong comes back; a live one stays open', async () => {
    const gw = await startGateway({ server: { apiKeys: [KEY] }, providers: [{ id: 'mock', type: 'mock' }], websocket: { pingIntervalSec: 0.2, pongTimeoutSec: 0.2 } })
    try {
      const live = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
      let livePings = 0
      live.ws.on('ping', () => livePings++)
      const dead = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, { headers: { authorization: `Bearer ${KEY}` }, autoPong: false })
      let pings = 0
      dead.on('ping', () => pings++)
      const closed = new Promise<number>((resolve) => dead.on('close', (code) => resolve(code)))
      const code = await closed
      // Dropped without a closing handshake after its one unanswered ping (a socket that owes a pong is not pinged again).
      expect(pings).toBe(1)
      expect(code).toBe(1006)
      // The live socket answered its pings (ws does by itself): pinged again after each answer, and still open.
      await waitFor(() => livePings >= 3, 'the live socket to be pinged three times')
      expect(live.ws.readyState).toBe(WebSocket.OPEN)
      expect(gw.gateway.webSockets!.size).toBe(1)
      live.close()
    } finally {
      await gw.close()
    }
  })

  it('sends queue frames while a streamed request waits in the gateway queue', async () => {
    const gw = await startGateway({ server: { apiKeys: [KEY] }, providers: [{ id: 'mock', type: 'mock', delayMs: 40 }], limits: { models: { 'mock/mock-1': { concurrency: 1 } } } })
    try {
      const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
      const body = (t: string) => ({ model: 'mock/mock-1', stream: true, messages: [{ role: 'user', content: t }] })
      c.send({ id: 'first', type: 'request', path: '/v1/chat/completions', body: body('one two three four five six') })
      await c.next((f) => f.id === 'first' && f.type === 'event')
      c.send({ id: 'second', type: 'request', path: '/v1/chat/completions', body: body('after the queue') })
      const q = await c.next((f) => f.id === 'second' && f.type === 'queue')
      expect(q).toEqual({ id: 'second', type: 'queue', position: 1, wait_ms: expect.toBeOneOf([null, expect.any(Number)]) })
      const frames = await c.until('second')
      expect(streamedText(frames)).toBe('after the queue')
      // Progress frames are not passed on unless asked for.
      expect(frames.some((f) => f.event === 'progress')).toBe(false)
      c.close()
    } finally {
      await gw.close()
    }
  })
})

describe('WebSocket API on Node: notices', () => {
  let target: OpenAITarget
  let gw: RunningGateway
  beforeAll(async () => {
    target = await startOpenAITarget('a', () => ({ status: 500 }))
    gw = await startGateway({
      server: { apiKeys: [KEY] },
      providers: [providerFor(target), { id: 'vscode', type: 'vscode-bridge', url: 'http://127.0.0.1:9', token: 'bridge-token', models: [] }],
      models: { solo: { targets: ['a/m'] } },
      routing: { retries: 0, breaker: { failureThreshold: 1, cooldownMs: 60_000 } },
      websocket: { notices: { healthPollMs: 50 } },
    })
  })
  afterAll(async () => {
    await gw.close()
    await target.close()
  })

  it('pushes provider_health when a target\'s circuit opens', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    c.send({ id: 1, type: 'request', path: '/v1/chat/completions', body: { model: 'solo', messages: [{ role: 'user', content: 'x' }] } })
    expect((await c.until(1))[0]).toMatchObject({ type: 'error', status: 502, error: { error: { type: 'upstream_error' } } })
    const notice = await c.next((f) => f.type === 'notice' && f.event === 'provider_health')
    expect(notice).toMatchObject({ type: 'notice', event: 'provider_health', target: 'a/m', provider: 'a', state: 'open', previous: 'closed', consecutive_failures: 1 })
    c.close()
  })

  it('pushes models_changed when a reverse-mode bridge connects and when it reports new models', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: KEY })
    await sleep(100)
    let models = [{ id: 'copilot-gpt-4o', name: 'GPT-4o', vendor: 'copilot', family: 'gpt-4o', version: '1', maxInputTokens: 64000, capabilities: { imageInput: true, toolCalling: true } }]
    const bridge = new WebSocket(`${gw.url.replace('http', 'ws')}/bridge/connect`, { headers: { authorization: 'Bearer bridge-token' } })
    bridge.on('message', (data) => {
      const f = JSON.parse(data.toString())
      if (f.type === 'request' && f.path === '/v1/models') bridge.send(JSON.stringify({ id: f.id, type: 'response', status: 200, body: { models } }))
    })
    await new Promise((r) => bridge.once('open', r))
    const first = await c.next((f) => f.type === 'notice' && f.event === 'models_changed')
    expect(first).toMatchObject({ provider: 'vscode', added: ['vscode/copilot-gpt-4o'], removed: [] })
    const from = c.frames.length
    models = [...models, { ...models[0], id: 'copilot-claude', family: 'claude' }]
    bridge.send(JSON.stringify({ type: 'models_changed' }))
    const second = await c.next((f) => f.type === 'notice' && f.event === 'models_changed', 5000, from)
    expect(second).toMatchObject({ provider: 'vscode', added: ['vscode/copilot-claude'], removed: [] })
    bridge.close()
    c.close()
  })
})
