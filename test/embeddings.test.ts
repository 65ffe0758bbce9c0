import type { ServerResponse } from 'node:http'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { float32Base64 } from '../src/dialects/openai/embeddings.js'
import type { Provider } from '../src/providers/types.js'
import * as ollama from './fixtures/ollama/api.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { sleep, startUpstream, type FakeUpstream } from './helpers/upstream.js'

/**
 * POST /v1/embeddings end to end: the real `openai` client against a gateway
 * whose providers call fake Ollama and OpenAI-compatible servers on loopback.
 * The fakes encode each input's number in its vector, so order is checkable.
 */
const vectorFor = (text: string) => [Number(text.replace(/\D/g, '') || 0), 0.5, -0.25, 1 / 3]

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
}

/** A chat-only provider (the extension point GatewayDeps.providers), for the "no embeddings API" answer. */
const chatOnly: Provider = {
  id: 'chatonly',
  type: 'chat-only',
  models: async () => [{ id: 'talker', ownedBy: 'chatonly' }],
  chat: () => new ReadableStream({ start: (c) => c.close() }),
}

describe('POST /v1/embeddings', () => {
  let ollamaUp: FakeUpstream
  let openaiUp: FakeUpstream
  let gw: RunningGateway
  let client: OpenAI
  let failOn: string | undefined

  beforeAll(async () => {
    ollamaUp = await startUpstream(async (req, res) => {
      if (req.url === '/api/tags') return json(res, 200, ollama.tags)
      if (req.url !== '/api/embed') return json(res, 404, { error: '404 page not found' })
      const body = req.json()
      if (body.model === 'not-pulled') return json(res, 404, { error: `model "${body.model}" not found, try pulling it first` })
      const input: string[] = body.input
      if (failOn && input.includes(failOn)) return json(res, 500, ollama.errors.runnerDied)
      // Answer batches out of order: later batches first.
      await sleep(Math.floor(Math.random() * 15))
      json(res, 200, { model: body.model, embeddings: input.map(vectorFor), total_duration: 1000, load_duration: 10, prompt_eval_count: input.length * 3 })
    })
    openaiUp = await startUpstream((req, res) => {
      const body = req.json()
      const input: Array<string | number[]> = body.input
      json(res, 200, {
        object: 'list',
        data: input.map((t, index) => ({ object: 'embedding', index, embedding: typeof t === 'string' ? vectorFor(t) : [t.length, t[0], 0, 0] })),
        model: body.model,
        usage: { prompt_tokens: 11, total_tokens: 11 },
      })
    })
    gw = await startGateway(
      {
        providers: [
          { id: 'ollama', type: 'ollama', baseURL: ollamaUp.url, embedBatchSize: 64, embedConcurrency: 4 },
          { id: 'oai', type: 'openai-compatible', baseURL: `${openaiUp.url}/v1`, models: ['text-embedding-3-small'] },
        ],
      },
      { providers: [chatOnly] },
    )
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
  })
  afterAll(async () => {
    await gw.close()
    await ollamaUp.close()
    await openaiUp.close()
  })

  it('answers the openai client, which asks for base64 by default, with the right float32 vectors', async () => {
    const r = await client.embeddings.create({ model: 'ollama/nomic-embed-text', input: ['text 1', 'text 2'] })
    const sent = JSON.parse(ollamaUp.requests[ollamaUp.requests.length - 1].body)
    expect(sent).toEqual({ model: 'nomic-embed-text', input: ['text 1', 'text 2'] })
    expect(r.object).toBe('list')
    expect(r.model).toBe('ollama/nomic-embed-text')
    expect(r.data.map((d) => d.index)).toEqual([0, 1])
    expect(r.data[0].embedding).toEqual(vectorFor('text 1').map(Math.fround))
    expect(r.data[1].embedding).toEqual(vectorFor('text 2').map(Math.fround))
    expect(r.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 })
  })

  it('answers float arrays when asked, for a single string', async () => {
    const r = await client.embeddings.create({ model: 'ollama/nomic-embed-text', input: 'text 7', encoding_format: 'float' })
    expect(r.data).toEqual([{ object: 'embedding', index: 0, embedding: vectorFor('text 7') }])
  })

  it('encodes base64 exactly as OpenAI: little-endian float32', async () => {
    const res = await fetch(`${gw.baseURL}/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'ollama/nomic-embed-text', input: 'text 3', encoding_format: 'base64' }) })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { data: Array<{ embedding: string }> }
    const bytes = Buffer.from(body.data[0].embedding, 'base64')
    expect(bytes.length).toBe(16)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    expect([0, 1, 2, 3].map((i) => view.getFloat32(i * 4, true))).toEqual(vectorFor('text 3').map(Math.fround))
    expect(float32Base64([1])).toBe('AACAPw==')
    // Without Buffer (a Worker without nodejs_compat) the btoa path gives the same bytes.
    const vector = Array.from({ length: 3000 }, (_, i) => Math.sin(i) * 1e3)
    const viaBuffer = float32Base64(vector)
    const B = globalThis.Buffer
    ;(globalThis as { Buffer?: unknown }).Buffer = undefined
    try {
      expect(float32Base64(vector)).toBe(viaBuffer)
    } finally {
      globalThis.Buffer = B
    }
  })

  it('keeps the order of 1,000 inputs split into batches answered out of order', async () => {
    const before = ollamaUp.requests.length
    const input = Array.from({ length: 1000 }, (_, i) => `text ${i}`)
    const r = await client.embeddings.create({ model: 'ollama/nomic-embed-text', input })
    const batches = ollamaUp.requests.slice(before).map((q) => JSON.parse(q.body).input.length as number)
    expect(batches.length).toBe(16)
    expect(Math.max(...batches)).toBe(64)
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1000)
    expect(r.data).toHaveLength(1000)
    r.data.forEach((d, i) => {
      expect(d.index).toBe(i)
      expect(d.embedding[0]).toBe(i)
    })
    expect(r.usage.prompt_tokens).toBe(3000)
  })

  it('fails the whole request with a clear error when one sub-batch fails', async () => {
    failOn = 'text 500'
    try {
      const input = Array.from({ length: 1000 }, (_, i) => `text ${i}`)
      const err = await client.embeddings.create({ model: 'ollama/nomic-embed-text', input }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.InternalServerError)
      expect(err.status).toBe(502)
      expect(err.message).toContain('Embedding batch 8 of 16 (inputs 448-511) failed')
      expect(err.message).toContain('llama runner process has terminated')
    } finally {
      failOn = undefined
    }
  })

  it('passes dimensions and user, and token-id input, to an OpenAI-compatible backend', async () => {
    const r = await client.embeddings.create({ model: 'oai/text-embedding-3-small', input: [[1, 2, 3], [4]], dimensions: 4, user: 'u-9', encoding_format: 'float' })
    expect(JSON.parse(openaiUp.requests[openaiUp.requests.length - 1].body)).toEqual({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4]], encoding_format: 'float', dimensions: 4, user: 'u-9' })
    expect(r.data.map((d) => d.embedding)).toEqual([
      [3, 1, 0, 0],
      [1, 4, 0, 0],
    ])
    expect(r.usage.prompt_tokens).toBe(11)
    const single = await client.embeddings.create({ model: 'text-embedding-3-small', input: [5, 6] })
    expect(single.data[0].embedding).toEqual([2, 5, 0, 0])
  })

  it('reports a model that is not pulled with the ollama pull command', async () => {
    const err = await client.embeddings.create({ model: 'ollama/not-pulled', input: 'x' }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.message).toContain('`ollama pull not-pulled`')
    expect(err.message).not.toContain('gateway.config.json')
  })

  const bad: Array<[string, unknown, number, RegExp, string | null]> = [
    ['missing model', { input: 'x' }, 400, /Missing required parameter: 'model'/, 'model'],
    ['missing input', { model: 'ollama/m' }, 400, /Missing required parameter: 'input'/, 'input'],
    ['input a number', { model: 'ollama/m', input: 5 }, 400, /Invalid value for 'input'/, 'input'],
    ['empty string', { model: 'ollama/m', input: '' }, 400, /'input': an empty string cannot be embedded/, 'input'],
    ['empty string in array', { model: 'ollama/m', input: ['a', ''] }, 400, /'input\[1\]': an empty string/, 'input[1]'],
    ['empty array', { model: 'ollama/m', input: [] }, 400, /Invalid value for 'input'/, 'input'],
    ['mixed strings and numbers', { model: 'ollama/m', input: ['a', 1] }, 400, /Invalid value for 'input/, null],
    ['fractional token id', { model: 'oai/text-embedding-3-small', input: [1.5] }, 400, /Invalid value for 'input/, null],
    ['encoding_format hex', { model: 'ollama/m', input: 'x', encoding_format: 'hex' }, 400, /Invalid value for 'encoding_format'/, 'encoding_format'],
    ['dimensions 0', { model: 'ollama/m', input: 'x', dimensions: 0 }, 400, /Invalid value for 'dimensions'/, 'dimensions'],
    ['token ids to a text-only provider', { model: 'ollama/nomic-embed-text', input: [[1, 2]] }, 400, /embeds text only.*send 'input' as a string/, 'input'],
    ['a chat-only provider', { model: 'chatonly/talker', input: 'x' }, 400, /has no embeddings API.*gateway\.config\.json/, 'model'],
    ['an unknown model', { model: 'text-embedding-nope', input: 'x' }, 404, /does not exist.*Embeddings need a provider with an embeddings API in gateway\.config\.json/, 'model'],
  ]
  for (const [name, body, status, message, param] of bad) {
    it(`rejects ${name} with ${status} in OpenAI's error shape`, async () => {
      const res = await fetch(`${gw.baseURL}/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect(res.status).toBe(status)
      const err = ((await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } }).error
      expect(Object.keys(err).sort()).toEqual(['code', 'message', 'param', 'type'])
      expect(err.message).toMatch(message)
      expect(err.type).toBe('invalid_request_error')
      if (param !== null) expect(err.param).toBe(param)
    })
  }

  it('rejects a body that is not JSON', async () => {
    const res = await fetch(`${gw.baseURL}/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_json')
  })
})
