import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import type { CallContext } from '../../src/providers/types.js'
import { geminiProvider, type GeminiOptions } from '../../src/providers/vertex/gemini.js'
import { modelCall, writeGeminiSse, writeJson } from '../fakes/google.js'
import * as fx from '../fixtures/vertex/gemini.js'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { providerContract, type Scenario } from '../provider-contract.js'

const KEY = 'AIzaSyD-test-key-0123456789abcdefghijk'
const ctx = (signal = new AbortController().signal): CallContext => ({ signal, requestId: 'req_gemini', meta: {} })
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: fx.MODEL, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text }] }], ...extra })

type Route = (req: RecordedRequest, res: import('node:http').ServerResponse, call: NonNullable<ReturnType<typeof modelCall>>) => void | Promise<void>

/** A fake Gemini API: v1beta model methods and models.list, demanding the API key in x-goog-api-key. */
async function fakeGemini(route: Route): Promise<FakeUpstream> {
  return startUpstream(async (req, res) => {
    if (req.headers['x-goog-api-key'] !== KEY) return writeJson(res, 400, fx.errors.API_KEY_INVALID.body)
    const url = new URL(req.url, 'http://fake')
    if (req.method === 'GET' && url.pathname === '/v1beta/models') return writeJson(res, 200, fx.modelList)
    const call = modelCall(req.url)
    if (!call || call.prefix !== '/v1beta') return writeJson(res, 404, fx.errors.NOT_FOUND.body)
    await route(req, res, call)
  })
}

const provider = (up: FakeUpstream, extra: Partial<GeminiOptions> = {}, client = undiciClient()) => geminiProvider({ id: 'gemini', apiKey: KEY, baseURL: up.url, ...extra }, client, {})

function harness(client: 'undici' | 'fetch') {
  return async () => {
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    const up = await fakeGemini((req, res, call) => {
      switch (scenario) {
        case 'error_500':
          return writeJson(res, 500, fx.errors.INTERNAL.body)
        case 'error_401':
          // What Gemini answers for a revoked key (the fake also checks the real key on every request).
          return writeJson(res, 400, fx.errors.API_KEY_INVALID.body)
        case 'error_429':
          return writeJson(res, 429, fx.errors.RESOURCE_EXHAUSTED.body)
        case 'error_400':
          return writeJson(res, 400, fx.errors.INVALID_ARGUMENT.body)
        case 'tool_call':
          return call.sse ? writeGeminiSse(res, fx.streamFunctionCall) : writeJson(res, 200, fx.generateFunctionCall)
        case 'slow':
          return writeGeminiSse(res, Array.from({ length: 200 }, (_, i) => ({ candidates: [{ content: { role: 'model', parts: [{ text: `w${i} ` }] } }] })), 20)
        default:
          return call.sse ? writeGeminiSse(res, fx.streamText) : writeJson(res, 200, fx.generateText)
      }
    })
    return {
      provider: provider(up, {}, client === 'undici' ? undiciClient() : fetchClient()),
      model: fx.MODEL,
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const parts = up.requests[up.requests.length - 1].json().contents[0].parts
        return parts.some((p: any) => p.inlineData?.mimeType === 'image/png' && p.inlineData.data.startsWith('iVBOR'))
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      teardown: () => up.close(),
    }
  }
}

providerContract('gemini (undici)', harness('undici'))
providerContract('gemini (fetch)', harness('fetch'))

describe('gemini specifics', () => {
  it('sends the key in x-goog-api-key (never in the URL) to v1beta model methods', async () => {
    const up = await fakeGemini((req, res, call) => (call.sse ? writeGeminiSse(res, fx.streamText) : writeJson(res, 200, fx.generateText)))
    await aggregate(provider(up).chat(ask('hi', { model: `models/${fx.MODEL}` }), ctx()))
    await aggregate(provider(up).chat(ask('hi', { stream: false }), ctx()))
    expect(up.requests.map((r) => r.url)).toEqual([`/v1beta/models/${fx.MODEL}:streamGenerateContent?alt=sse`, `/v1beta/models/${fx.MODEL}:generateContent`])
    for (const r of up.requests) {
      expect(r.url).not.toContain(KEY)
      expect(r.headers['x-goog-api-key']).toBe(KEY)
      expect(r.headers['content-type']).toBe('application/json')
    }
    await up.close()
  })

  it('lists models from models.list, keeping chat and embedding models', async () => {
    const up = await fakeGemini(() => {})
    expect(await provider(up).models()).toEqual([
      { id: 'gemini-2.0-flash-001', name: 'Gemini 2.0 Flash 001', ownedBy: 'google', contextWindow: 1048576, maxOutputTokens: 8192, capabilities: { streaming: true, tools: true, vision: true, json: true, thinking: undefined } },
      { id: 'text-embedding-004', name: 'Text Embedding 004', ownedBy: 'google', contextWindow: 2048, maxOutputTokens: 1, capabilities: { embeddings: true } },
    ])
    expect(up.requests[0].url).toBe('/v1beta/models?pageSize=1000')
    await expect(provider(up, { apiKey: 'wrong' }).models()).rejects.toMatchObject({ kind: 'auth', status: 502 })
    await up.close()
  })

  it('maps its errors: a bad key is auth (502), quota is rate_limit with RetryInfo, NOT_FOUND is 404', async () => {
    let current: keyof typeof fx.errors = 'RESOURCE_EXHAUSTED'
    const up = await fakeGemini((req, res) => writeJson(res, fx.errors[current].status, fx.errors[current].body))
    const cases: Array<[keyof typeof fx.errors, string, number, boolean, number | undefined]> = [
      ['RESOURCE_EXHAUSTED', 'rate_limit', 429, true, 7],
      ['INVALID_ARGUMENT', 'invalid_request', 400, false, undefined],
      ['NOT_FOUND', 'not_found', 404, false, undefined],
      ['UNAVAILABLE', 'unavailable', 503, true, undefined],
      ['INTERNAL', 'upstream', 502, true, undefined],
      ['PERMISSION_DENIED', 'permission', 502, false, undefined],
    ]
    for (const [name, kind, status, retryable, retryAfter] of cases) {
      current = name
      const err = await aggregate(provider(up).chat(ask('hi'), ctx())).catch((e) => e)
      expect(err, name).toBeInstanceOf(GatewayError)
      expect(err, name).toMatchObject({ kind, status, retryable, retryAfter })
      expect(err.message, name).toContain('"gemini" (Gemini)')
    }
    const bad = await aggregate(provider(up, { apiKey: 'nope' }).chat(ask('hi'), ctx())).catch((e) => e)
    expect(bad).toMatchObject({ kind: 'auth', status: 502, retryable: false, code: 'provider_auth_error', message: expect.stringContaining('API key not valid') })
    await up.close()
  })

  it('embeds with batchEmbedContents, at most 100 per call, in order', async () => {
    const up = await fakeGemini((req, res, call) => {
      expect(call).toMatchObject({ model: 'text-embedding-004', method: 'batchEmbedContents' })
      const body = req.json()
      expect(body.requests.length).toBeLessThanOrEqual(100)
      expect(body.requests[0]).toMatchObject({ model: 'models/text-embedding-004', outputDimensionality: 2 })
      writeJson(res, 200, { embeddings: body.requests.map((r: any) => ({ values: [Number(r.content.parts[0].text.slice(2)), 1] })) })
    })
    const input = Array.from({ length: 250 }, (_, i) => `s ${i}`)
    const result = await provider(up).embed!({ model: 'text-embedding-004', input, dimensions: 2 }, ctx())
    expect(up.requests.map((r) => r.json().requests.length).sort()).toEqual([100, 100, 50])
    expect(result.embeddings.map((v) => v[0])).toEqual(input.map((_, i) => i))
    expect(result.usage).toBeUndefined()
    await up.close()
  })

  it('counts tokens with :countTokens wrapped in a generateContentRequest', async () => {
    const up = await fakeGemini((req, res, call) => {
      expect(call.method).toBe('countTokens')
      writeJson(res, 200, { totalTokens: 12, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 12 }] })
    })
    expect(await provider(up).countTokens!(ask('hi'), ctx())).toBe(12)
    expect(up.requests[0].json()).toEqual({ generateContentRequest: { model: `models/${fx.MODEL}`, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } })
    await up.close()
  })

  it('refuses to start without an API key, and reads GEMINI_API_KEY', () => {
    expect(() => geminiProvider({ id: 'g' }, undiciClient(), {})).toThrow(/GEMINI_API_KEY/)
    expect(geminiProvider({ id: 'g' }, undiciClient(), { GEMINI_API_KEY: KEY }).type).toBe('gemini')
  })

  it('serves the openai client through the gateway, embeddings included (base64 by default)', async () => {
    const up = await fakeGemini((req, res, call) => {
      if (call.method === 'batchEmbedContents') return writeJson(res, 200, { embeddings: req.json().requests.map(() => ({ values: [0.25, -1.5, 3] })) })
      return call.sse ? writeGeminiSse(res, fx.streamText) : writeJson(res, 200, fx.generateText)
    })
    const gw = await startGateway({ providers: [{ id: 'gemini', type: 'gemini', apiKey: KEY, baseURL: up.url }] })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
    const done = await client.chat.completions.create({ model: fx.MODEL, messages: [{ role: 'user', content: 'hi' }] })
    expect(done.choices[0].message.content).toBe('Hello, world!')
    expect(done.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 })
    const emb = await client.embeddings.create({ model: 'gemini/text-embedding-004', input: 'hello' })
    expect(emb.data[0].embedding).toEqual([0.25, -1.5, 3])
    await gw.close()
    await up.close()
  })
})
