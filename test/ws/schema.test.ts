import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { connectWs } from '../helpers/ws-client.js'
import { root } from '../runtimes/spawn.js'

/** openapi/websocket.schema.json describes the frames the gateway really sends and accepts. */
const schema = JSON.parse(readFileSync(join(root, 'openapi', 'websocket.schema.json'), 'utf8'))
const ajv = new Ajv2020({ strict: false, allErrors: true })
ajv.addSchema(schema, 'ws')
const serverFrame = ajv.getSchema('ws#/$defs/ServerFrame')!
const clientFrame = ajv.getSchema('ws#/$defs/ClientFrame')!

describe('openapi/websocket.schema.json', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({
      server: { apiKeys: ['sk-s'] },
      providers: [{ id: 'mock', type: 'mock', delayMs: 20 }],
      limits: { models: { 'mock/mock-1': { concurrency: 1 } } },
      models: { solo: { targets: ['mock/mock-2'] } },
      routing: { retries: 0, breaker: { failureThreshold: 1, cooldownMs: 60_000 } },
      websocket: { maxFrameBytes: 2048, notices: { healthPollMs: 50 } },
    })
  })
  afterAll(() => gw.close())

  it('matches every frame of a session, both ways', async () => {
    const c = await connectWs(`${gw.url}/v1/ws`, { key: 'sk-s' })
    const sent: unknown[] = []
    const send = (f: unknown) => (sent.push(f), c.send(f))
    const chat = (content: string, stream = true, model = 'mock/mock-1') => ({ model, stream, messages: [{ role: 'user', content }] })
    send({ id: 'a', type: 'request', method: 'POST', path: '/v1/chat/completions', body: chat('one two three four five') })
    await c.next((f) => f.id === 'a' && f.type === 'event')
    send({ id: 'b', type: 'request', path: '/v1/chat/completions', body: chat('queued one') })
    send({ id: 'c', type: 'request', path: '/v1/messages', body: { model: 'mock-2', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'anthropic stream' }] } })
    send({ id: 'd', type: 'request', path: '/v1/responses', body: { model: 'mock-2', stream: true, input: 'responses stream' } })
    send({ id: 'e', type: 'request', path: '/v1/chat/completions', body: chat('plain', false, 'mock-2') })
    send({ id: 'f', type: 'request', path: '/v1/messages', body: { model: 'mock-2', messages: [] } })
    send({ id: 'g', type: 'request', path: '/v1/chat/completions', headers: { 'x-gateway-priority': 'high' }, body: chat('[[mock:fail_after=1]] a b c', true, 'mock-2') })
    send({ id: 'h', type: 'request', path: '/v1/chat/completions', body: chat('[[mock:error=overloaded]] x', false, 'solo') })
    send({ id: 'i', type: 'request', path: '/v1/embeddings', body: { model: 'mock-2', input: 'vector' } })
    send({ type: 'ping', id: 9 })
    c.sendRaw('{bad')
    c.send({ id: 'big', type: 'request', path: '/v1/x', body: 'z'.repeat(3000) })
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) await c.until(id)
    await c.next((f) => f.type === 'notice')
    send({ type: 'resume', id: 'r', stream_id: c.frames.find((f) => f.id === 'a')!.stream_id, last_event_id: '3' })
    await c.until('r')
    send({ id: 'r', type: 'cancel' })
    send({ type: 'pong' })
    const types = new Set(c.frames.map((f) => f.type))
    expect([...types].sort()).toEqual(['done', 'error', 'event', 'notice', 'pong', 'queue', 'response'])
    for (const f of c.frames) expect(serverFrame(f), `${JSON.stringify(f).slice(0, 300)}\n${JSON.stringify(serverFrame.errors)}`).toBe(true)
    for (const f of sent) expect(clientFrame(f), `${JSON.stringify(f)}\n${JSON.stringify(clientFrame.errors)}`).toBe(true)
    c.close()
  })

  it('rejects what the gateway rejects', () => {
    expect(clientFrame({ id: 'x', type: 'request' })).toBe(false)
    expect(clientFrame({ id: 'x', type: 'request', path: '/v1/models', headers: { authorization: 'Bearer k' } })).toBe(false)
    expect(clientFrame({ type: 'resume' })).toBe(false)
    expect(clientFrame({ id: 'x', type: 'subscribe' })).toBe(false)
  })
})
