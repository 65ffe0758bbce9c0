import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway } from '../helpers/gateway.js'
import { dripText, dripUpstream, type DripUpstream } from '../helpers/drip-upstream.js'
import { waitFor } from '../helpers/upstream.js'
import { connectWs, streamedText, type Frame } from '../helpers/ws-client.js'
import { root, startBun, startWorkerd, type RuntimeServer } from '../runtimes/spawn.js'

/**
 * The WebSocket API on each runtime's own socket: Node (ws on the
 * @hono/node-server server), Bun (Bun.serve websocket) and workerd
 * (WebSocketPair; with the WS_SESSIONS binding of wrangler.toml the sockets
 * live in the WsSessions Durable Object, without it in the isolate), each driven by the `ws` client and by Bun's global
 * WebSocket, against a mock provider and an OpenAI-compatible upstream on loopback.
 */
const KEY = 'sk-ws-rt'
const WORDS = 30

let up: DripUpstream
beforeAll(async () => {
  // The stream the cancel test stops is too long to end by itself: only the cancel can end it.
  up = await dripUpstream((prompt) => ({ n: prompt === 'cut' ? 10_000 : WORDS, delayMs: 25 }))
})
afterAll(() => up.close())

const expected = (prompt: string) => dripText(prompt, WORDS)

const config = () => ({
  server: { apiKeys: [KEY] },
  providers: [
    { id: 'mock', type: 'mock', delayMs: 5 },
    { id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] },
  ],
  // Longer than any wait here: an upstream abort the tests see is the cancel's own, never the grace's end.
  streaming: { reconnectGraceSec: 120 },
  websocket: { maxFrameBytes: 4096 },
})

const runtimes: Array<[string, (cfg: unknown) => Promise<RuntimeServer>]> = [
  ['node', async (cfg) => startGateway(cfg as Record<string, unknown>)],
  ['bun', startBun],
  ['workerd', (cfg) => startWorkerd(cfg, {}, { durableObjects: { WS_SESSIONS: 'WsSessions' } })],
  ['workerd without WS_SESSIONS', startWorkerd],
]

function bunGlobalClient(url: string): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(root, 'node_modules', '.bin', 'bun'), ['test/runtimes/ws-global-client.ts', url, KEY], { cwd: root, env: { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (err += d))
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`)
        resolve(JSON.parse(out.trim().split('\n').at(-1)!))
      } catch (e) {
        reject(new Error(`bun client failed (${(e as Error).message}): ${out} ${err}`))
      }
    })
  })
}

describe.each(runtimes)('WebSocket API on %s', (_name, start) => {
  let server: RuntimeServer
  let url: string
  beforeAll(async () => {
    server = await start(config())
    url = `${server.url}/v1/ws`
  }, 90_000)
  afterAll(() => server?.close())

  it('closes with 4401 on a missing or wrong key (header or subprotocol), without answering frames', async () => {
    for (const opts of [{}, { key: 'sk-nope' }, { protocols: ['bearer.sk-nope', 'lm-gateway.v1'] }]) {
      const c = await connectWs(url, opts)
      c.send({ type: 'ping' })
      expect((await c.closed).code).toBe(4401)
      expect(c.frames).toEqual([])
    }
  })

  it('runs 10 interleaved streams on one socket, each with its own content', async () => {
    const c = await connectWs(url, { protocols: [`bearer.${KEY}`, 'lm-gateway.v1'] })
    expect(c.protocol).toBe('lm-gateway.v1')
    const prompt = (i: number) => `runtime stream ${i} alpha beta gamma delta epsilon`
    for (let i = 0; i < 10; i++) c.send({ id: `s${i}`, type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', stream: true, messages: [{ role: 'user', content: prompt(i) }] } })
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => c.until(`s${i}`)))
    all.forEach((frames, i) => {
      expect(streamedText(frames)).toBe(prompt(i))
      expect(frames.at(-1)!.type).toBe('done')
    })
    const order = c.frames.filter((f) => f.type === 'event').map((f) => f.id)
    expect(order.filter((id, n) => n > 0 && id !== order[n - 1]).length).toBeGreaterThan(20)
    c.close()
  })

  it('cancels one stream mid-way: the upstream sees the abort, the others finish', async () => {
    const c = await connectWs(url, { key: KEY })
    const before = up.aborted
    for (const id of ['a', 'cut', 'b']) c.send({ id, type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: id }] } })
    await c.next((f) => f.id === 'cut' && f.type === 'event' && f.data.choices[0]?.delta?.content === 'cut-1 ')
    c.send({ id: 'cut', type: 'cancel' })
    const [a, cut, b] = await Promise.all(['a', 'cut', 'b'].map((id) => c.until(id)))
    expect(cut.at(-1)).toMatchObject({ type: 'error', status: 499 })
    // No reconnect grace for a cancel: the upstream call is aborted, not left to run on.
    await waitFor(() => up.aborted > before, 'the upstream to see the abort')
    expect(up.aborted - before).toBe(1)
    expect(up.chunksWritten('cut')).toBeLessThan(10_000)
    expect(streamedText(a)).toBe(expected('a'))
    expect(streamedText(b)).toBe(expected('b'))
    c.close()
  })

  it('answers invalid frames (non-JSON, unknown type, oversize, unknown path) with error frames and keeps the socket', async () => {
    const c = await connectWs(url, { key: KEY })
    const want: Array<[unknown, Partial<Frame>]> = [
      ['{nope', { status: 400, error: { error: { code: 'invalid_json' } } }],
      [{ id: 1, type: 'bogus' }, { id: 1, status: 400, error: { error: { code: 'unknown_frame_type' } } }],
      [{ id: 2, type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'y'.repeat(6000) }] } }, { id: 2, status: 413, error: { error: { code: 'frame_too_large' } } }],
      [{ id: 3, type: 'request', path: '/v1/unknown', body: {} }, { id: 3, status: 404, error: { error: { code: 'unknown_route' } } }],
    ]
    for (const [frame, expectation] of want) {
      const from = c.frames.length
      if (typeof frame === 'string') c.sendRaw(frame)
      else c.send(frame)
      expect(await c.next(() => true, 5000, from)).toMatchObject({ type: 'error', ...expectation })
    }
    c.send({ id: 4, type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'alive' }] } })
    expect((await c.until(4))[0]).toMatchObject({ type: 'response', status: 200, body: { choices: [{ message: { content: 'alive' } }] } })
    c.close()
  })

  it('resumes a stream after a forced disconnect with no event lost or repeated', async () => {
    const c = await connectWs(url, { key: KEY })
    const calls = up.requests.length
    c.send({ id: 'r', type: 'request', path: '/v1/chat/completions', body: { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'again' }] } })
    await c.next((f) => f.id === 'r' && f.type === 'event' && f.event_id === 8)
    c.ws.terminate()
    const seen = c.frames.filter((f) => f.id === 'r' && f.type === 'event')
    const last = seen.at(-1)!
    const c2 = await connectWs(url, { key: KEY })
    c2.send({ type: 'resume', id: 'r', stream_id: last.stream_id, last_event_id: last.event_id })
    const rest = await c2.until('r')
    const events = [...seen, ...rest.filter((f) => f.type === 'event')]
    expect(events.map((f) => f.event_id)).toEqual(events.map((_, n) => n + 1))
    expect(up.requests.length - calls).toBe(1)
    if (_name === 'workerd without WS_SESSIONS') {
      // Sockets accepted in the isolate: Workers end a closed socket's work, so the stream stops at the drop, and the resume gives what was generated, then the cancellation.
      expect(rest.at(-1)).toMatchObject({ type: 'error', status: 499 })
      expect(expected('again').startsWith(streamedText(events))).toBe(true)
    } else {
      expect(rest.at(-1)!.type).toBe('done')
      expect(streamedText(events)).toBe(expected('again'))
    }
    c2.close()
  })

  it('works with Bun\'s global WebSocket (the browser way: subprotocol key)', async () => {
    const out = await bunGlobalClient(server.url)
    expect(out.hasGlobalWebSocket).toBe(true)
    expect(out.badKeyClose.code).toBe(4401)
    expect(out.protocol).toBe('lm-gateway.v1')
    expect(out.texts).toEqual({ g0: 'global client g0 one two three', g1: 'global client g1 one two three', g2: 'global client g2 one two three' })
    expect(out.keptAfterBadFrame).toBe(true)
  }, 30_000)
})
