import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway } from './helpers/gateway.js'
import { startUpstream, writeSse, type FakeUpstream } from './helpers/upstream.js'
import * as fx from './fixtures/openai/chat.js'
import { startBun, startWorkerd, type RuntimeServer } from './runtimes/spawn.js'

/**
 * One smoke suite, three runtimes: the same fetch handler on Node
 * (@hono/node-server), Bun (Bun.serve) and workerd (Miniflare), each with a
 * mock provider and an openai-compatible upstream on loopback.
 */
let upstream: FakeUpstream
beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
    return req.json().stream ? writeSse(res, fx.streamText) : void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.completionText))
  })
})
afterAll(() => upstream.close())

const config = () => ({
  server: { apiKeys: ['sk-rt'] },
  providers: [
    { id: 'mock', type: 'mock' },
    { id: 'up', type: 'openai-compatible', baseURL: `${upstream.url}/v1` },
  ],
})

const runtimes: Array<[string, (cfg: unknown) => Promise<RuntimeServer>]> = [
  ['node', async (cfg) => startGateway(cfg as Record<string, unknown>)],
  ['bun', startBun],
  ['workerd', startWorkerd],
]

describe.each(runtimes)('runtime %s', (_name, start) => {
  let server: RuntimeServer
  let client: OpenAI
  beforeAll(async () => {
    server = await start(config())
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-rt', maxRetries: 0 })
  }, 90_000)
  afterAll(() => server?.close())

  it('lists models', async () => {
    const ids = (await client.models.list()).data.map((m) => m.id)
    expect(ids).toContain('mock/mock-1')
    expect(ids).toContain('up/gpt-4o-mini')
  })

  it('answers a chat', async () => {
    const res = await client.chat.completions.create({ model: 'mock-1', messages: [{ role: 'user', content: 'ping from a runtime' }] })
    expect(res.choices[0].message.content).toBe('ping from a runtime')
    const up = await client.chat.completions.create({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    expect(up.choices[0].message.content).toBe('Hello, world!')
  })

  it('streams a chat', async () => {
    for (const model of ['mock-1', 'up/gpt-4o-mini']) {
      const stream = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hello, world!' }] })
      let text = ''
      let usage: unknown
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? ''
        if (c.usage) usage = c.usage
      }
      expect(text).toBe('Hello, world!')
      expect(usage).toBeTruthy()
    }
  })

  it('answers errors in OpenAI shape', async () => {
    const err = await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.error.code).toBe('model_not_found')
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 })
    expect(await bad.models.list().catch((e) => e)).toBeInstanceOf(OpenAI.AuthenticationError)
  })
})
