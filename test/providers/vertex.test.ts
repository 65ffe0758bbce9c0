import type { KeyObject } from 'node:crypto'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatEvent, ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import type { CallContext } from '../../src/providers/types.js'
import { vertexProvider, type VertexOptions } from '../../src/providers/vertex/index.js'
import { modelCall, testServiceAccount, verifyTokenRequest, writeGeminiSse, writeJson } from '../fakes/google.js'
import * as fx from '../fixtures/vertex/gemini.js'
import { startGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { providerContract, type Scenario } from '../provider-contract.js'

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform'
const PREFIX = '/v1/projects/test-project/locations/us-central1/publishers/google'
const ctx = (signal = new AbortController().signal): CallContext => ({ signal, requestId: 'req_vertex', meta: {} })
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: fx.MODEL, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text }] }], ...extra })

type Route = (req: RecordedRequest, res: import('node:http').ServerResponse, call: NonNullable<ReturnType<typeof modelCall>>) => void | Promise<void>

interface FakeVertex extends FakeUpstream {
  key: ReturnType<typeof testServiceAccount>['key']
  publicKey: KeyObject
  tokenRequests: number
  tokenProblems: string[]
  /** Tokens the fake issued and will accept. */
  issued: Set<string>
  modelRequests(): RecordedRequest[]
}

/**
 * A fake Vertex AI: serves the OAuth token endpoint (verifying each JWT's
 * RS256 signature against the test key pair) and model methods that demand
 * a token it issued, answering UNAUTHENTICATED otherwise.
 */
async function fakeVertex(route: Route, now: () => number = Date.now): Promise<FakeVertex> {
  const state = { tokenRequests: 0, tokenProblems: [] as string[], issued: new Set<string>() }
  let sa: ReturnType<typeof testServiceAccount>
  const up = await startUpstream(async (req, res) => {
    if (req.url === '/token') {
      state.tokenRequests++
      const problem = verifyTokenRequest(req, sa.publicKey, { iss: sa.key.client_email, aud: sa.key.token_uri, scope: SCOPE, kid: sa.key.private_key_id }, now())
      if (problem) {
        state.tokenProblems.push(problem)
        return writeJson(res, 400, problem === fx.tokenInvalidGrant.error_description ? fx.tokenInvalidGrant : { error: 'invalid_grant', error_description: `Invalid JWT: ${problem}` })
      }
      const answer = fx.tokenAnswer(state.tokenRequests)
      state.issued.add(answer.access_token)
      return writeJson(res, 200, answer)
    }
    const call = modelCall(req.url)
    if (!call || !call.prefix.startsWith(PREFIX)) return writeJson(res, 404, fx.errors.NOT_FOUND.body)
    const auth = String(req.headers.authorization ?? '')
    if (!auth.startsWith('Bearer ') || !state.issued.has(auth.slice(7))) return writeJson(res, 401, fx.errors.UNAUTHENTICATED.body)
    await route(req, res, call)
  })
  sa = testServiceAccount(`${up.url}/token`)
  const fake = Object.assign(up, {
    key: sa.key,
    publicKey: sa.publicKey,
    issued: state.issued,
    tokenProblems: state.tokenProblems,
    tokenRequests: 0,
    modelRequests: () => up.requests.filter((r) => r.url !== '/token'),
  })
  // A live count (Object.assign would copy a getter's value once).
  return Object.defineProperty(fake, 'tokenRequests', { get: () => state.tokenRequests })
}

function provider(up: FakeVertex, extra: Partial<VertexOptions> = {}, client = undiciClient(), now?: () => number) {
  return vertexProvider({ id: 'gcp', credentials: up.key, location: 'us-central1', baseURL: up.url, ...extra }, client, { env: {}, now })
}

const chat: Route = (req, res, call) => (call.sse ? writeGeminiSse(res, fx.streamText) : writeJson(res, 200, fx.generateText))

function harness(client: 'undici' | 'fetch') {
  return async () => {
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    const up = await fakeVertex(async (req, res, call) => {
      switch (scenario) {
        case 'error_500':
          return writeJson(res, 500, fx.errors.INTERNAL.body)
        case 'error_401':
          return writeJson(res, 401, fx.errors.UNAUTHENTICATED.body)
        case 'error_429':
          return writeJson(res, 429, fx.errors.RESOURCE_EXHAUSTED.body)
        case 'error_400':
          return writeJson(res, 400, fx.errors.INVALID_ARGUMENT.body)
        case 'tool_call':
          return call.sse ? writeGeminiSse(res, fx.streamFunctionCall) : writeJson(res, 200, fx.generateFunctionCall)
        case 'slow':
          return writeGeminiSse(res, Array.from({ length: 200 }, (_, i) => ({ candidates: [{ content: { role: 'model', parts: [{ text: `w${i} ` }] } }] })), 20)
        default:
          return chat(req, res, call)
      }
    })
    return {
      provider: provider(up, { models: [fx.MODEL] }, client === 'undici' ? undiciClient() : fetchClient()),
      model: fx.MODEL,
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const reqs = up.modelRequests()
        const parts = reqs[reqs.length - 1].json().contents[0].parts
        return parts.some((p: any) => p.inlineData?.mimeType === 'image/png' && p.inlineData.data.startsWith('iVBOR'))
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      async teardown() {
        expect(up.tokenProblems).toEqual([])
        await up.close()
      },
    }
  }
}

providerContract('vertex (undici)', harness('undici'))
providerContract('vertex (fetch)', harness('fetch'))

describe('vertex service-account OAuth', () => {
  it('exchanges a signed JWT once and reuses the token until shortly before it expires', async () => {
    let clock = Date.now()
    const up = await fakeVertex(chat, () => clock)
    const p = provider(up, {}, undiciClient(), () => clock)
    // Concurrent first calls share one exchange.
    await Promise.all([1, 2, 3].map(() => aggregate(p.chat(ask('hi'), ctx()))))
    await aggregate(p.chat(ask('hi', { stream: false }), ctx()))
    expect(up.tokenRequests).toBe(1)
    expect(up.tokenProblems).toEqual([])
    expect(new Set(up.modelRequests().map((r) => r.headers.authorization))).toEqual(new Set(['Bearer ya29.c.test-token-1']))
    clock += 50 * 60_000 // 50 of the token's 60 minutes: still good
    await aggregate(p.chat(ask('hi'), ctx()))
    expect(up.tokenRequests).toBe(1)
    clock += 6 * 60_000 // within 5 minutes of expiry: refreshed first
    await aggregate(p.chat(ask('hi'), ctx()))
    expect(up.tokenRequests).toBe(2)
    expect(up.modelRequests().at(-1)!.headers.authorization).toBe('Bearer ya29.c.test-token-2')
    await up.close()
  })

  it('drops a token the service rejects, so the next request gets a fresh one', async () => {
    const up = await fakeVertex(chat)
    const p = provider(up)
    await aggregate(p.chat(ask('hi'), ctx()))
    up.issued.clear() // the service revokes it
    await expect(aggregate(p.chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'auth', status: 502 })
    await aggregate(p.chat(ask('hi'), ctx()))
    expect(up.tokenRequests).toBe(2)
    await up.close()
  })

  it('reports a key the token endpoint rejects as a provider auth error (502), naming the account', async () => {
    const up = await fakeVertex(chat)
    const other = testServiceAccount(`${up.url}/token`, true)
    const p = provider(up, { credentials: JSON.stringify({ ...up.key, private_key: other.key.private_key }) })
    const err = await aggregate(p.chat(ask('hi'), ctx())).catch((e) => e)
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({ kind: 'auth', status: 502, retryable: false, code: 'provider_auth_error' })
    expect(err.message).toContain('gateway@test-project.iam.gserviceaccount.com')
    expect(err.message).toContain('invalid_grant: Invalid JWT Signature.')
    expect(up.tokenProblems).toEqual(['Invalid JWT Signature.'])
    expect(up.modelRequests()).toHaveLength(0)
    await up.close()
  })

  it('accepts a static access token instead of a service account', async () => {
    const up = await fakeVertex(chat)
    up.issued.add('ya29.static')
    const p = vertexProvider({ id: 'gcp', accessToken: 'ya29.static', project: 'test-project', baseURL: up.url }, undiciClient(), { env: {} })
    expect((await aggregate(p.chat(ask('hi'), ctx()))).content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    expect(up.tokenRequests).toBe(0)
    await up.close()
  })

  it('refuses to start without credentials or project, and with a key that is not a service account', () => {
    expect(() => vertexProvider({ id: 'gcp', project: 'p' }, undiciClient(), { env: {} })).toThrow(/credentials/)
    expect(() => vertexProvider({ id: 'gcp', accessToken: 't' }, undiciClient(), { env: {} })).toThrow(/GOOGLE_CLOUD_PROJECT/)
    expect(() => vertexProvider({ id: 'gcp', credentials: '{"client_email":"x"}', project: 'p' }, undiciClient(), { env: {} })).toThrow(/private_key/)
    expect(() => vertexProvider({ id: 'gcp', credentials: 'not json', project: 'p' }, undiciClient(), { env: {} })).toThrow(/not JSON/)
  })
})

describe('vertex request and response mapping', () => {
  let up: FakeVertex
  let next: unknown[] = fx.streamText
  beforeAll(async () => {
    up = await fakeVertex((req, res, call) => (call.sse ? writeGeminiSse(res, next) : writeJson(res, 200, next[0])))
  })
  afterAll(() => up.close())

  it('sends system instruction, alternating contents, function calls and responses, tools and generation config', async () => {
    next = fx.streamText
    const req: ChatRequest = {
      model: fx.MODEL,
      stream: true,
      maxTokens: 256,
      temperature: 0.4,
      topP: 0.8,
      topK: 20,
      stop: ['END'],
      seed: 7,
      toolChoice: { name: 'get_weather' },
      responseFormat: { type: 'json_object' },
      tools: [
        {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', additionalProperties: false, properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f'] } }, required: ['city'] },
        },
        { name: 'now', parameters: { type: 'object', properties: {} } },
      ],
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }, { type: 'image', mimeType: 'image/jpeg', data: '/9j/4AAQ' }] },
        { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', content: [{ type: 'tool_result', callId: 'call_1', content: [{ type: 'text', text: '18C' }] }] },
        { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
      ],
    }
    await aggregate(provider(up).chat(req, ctx()))
    const sent = up.modelRequests().at(-1)!
    expect(sent.url).toBe(`${PREFIX}/models/${fx.MODEL}:streamGenerateContent?alt=sse`)
    expect(sent.json()).toEqual({
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      contents: [
        { role: 'user', parts: [{ text: 'Weather?' }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }] },
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: '18C' } } }, { text: 'Thanks' }] },
      ],
      tools: [
        {
          functionDeclarations: [
            { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', nullable: true, enum: ['c', 'f'] } }, required: ['city'] } },
            { name: 'now' },
          ],
        },
      ],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
      generationConfig: { maxOutputTokens: 256, temperature: 0.4, topP: 0.8, topK: 20, stopSequences: ['END'], seed: 7, responseMimeType: 'application/json' },
    })
  })

  it('rejects a tool result with no matching call (Gemini needs the function name) with a 400', async () => {
    const req = ask('x', { messages: [{ role: 'tool', content: [{ type: 'tool_result', callId: 'nope', content: [{ type: 'text', text: '1' }] }] }] })
    await expect(aggregate(provider(up).chat(req, ctx()))).rejects.toMatchObject({ kind: 'invalid_request', status: 400, param: 'messages[0].content[0]' })
  })

  it('maps a safety stop and a blocked prompt to content_filter', async () => {
    next = fx.streamSafety
    const stopped = await aggregate(provider(up).chat(ask('bad'), ctx()))
    expect(stopped.finishReason).toBe('content_filter')
    expect(stopped.content).toEqual([{ type: 'text', text: 'I can' }])
    next = [fx.promptBlocked]
    const blocked = await aggregate(provider(up).chat(ask('bad'), ctx()))
    expect(blocked).toMatchObject({ finishReason: 'content_filter', content: [], usage: { inputTokens: 9, outputTokens: 0 } })
    const blockedJson = await aggregate(provider(up).chat(ask('bad', { stream: false }), ctx()))
    expect(blockedJson.finishReason).toBe('content_filter')
  })

  it('maps thought parts to thinking and counts thinking and cached tokens', async () => {
    next = fx.streamThinking
    const result = await aggregate(provider(up).chat(ask('hi', { thinking: { type: 'enabled', budgetTokens: 512 } }), ctx()))
    expect(result.content).toEqual([
      { type: 'thinking', text: 'The user greets me.' },
      { type: 'text', text: 'Hi!' },
    ])
    expect(result.usage).toEqual({ inputTokens: 8, outputTokens: 22, reasoningTokens: 20, cacheReadTokens: 4 })
    expect(up.modelRequests().at(-1)!.json().generationConfig).toEqual({ thinkingConfig: { includeThoughts: true, thinkingBudget: 512 } })
  })

  it('fails on an error object sent inside the stream', async () => {
    next = [fx.streamText[0], fx.errors.UNAVAILABLE.body]
    await expect(aggregate(provider(up).chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'unavailable', retryable: true, message: expect.stringContaining('overloaded') })
  })
})

describe('vertex token counting', () => {
  it('counts with :countTokens, sending the prompt fields only', async () => {
    const up = await fakeVertex((req, res, call) => {
      expect(call.method).toBe('countTokens')
      writeJson(res, 200, { totalTokens: 31, totalBillableCharacters: 96, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 31 }] })
    })
    const req = ask('x', { maxTokens: 5, messages: [{ role: 'system', content: [{ type: 'text', text: 'sys' }] }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }] })
    expect(await provider(up).countTokens!(req, ctx())).toBe(31)
    expect(up.modelRequests()[0].json()).toEqual({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }], systemInstruction: { parts: [{ text: 'sys' }] } })
    await up.close()
  })
})

describe('vertex error mapping', () => {
  const table: Array<[keyof typeof fx.errors, string, number, boolean, number | undefined]> = [
    ['INVALID_ARGUMENT', 'invalid_request', 400, false, undefined],
    ['UNAUTHENTICATED', 'auth', 502, false, undefined],
    ['PERMISSION_DENIED', 'permission', 502, false, undefined],
    ['NOT_FOUND', 'not_found', 404, false, undefined],
    ['RESOURCE_EXHAUSTED', 'rate_limit', 429, true, 7],
    ['INTERNAL', 'upstream', 502, true, undefined],
    ['UNAVAILABLE', 'unavailable', 503, true, undefined],
    ['DEADLINE_EXCEEDED', 'timeout', 504, true, undefined],
  ]
  let up: FakeVertex
  let current: keyof typeof fx.errors = 'INVALID_ARGUMENT'
  beforeAll(async () => {
    up = await fakeVertex((req, res) => writeJson(res, fx.errors[current].status, fx.errors[current].body))
  })
  afterAll(() => up.close())

  it.each(table)('%s → %s %i (retryable %s, retryAfter %s)', async (name, kind, status, retryable, retryAfter) => {
    current = name
    const err = await aggregate(provider(up).chat(ask('hi'), ctx())).catch((e) => e)
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({ kind, status, retryable, retryAfter })
    expect(err.message).toContain('"gcp" (Vertex AI)')
  })
})

describe('vertex embeddings (:predict)', () => {
  it('batches up to 250 instances per call, keeps order, sums token counts, passes dimensions', async () => {
    const up = await fakeVertex((req, res, call) => {
      expect(call.method).toBe('predict')
      const body = req.json()
      expect(body.instances.length).toBeLessThanOrEqual(250)
      expect(body.parameters).toEqual({ autoTruncate: true, outputDimensionality: 3 })
      writeJson(res, 200, {
        predictions: body.instances.map((i: { content: string }) => ({ embeddings: { statistics: { truncated: false, token_count: 2 }, values: [Number(i.content.slice(4)), 0.1, 0.2] } })),
        metadata: { billableCharacterCount: 100 },
      })
    })
    const input = Array.from({ length: 600 }, (_, i) => `doc ${i}`)
    const result = await provider(up).embed!({ model: 'text-embedding-005', input, dimensions: 3 }, ctx())
    expect(up.modelRequests().map((r) => r.json().instances.length).sort()).toEqual([100, 250, 250])
    expect(up.modelRequests()[0].url).toBe(`${PREFIX}/models/text-embedding-005:predict`)
    expect(result.embeddings.map((v) => v[0])).toEqual(input.map((_, i) => i))
    expect(result.usage).toEqual({ inputTokens: 1200 })
    await up.close()
  })

  it('sends gemini-embedding-001 one instance per call, as Vertex requires', async () => {
    const up = await fakeVertex((req, res) => {
      const body = req.json()
      writeJson(res, 200, { predictions: body.instances.map(() => ({ embeddings: { statistics: { truncated: false, token_count: 1 }, values: [1, 2] } })) })
    })
    const result = await provider(up).embed!({ model: 'gemini-embedding-001', input: ['a', 'b', 'c'] }, ctx())
    expect(up.modelRequests().map((r) => r.json().instances.length)).toEqual([1, 1, 1])
    expect(result.embeddings).toHaveLength(3)
    await up.close()
  })
})

describe('vertex through the gateway with the openai client', () => {
  it('serves chat and embeddings from a `type: "vertex"` provider configured with the key JSON as text', async () => {
    const up = await fakeVertex((req, res, call) => {
      if (call.method === 'predict') return writeJson(res, 200, { predictions: req.json().instances.map(() => ({ embeddings: { statistics: { truncated: false, token_count: 3 }, values: [0.5, -0.25, 1] } })) })
      return call.sse ? writeGeminiSse(res, fx.streamText) : writeJson(res, 200, fx.generateFunctionCall)
    })
    const gw = await startGateway({ providers: [{ id: 'gcp', type: 'vertex', credentials: JSON.stringify(up.key), baseURL: up.url, models: [fx.MODEL, 'text-embedding-005'] }] })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
    let text = ''
    for await (const chunk of await client.chat.completions.create({ model: `gcp/${fx.MODEL}`, stream: true, messages: [{ role: 'user', content: 'hi' }] })) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe('Hello, world!')
    const done = await client.chat.completions.create({
      model: fx.MODEL,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    })
    expect(done.choices[0].finish_reason).toBe('tool_calls')
    expect(JSON.parse(done.choices[0].message.tool_calls![0].type === 'function' ? done.choices[0].message.tool_calls![0].function.arguments : '')).toEqual({ city: 'Paris' })
    const emb = await client.embeddings.create({ model: 'gcp/text-embedding-005', input: ['a', 'b'] })
    expect(emb.data.map((d) => d.embedding)).toEqual([
      [0.5, -0.25, 1],
      [0.5, -0.25, 1],
    ])
    expect(emb.usage.prompt_tokens).toBe(6)
    expect(up.tokenRequests).toBe(1)
    expect(up.tokenProblems).toEqual([])
    await gw.close()
    await up.close()
  })
})
