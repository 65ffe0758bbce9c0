import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { azureOpenAIProvider } from '../../src/providers/azure-openai/index.js'
import { createProviders } from '../../src/providers/registry.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import * as fx from '../fixtures/azure-openai/api.js'
import { startUpstream, writeSse, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { providerContract, type Scenario } from '../provider-contract.js'

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'apim-request-id': 'a1b2c3', ...headers }).end(JSON.stringify(value))
}

const CHAT_PATH = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)\?api-version=([^&]+)$/

const ctx = (signal = new AbortController().signal) => ({ signal, requestId: 'req_test', meta: {} })
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text }] }], ...extra })

function harness(client: 'undici' | 'fetch') {
  return async () => {
    const up: FakeUpstream = await startUpstream()
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    up.handle(async (req, res) => {
      // A real resource answers 401 without the key, and 404 on paths it does not serve.
      if (req.headers['api-key'] !== 'azure-key') return json(res, 401, fx.errors.unauthorized)
      const m = CHAT_PATH.exec(req.url)
      if (!m || m[1] !== 'prod-gpt4o' || m[3] !== '2024-10-21') return json(res, 404, fx.errors.resourceNotFound)
      const body = req.json()
      switch (scenario) {
        case 'error_500':
          return json(res, 500, fx.errors.serverError)
        case 'error_401':
          return json(res, 401, fx.errors.unauthorized)
        case 'error_429':
          return json(res, 429, fx.errors.rateLimited, { 'retry-after': '7', 'retry-after-ms': '7000' })
        case 'error_400':
          return json(res, 400, fx.errors.badRequest)
        case 'tool_call':
          return body.stream ? writeSse(res, fx.streamToolCall) : json(res, 200, fx.completionToolCall)
        case 'slow':
          return writeSse(res, Array.from({ length: 200 }, (_, i) => ({ ...fx.streamText[2], choices: [{ ...fx.streamText[2].choices[0], delta: { content: `w${i} ` } }] })), { delayMs: 20 })
        default:
          return body.stream ? writeSse(res, fx.streamText) : json(res, 200, fx.completionText)
      }
    })
    return {
      provider: azureOpenAIProvider({ id: 'azure', endpoint: up.url, apiKey: 'azure-key', deployments: { 'gpt-4o': 'prod-gpt4o' } }, client === 'undici' ? undiciClient() : fetchClient()),
      model: 'gpt-4o',
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const last = up.requests[up.requests.length - 1].json()
        return last.messages[0].content.some((p: { type: string; image_url?: { url: string } }) => p.type === 'image_url' && p.image_url!.url.startsWith('data:image/png;base64,'))
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      teardown: () => up.close(),
    }
  }
}

providerContract('azure-openai (undici)', harness('undici'))
providerContract('azure-openai (fetch)', harness('fetch'))

describe('azure-openai specifics', () => {
  let up: FakeUpstream
  let reply: (req: RecordedRequest, res: ServerResponse) => void | Promise<void>
  beforeAll(async () => {
    up = await startUpstream((req, res) => reply(req, res))
  })
  afterAll(() => up.close())
  const provider = (extra: Record<string, unknown> = {}) => azureOpenAIProvider({ id: 'azure', endpoint: up.url, apiKey: 'azure-key', deployments: { 'gpt-4o': 'prod-gpt4o', 'text-embedding-3-small': 'emb' }, ...extra }, undiciClient())
  const last = () => up.requests[up.requests.length - 1]

  it('calls the deployment path with api-version and the api-key header', async () => {
    reply = (_req, res) => writeSse(res, fx.streamText)
    await aggregate(provider({ apiVersion: '2025-01-01-preview' }).chat(ask('hi'), ctx()))
    expect(last().url).toBe('/openai/deployments/prod-gpt4o/chat/completions?api-version=2025-01-01-preview')
    expect(last().headers['api-key']).toBe('azure-key')
    expect(last().headers.authorization).toBeUndefined()
    expect(last().json()).toMatchObject({ stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
  })

  it('uses the model name as deployment when it is not mapped, and lists the mapped models', async () => {
    reply = (_req, res) => json(res, 200, fx.completionText)
    await aggregate(provider().chat(ask('hi', { model: 'my-gpt-35', stream: false }), ctx()))
    expect(last().url).toBe('/openai/deployments/my-gpt-35/chat/completions?api-version=2024-10-21')
    expect((await provider({ models: ['o3-mini'] }).models()).map((m) => m.id)).toEqual(['gpt-4o', 'text-embedding-3-small', 'o3-mini'])
  })

  it('sends an Entra ID token as a bearer token, and builds the endpoint from resourceName', async () => {
    reply = (_req, res) => json(res, 200, fx.completionText)
    await aggregate(provider({ apiKey: undefined, azureADToken: 'eyJ0eXAi.entra.token' }).chat(ask('hi', { stream: false }), ctx()))
    expect(last().headers.authorization).toBe('Bearer eyJ0eXAi.entra.token')
    expect(last().headers['api-key']).toBeUndefined()
    const seen: string[] = []
    const p = azureOpenAIProvider({ id: 'az', resourceName: 'contoso-eu', bearerToken: 't' }, async (url) => {
      seen.push(url)
      throw Object.assign(new Error('offline'), { code: 'ECONNREFUSED' })
    })
    await expect(aggregate(p.chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'unavailable' })
    expect(seen).toEqual(['https://contoso-eu.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21'])
  })

  it('speaks the version-less v1 API with the deployment in the body when apiVersion is "v1"', async () => {
    reply = (_req, res) => json(res, 200, fx.completionText)
    await aggregate(provider({ apiVersion: 'v1' }).chat(ask('hi', { stream: false }), ctx()))
    expect(last().url).toBe('/openai/v1/chat/completions')
    expect(last().json().model).toBe('prod-gpt4o')
  })

  it('refuses a config without endpoint or credentials, naming the fields', () => {
    expect(() => createProviders([{ id: 'az', type: 'azure-openai', apiKey: 'k' }], { http: fetchClient() })).toThrow(/providers\[0\] \(az\): endpoint: set "endpoint"/)
    expect(() => createProviders([{ id: 'az', type: 'azure-openai', endpoint: 'https://x.openai.azure.com' }], { http: fetchClient() })).toThrow(/apiKey: set "apiKey", or an Entra ID token/)
  })

  it('maps finish_reason content_filter, streamed and not', async () => {
    reply = (_req, res) => writeSse(res, fx.streamFiltered)
    const streamed = await aggregate(provider().chat(ask('story'), ctx()))
    expect(streamed.finishReason).toBe('content_filter')
    expect(streamed.content).toEqual([{ type: 'text', text: 'Once upon' }])
    reply = (_req, res) => json(res, 200, fx.completionFiltered)
    const whole = await aggregate(provider().chat(ask('story', { stream: false }), ctx()))
    expect(whole.finishReason).toBe('content_filter')
    expect(whole.content).toEqual([])
  })

  it('answers a filtered prompt with a clear 400 content_filter error naming the categories', async () => {
    reply = (_req, res) => json(res, 400, fx.errors.promptFiltered)
    const err = (await aggregate(provider().chat(ask('bad'), ctx())).catch((e) => e)) as GatewayError
    expect(err).toMatchObject({ kind: 'invalid_request', status: 400, code: 'content_filter', retryable: false, param: 'messages' })
    expect(err.message).toBe('The prompt was filtered by Azure OpenAI\'s content management policy (provider "azure"): violence (medium). Rephrase the prompt and retry.')
    reply = (_req, res) => json(res, 400, fx.errors.jailbreak)
    const jb = (await aggregate(provider().chat(ask('bad'), ctx())).catch((e) => e)) as GatewayError
    expect(jb.message).toContain(': jailbreak.')
  })

  it('explains a missing deployment with the mapping to fix it', async () => {
    reply = (_req, res) => json(res, 404, fx.errors.deploymentNotFound)
    const err = (await aggregate(provider().chat(ask('hi'), ctx())).catch((e) => e)) as GatewayError
    expect(err).toMatchObject({ kind: 'not_found', status: 404, code: 'model_not_found' })
    expect(err.message).toContain('no deployment "prod-gpt4o" for the model "gpt-4o"')
    expect(err.message).toContain('"deployments"')
  })

  it('maps every error status to the right kind (error table)', async () => {
    const table: Array<[number, unknown, Partial<GatewayError>, Record<string, string>?]> = [
      [400, fx.errors.badRequest, { kind: 'invalid_request', status: 400, retryable: false }],
      [400, fx.errors.promptFiltered, { kind: 'invalid_request', status: 400, retryable: false, code: 'content_filter' }],
      [401, fx.errors.unauthorized, { kind: 'auth', status: 502, retryable: false, code: 'provider_auth_error' }],
      [401, fx.errors.permissionDenied, { kind: 'auth', status: 502, retryable: false }],
      [403, { error: { code: 'Forbidden', message: 'Public access is disabled. Please configure private endpoint.' } }, { kind: 'permission', status: 502, retryable: false }],
      [404, fx.errors.deploymentNotFound, { kind: 'not_found', status: 404, code: 'model_not_found' }],
      [404, fx.errors.resourceNotFound, { kind: 'not_found', status: 404, retryable: false }],
      [429, fx.errors.rateLimited, { kind: 'rate_limit', status: 429, retryable: true, retryAfter: 7 }, { 'retry-after': '7', 'retry-after-ms': '7000' }],
      [500, fx.errors.serverError, { kind: 'upstream', status: 502, retryable: true }],
      [503, { error: { code: 'ServiceUnavailable', message: 'The service is temporarily unavailable.' } }, { kind: 'unavailable', status: 503, retryable: true }],
    ]
    for (const [status, body, expected, headers] of table) {
      reply = (_req, res) => json(res, status, body, headers)
      const err = await aggregate(provider().chat(ask('hi'), ctx())).catch((e) => e)
      expect(err, `status ${status} ${JSON.stringify(body).slice(0, 60)}`).toMatchObject(expected)
      expect(err.message).toContain('"azure"')
    }
  })

  it('reports health from the resource\'s model list, without secrets', async () => {
    reply = (req, res) =>
      req.url === '/openai/models?api-version=2024-10-21' && req.headers['api-key'] === 'azure-key' ? json(res, 200, { data: [{ id: 'gpt-4o-2024-08-06', object: 'model' }] }) : json(res, 401, fx.errors.unauthorized)
    expect(await provider().health!()).toEqual({ ok: true })
    const bad = await provider({ apiKey: 'key-9f8e7d' }).health!()
    expect(bad.ok).toBe(false)
    expect(bad.detail).toContain('401')
    expect(bad.detail).not.toContain('key-9f8e7d')
  })

  it('embeds through the deployment /embeddings in batches, in order, token ids passed through', async () => {
    const sizes: number[] = []
    reply = (req, res) => {
      const input: Array<string | number[]> = req.json().input
      sizes.push(input.length)
      json(res, 200, { ...fx.embeddings, data: input.map((t, index) => ({ object: 'embedding', index, embedding: [typeof t === 'string' ? Number(t.slice(1)) : t[0]] })).reverse(), usage: { prompt_tokens: input.length, total_tokens: input.length } })
    }
    const p = provider({ embedBatchSize: 3 })
    const r = await p.embed!({ model: 'text-embedding-3-small', input: ['t0', 't1', 't2', 't3', 't4'], dimensions: 256, user: 'u1' }, ctx())
    expect(r.embeddings).toEqual([[0], [1], [2], [3], [4]])
    expect(r.usage).toEqual({ inputTokens: 5 })
    expect(sizes).toEqual([3, 2])
    expect(last().url).toBe('/openai/deployments/emb/embeddings?api-version=2024-10-21')
    expect(last().json()).toMatchObject({ encoding_format: 'float', dimensions: 256, user: 'u1' })
    expect(p.embedsTokens).toBe(true)
    const t = await p.embed!({ model: 'text-embedding-3-small', input: [], tokens: [[42, 7], [9]] }, ctx())
    expect(last().json().input).toEqual([[42, 7], [9]])
    expect(t.embeddings).toEqual([[42], [9]])
  })
})
