/**
 * The VS Code bridge, in-process against the fake `vscode` module, over real
 * HTTP on a random loopback port (and over a real WebSocket for reverse mode).
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import type { AddressInfo } from 'node:net'
import { TOKEN_SECRET_KEY } from '../bridge/src/auth.js'
import { BridgeController, COMMANDS } from '../bridge/src/controller.js'
import { serveFetch, type ServedHandler } from '../bridge/src/http.js'
import { connectReverse, reverseEndpoint, type ReverseConnection } from '../bridge/src/reverse.js'
import { createBridgeApp, type BridgeApp } from '../bridge/src/server.js'
import {
  createFakeVscode,
  LanguageModelChatMessageRole,
  LanguageModelChatToolMode,
  LanguageModelDataPart,
  LanguageModelError,
  LanguageModelPromptTsxPart,
  LanguageModelTextPart,
  LanguageModelToolCallPart,
  LanguageModelToolResultPart,
  slowText,
  type FakeChatModel,
  type FakeVscode,
  type FakeVscodeOptions,
  type RecordedRequest,
} from './fakes/vscode.js'

const TOKEN = 'bridge-test-token'

type Json = Record<string, any>

interface Harness {
  vscode: FakeVscode
  app: BridgeApp
  served: ServedHandler
  inflightHistory: number[]
  call(path: string, init?: { method?: string; body?: unknown; token?: string | null; signal?: AbortSignal }): Promise<Response>
  chat(body: Json, signal?: AbortSignal): Promise<Response>
}

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startBridge(options: FakeVscodeOptions = {}): Promise<Harness> {
  const vscode = createFakeVscode(options)
  const inflightHistory: number[] = []
  const app = createBridgeApp(vscode, { getToken: () => TOKEN, onInflightChange: (n) => inflightHistory.push(n) })
  const served = await serveFetch(app.fetch, { port: 0, host: '127.0.0.1' })
  cleanups.push(() => served.close(), () => app.dispose())
  const call: Harness['call'] = (path, init = {}) => {
    const headers: Record<string, string> = {}
    const token = init.token === undefined ? TOKEN : init.token
    if (token !== null) headers.authorization = `Bearer ${token}`
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    return fetch(`${served.url}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
      signal: init.signal,
    })
  }
  return { vscode, app, served, inflightHistory, call, chat: (body, signal) => call('/v1/chat', { body, signal }) }
}

async function events(response: Response): Promise<Json[]> {
  const text = await response.text()
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Json)
}

/** Reads NDJSON events one at a time, to observe a stream while it is still running. */
function eventReader(response: Response): { next(): Promise<Json | undefined>; cancel(): Promise<void> } {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  return {
    async next() {
      for (;;) {
        const newline = buffered.indexOf('\n')
        if (newline >= 0) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          if (line.trim()) return JSON.parse(line) as Json
          continue
        }
        const { done, value } = await reader.read()
        if (done) return undefined
        buffered += decoder.decode(value, { stream: true })
      }
    },
    cancel: () => reader.cancel(),
  }
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const user = (text: string): Json => ({ role: 'user', content: [{ type: 'text', text }] })
const textOf = (request: RecordedRequest): string =>
  request.messages
    .flatMap((m) => m.content)
    .filter((p): p is LanguageModelTextPart => p instanceof LanguageModelTextPart)
    .map((p) => p.value)
    .join('|')

describe('bridge HTTP: auth and discovery', () => {
  it('refuses a missing or wrong token with a JSON 401', async () => {
    const h = await startBridge()
    for (const token of [null, 'wrong', `${TOKEN}x`, '']) {
      const res = await h.call('/v1/health', { token })
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toContain('application/json')
      const body = (await res.json()) as Json
      expect(body.error.code).toBe('unauthorized')
      expect(typeof body.error.message).toBe('string')
    }
    const wrongScheme = await fetch(`${h.served.url}/v1/health`, { headers: { authorization: `Basic ${TOKEN}` } })
    expect(wrongScheme.status).toBe(401)
  })

  it('also guards the chat route, before touching a model', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm' })
    const res = await h.call('/v1/chat', { token: 'nope', body: { model: 'm', messages: [user('hi')] } })
    expect(res.status).toBe(401)
    expect(model.requests).toHaveLength(0)
  })

  it('answers health with protocol and VS Code versions', async () => {
    const h = await startBridge({ version: '1.105.1' })
    const res = await h.call('/v1/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, bridge: '1', vscode: '1.105.1' })
  })

  it('lists models with the protocol shape, and notices model changes', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({
      id: 'copilot-gpt-4o',
      name: 'GPT-4o',
      vendor: 'copilot',
      family: 'gpt-4o',
      version: '2024-11-20',
      maxInputTokens: 63_000,
      capabilities: { supportsImageToText: true, supportsToolCalling: true },
    })
    h.vscode.fake.addModel({ id: 'plain' })
    const first = (await (await h.call('/v1/models')).json()) as Json
    expect(first.models).toEqual([
      {
        id: 'copilot-gpt-4o',
        name: 'GPT-4o',
        vendor: 'copilot',
        family: 'gpt-4o',
        version: '2024-11-20',
        maxInputTokens: 63_000,
        capabilities: { imageInput: true, toolCalling: true },
      },
      {
        id: 'plain',
        name: 'plain',
        vendor: 'fake',
        family: 'plain',
        version: '1',
        maxInputTokens: 128_000,
        capabilities: { imageInput: false, toolCalling: true },
      },
    ])
    // The list is cached; onDidChangeChatModels drops the cache.
    h.vscode.fake.addModel({ id: 'late' })
    h.vscode.fake.removeModel('plain')
    const second = (await (await h.call('/v1/models')).json()) as Json
    expect(second.models.map((m: Json) => m.id)).toEqual(['copilot-gpt-4o', 'late'])
  })

  it('answers unknown routes with a JSON 404', async () => {
    const h = await startBridge()
    const res = await h.call('/v2/whatever')
    expect(res.status).toBe(404)
    expect(((await res.json()) as Json).error.code).toBe('not_found')
  })
})

describe('bridge HTTP: chat', () => {
  it('streams text as NDJSON, line by line, ending with end', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm', reply: slowText(['Hel', 'lo', ' there'], 30) })
    const res = await h.chat({ model: 'm', messages: [user('say hello')] })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/x-ndjson')
    const reader = eventReader(res)
    expect(await reader.next()).toEqual({ type: 'text', text: 'Hel' })
    // The first event arrived while the model was still producing: this is a real stream.
    expect(model.lastRequest!.finished).toBe(false)
    expect(await reader.next()).toEqual({ type: 'text', text: 'lo' })
    expect(await reader.next()).toEqual({ type: 'text', text: ' there' })
    expect(await reader.next()).toEqual({ type: 'end' })
    expect(await reader.next()).toBeUndefined()
    await until(() => h.app.inflight() === 0)
    expect(h.inflightHistory).toEqual([1, 0])
  })

  it('sends user and assistant messages through the VS Code factories', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm' })
    const res = await h.chat({
      model: 'm',
      messages: [user('first'), { role: 'assistant', content: [{ type: 'text', text: 'reply' }] }, { role: 'user', content: 'second' }],
    })
    expect(await events(res)).toEqual([{ type: 'text', text: 'second' }, { type: 'end' }])
    const received = model.lastRequest!.messages
    expect(received.map((m) => m.role)).toEqual([
      LanguageModelChatMessageRole.User,
      LanguageModelChatMessageRole.Assistant,
      LanguageModelChatMessageRole.User,
    ])
    expect(received[1]!.content[0]).toBeInstanceOf(LanguageModelTextPart)
  })

  it('turns a system message into a User message (vscode.lm has no system role)', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm' })
    const res = await h.chat({ model: 'm', messages: [{ role: 'system', content: [{ type: 'text', text: 'Be brief.' }] }, user('hi')] })
    expect(res.status).toBe(200)
    await events(res)
    const [system, question] = model.lastRequest!.messages
    expect(system!.role).toBe(LanguageModelChatMessageRole.User)
    expect((system!.content[0] as LanguageModelTextPart).value).toBe('Be brief.')
    expect(question!.role).toBe(LanguageModelChatMessageRole.User)
  })

  it('passes tools, tool mode, model options and justification, and streams tool calls', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({
      id: 'm',
      reply: function* (ctx) {
        yield ctx.text('Checking.')
        yield ctx.toolCall('call_1', 'get_weather', { city: 'Paris' })
      },
    })
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }
    const res = await h.chat({
      model: 'm',
      messages: [user('weather in Paris?')],
      tools: [{ name: 'get_weather', description: 'Weather by city', inputSchema: schema }],
      toolMode: 'required',
      modelOptions: { temperature: 0.2 },
      justification: 'gateway test',
    })
    expect(await events(res)).toEqual([
      { type: 'text', text: 'Checking.' },
      { type: 'tool_call', callId: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'end' },
    ])
    expect(model.lastRequest!.options).toEqual({
      tools: [{ name: 'get_weather', description: 'Weather by city', inputSchema: schema }],
      toolMode: LanguageModelChatToolMode.Required,
      modelOptions: { temperature: 0.2 },
      justification: 'gateway test',
    })
  })

  it('maps toolMode auto and omits options that were not sent', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm' })
    await events(await h.chat({ model: 'm', messages: [user('a')], tools: [{ name: 't', description: 'd' }], toolMode: 'auto' }))
    expect(model.lastRequest!.options).toEqual({
      tools: [{ name: 't', description: 'd', inputSchema: undefined }],
      toolMode: LanguageModelChatToolMode.Auto,
    })
    await events(await h.chat({ model: 'm', messages: [user('b')] }))
    expect(model.lastRequest!.options).toEqual({})
  })

  it('round-trips a tool result right after the assistant tool call', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm', reply: (ctx) => [ctx.text('It is sunny.')] })
    const res = await h.chat({
      model: 'm',
      messages: [
        user('weather in Paris?'),
        { role: 'assistant', content: [{ type: 'tool_call', callId: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', callId: 'call_1', content: [{ type: 'text', text: '22°C, sun' }] }] },
      ],
    })
    expect(res.status).toBe(200)
    expect(await events(res)).toEqual([{ type: 'text', text: 'It is sunny.' }, { type: 'end' }])
    const [, assistant, result] = model.lastRequest!.messages
    const call = assistant!.content[0] as LanguageModelToolCallPart
    expect(call).toBeInstanceOf(LanguageModelToolCallPart)
    expect(call).toMatchObject({ callId: 'call_1', name: 'get_weather', input: { city: 'Paris' } })
    const toolResult = result!.content[0] as LanguageModelToolResultPart
    expect(toolResult).toBeInstanceOf(LanguageModelToolResultPart)
    expect(toolResult.callId).toBe('call_1')
    expect(toolResult.content).toHaveLength(1)
    expect(toolResult.content[0]).toBeInstanceOf(LanguageModelTextPart)
    expect((toolResult.content[0] as LanguageModelTextPart).value).toBe('22°C, sun')
  })

  it('surfaces VS Code refusing a badly ordered conversation as a 400', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm' })
    const orphanResult = await h.chat({
      model: 'm',
      messages: [user('hi'), { role: 'user', content: [{ type: 'tool_result', callId: 'call_9', content: [{ type: 'text', text: 'x' }] }] }],
    })
    expect(orphanResult.status).toBe(400)
    const body = (await orphanResult.json()) as Json
    expect(body.error.code).toBe('invalid_request')
    expect(body.error.message).toMatch(/ToolResultPart/)

    const mismatched = await h.chat({
      model: 'm',
      messages: [
        user('hi'),
        { role: 'assistant', content: [{ type: 'tool_call', callId: 'call_1', name: 't', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', callId: 'call_2', content: [{ type: 'text', text: 'x' }] }] },
      ],
    })
    expect(mismatched.status).toBe(400)

    const unanswered = await h.chat({
      model: 'm',
      messages: [user('hi'), { role: 'assistant', content: [{ type: 'tool_call', callId: 'call_1', name: 't', input: {} }] }, user('next')],
    })
    expect(unanswered.status).toBe(400)
    expect(((await unanswered.json()) as Json).error.message).toMatch(/Tool call part must be followed/)
    expect(model.requests).toHaveLength(0)
    await until(() => h.app.inflight() === 0)
  })

  it('delivers images as LanguageModelDataPart where VS Code has it', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm', reply: () => ['seen'] })
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])
    const res = await h.chat({
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image', mimeType: 'image/png', data: Buffer.from(bytes).toString('base64') },
          ],
        },
      ],
    })
    expect(await events(res)).toEqual([{ type: 'text', text: 'seen' }, { type: 'end' }])
    const image = model.lastRequest!.messages[0]!.content[1] as unknown as LanguageModelDataPart
    expect(image).toBeInstanceOf(LanguageModelDataPart)
    expect(image.mimeType).toBe('image/png')
    expect(Array.from(image.data)).toEqual(Array.from(bytes))
  })

  it('refuses images with unsupported_content where VS Code has no DataPart', async () => {
    const h = await startBridge({ dataPart: false, version: '1.95.0' })
    const model = h.vscode.fake.addModel({ id: 'm' })
    const res = await h.chat({
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'image', mimeType: 'image/png', data: 'iVBORw0KGgo=' }] }],
    })
    expect(res.status).toBe(400)
    const body = (await res.json()) as Json
    expect(body.error.code).toBe('unsupported_content')
    expect(body.error.message).toContain('1.95.0')
    expect(model.requests).toHaveLength(0)
    expect(h.app.inflight()).toBe(0)
  })

  it('streams thinking parts as thinking events, found by class or by shape', async () => {
    for (const thinkingPart of [true, false]) {
      const h = await startBridge({ thinkingPart })
      h.vscode.fake.addModel({
        id: 'm',
        reply: function* (ctx) {
          yield ctx.thinking('Let me think')
          yield ctx.thinking(['. Still', ' thinking'], 'th_1')
          yield ctx.text('Answer')
        },
      })
      expect(await events(await h.chat({ model: 'm', messages: [user('q')] }))).toEqual([
        { type: 'thinking', text: 'Let me think' },
        { type: 'thinking', text: '. Still thinking' },
        { type: 'text', text: 'Answer' },
        { type: 'end' },
      ])
    }
  })

  it('ignores response parts the protocol does not carry', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({
      id: 'm',
      reply: function* (ctx) {
        yield new LanguageModelPromptTsxPart({ node: 1 })
        yield LanguageModelDataPart.json({ marker: true })
        yield 42
        yield ctx.text('only this')
      },
    })
    expect(await events(await h.chat({ model: 'm', messages: [user('q')] }))).toEqual([
      { type: 'text', text: 'only this' },
      { type: 'end' },
    ])
  })

  it('looks a model up by id, falling back to its family', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'copilot-gpt-4o', family: 'gpt-4o' })
    expect((await h.chat({ model: 'gpt-4o', messages: [user('x')] })).status).toBe(200)
    expect(model.requests).toHaveLength(1)
  })
})

describe('bridge HTTP: errors', () => {
  it('answers 404 NotFound for an unknown model', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({ id: 'known' })
    const res = await h.chat({ model: 'nope', messages: [user('x')] })
    expect(res.status).toBe(404)
    const body = (await res.json()) as Json
    expect(body.error.code).toBe('NotFound')
    expect(body.error.message).toContain('nope')
  })

  it('answers 403 NoPermissions, telling the user to allow access in VS Code', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({ id: 'm', consent: false })
    const res = await h.chat({ model: 'm', messages: [user('x')] })
    expect(res.status).toBe(403)
    const body = (await res.json()) as Json
    expect(body.error.code).toBe('NoPermissions')
    expect(body.error.message).toMatch(/allow/i)
    expect(body.error.message).toContain('VS Code')
    expect(h.app.inflight()).toBe(0)
  })

  it('answers 429 for Blocked and 502 Unknown for anything else', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({ id: 'blocked', failWith: () => LanguageModelError.Blocked('Rate limit exceeded') })
    h.vscode.fake.addModel({ id: 'broken', failWith: () => new Error('socket hang up') })
    h.vscode.fake.addModel({ id: 'gone', failWith: () => LanguageModelError.NotFound('model retired') })
    const blocked = await h.chat({ model: 'blocked', messages: [user('x')] })
    expect(blocked.status).toBe(429)
    expect(((await blocked.json()) as Json).error).toEqual({ code: 'Blocked', message: 'Rate limit exceeded' })
    const broken = await h.chat({ model: 'broken', messages: [user('x')] })
    expect(broken.status).toBe(502)
    expect(((await broken.json()) as Json).error).toEqual({ code: 'Unknown', message: 'socket hang up' })
    const gone = await h.chat({ model: 'gone', messages: [user('x')] })
    expect(gone.status).toBe(404)
    expect(((await gone.json()) as Json).error.code).toBe('NotFound')
  })

  it('turns a failure before the first part into an HTTP status', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({
      id: 'm',
      reply: function* () {
        throw LanguageModelError.Blocked('quota exhausted')
      },
    })
    const res = await h.chat({ model: 'm', messages: [user('x')] })
    expect(res.status).toBe(429)
  })

  it('ends a stream that fails midway with one error event and no end', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({
      id: 'm',
      reply: async function* (ctx) {
        yield ctx.text('partial')
        await ctx.sleep(5)
        throw LanguageModelError.Blocked('quota exhausted mid-stream')
      },
    })
    h.vscode.fake.addModel({
      id: 'u',
      reply: function* (ctx) {
        yield ctx.text('partial')
        throw new Error('upstream reset')
      },
    })
    const res = await h.chat({ model: 'm', messages: [user('x')] })
    expect(res.status).toBe(200)
    expect(await events(res)).toEqual([
      { type: 'text', text: 'partial' },
      { type: 'error', code: 'Blocked', message: 'quota exhausted mid-stream' },
    ])
    const unknown = await events(await h.chat({ model: 'u', messages: [user('x')] }))
    expect(unknown.at(-1)).toEqual({ type: 'error', code: 'Unknown', message: 'upstream reset' })
    await until(() => h.app.inflight() === 0)
  })

  it('rejects malformed bodies with 400 invalid_request', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({ id: 'm' })
    const bad: unknown[] = [
      '{not json',
      [],
      { messages: [user('x')] },
      { model: 'm' },
      { model: 'm', messages: [] },
      { model: 'm', messages: [{ role: 'tool', content: [] }] },
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'video', url: 'x' }] }] },
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'image', mimeType: 'text/plain', data: '' }] }] },
      { model: 'm', messages: [user('x')], toolMode: 'always' },
      { model: 'm', messages: [user('x')], tools: [{ description: 'no name' }] },
    ]
    for (const body of bad) {
      const res = await h.call('/v1/chat', { body })
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(((await res.json()) as Json).error.code).toBe('invalid_request')
    }
  })
})

describe('bridge HTTP: cancellation', () => {
  it('cancels only the aborted request; a concurrent one completes', async () => {
    const h = await startBridge()
    const chunks = Array.from({ length: 8 }, (_, i) => `c${i} `)
    const model = h.vscode.fake.addModel({ id: 'm', reply: slowText(chunks, 25) })

    const abortA = new AbortController()
    const [resA, resB] = await Promise.all([
      h.chat({ model: 'm', messages: [user('A')] }, abortA.signal),
      h.chat({ model: 'm', messages: [user('B')] }),
    ])
    await until(() => model.requests.length === 2)
    const requestA = model.requests.find((r) => textOf(r) === 'A')!
    const requestB = model.requests.find((r) => textOf(r) === 'B')!
    expect(h.app.inflight()).toBe(2)

    const readerA = eventReader(resA)
    expect(await readerA.next()).toEqual({ type: 'text', text: 'c0 ' })
    abortA.abort()

    await until(() => requestA.cancelled)
    expect(requestA.token!.isCancellationRequested).toBe(true)
    expect(requestB.token!.isCancellationRequested).toBe(false)

    const streamB = await events(resB)
    expect(streamB).toEqual([...chunks.map((text) => ({ type: 'text', text })), { type: 'end' }])
    expect(requestB.cancelled).toBe(false)
    expect(requestB.finished).toBe(true)
    await until(() => h.app.inflight() === 0)
  })

  it('cancels when the client goes away before the first part', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({
      id: 'm',
      onCancel: 'throw',
      reply: async function* (ctx) {
        await ctx.sleep(10_000)
        yield ctx.text('too late')
      },
    })
    const abort = new AbortController()
    const pending = h.chat({ model: 'm', messages: [user('x')] }, abort.signal).catch((err: unknown) => err)
    const request = await model.waitForRequest(0)
    abort.abort()
    expect(await pending).toBeInstanceOf(Error)
    await until(() => request.cancelled)
    await until(() => h.app.inflight() === 0)
  })

  it('cancels in-flight model calls when the server closes', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm', reply: slowText(['a', 'b', 'c', 'd'], 200) })
    const res = await h.chat({ model: 'm', messages: [user('x')] })
    const reader = eventReader(res)
    await reader.next()
    await h.served.close()
    await until(() => model.lastRequest!.cancelled)
  })
})

describe('bridge HTTP: count-tokens and embeddings', () => {
  it('counts a text with the model tokenizer', async () => {
    const h = await startBridge()
    const model = h.vscode.fake.addModel({ id: 'm', countTokens: (text) => text.split(' ').length })
    const res = await h.call('/v1/count-tokens', { body: { model: 'm', text: 'one two three' } })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ tokens: 3 })
    expect(model.countTokensCalls[0]!.input).toBe('one two three')
    expect(model.countTokensCalls[0]!.token).toBeDefined()
  })

  it('sums the count over messages, converted like chat messages', async () => {
    const h = await startBridge()
    const model: FakeChatModel = h.vscode.fake.addModel({ id: 'm', countTokens: (text) => text.length })
    const res = await h.call('/v1/count-tokens', {
      body: { model: 'm', messages: [{ role: 'system', content: 'abc' }, user('defgh'), { role: 'assistant', content: [{ type: 'text', text: 'ij' }] }] },
    })
    expect(await res.json()).toEqual({ tokens: 10 })
    expect(model.countTokensCalls).toHaveLength(3)
    expect(model.countTokensCalls.map((c) => (typeof c.input === 'string' ? 'string' : c.input.role))).toEqual([
      LanguageModelChatMessageRole.User,
      LanguageModelChatMessageRole.User,
      LanguageModelChatMessageRole.Assistant,
    ])
  })

  it('validates count-tokens bodies and models', async () => {
    const h = await startBridge()
    h.vscode.fake.addModel({ id: 'm' })
    expect((await h.call('/v1/count-tokens', { body: { model: 'm' } })).status).toBe(400)
    expect((await h.call('/v1/count-tokens', { body: { model: 'x', text: 'a' } })).status).toBe(404)
  })

  it('answers 501 where VS Code has no embeddings API', async () => {
    const h = await startBridge({ embeddings: false })
    const res = await h.call('/v1/embeddings', { body: { model: 'text-embedding-3-small', input: ['a'] } })
    expect(res.status).toBe(501)
    expect(((await res.json()) as Json).error.code).toBe('not_supported')
    // Even an empty body gets the 501: it answers "unsupported", not "malformed".
    expect((await h.call('/v1/embeddings', { body: {} })).status).toBe(501)
  })

  it('computes embeddings through lm.computeEmbeddings where it exists', async () => {
    const h = await startBridge({ embeddings: (_model, input) => [input.length, 0.5] })
    const res = await h.call('/v1/embeddings', { body: { model: 'text-embedding-3-small', input: ['hello', 'hi'] } })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ embeddings: [[5, 0.5], [2, 0.5]] })
    expect(h.vscode.fake.embedCalls[0]).toMatchObject({ model: 'text-embedding-3-small', input: ['hello', 'hi'] })
    expect(h.vscode.fake.embedCalls[0]!.token).toBeDefined()

    const unknown = await h.call('/v1/embeddings', { body: { model: 'nope', input: ['x'] } })
    expect(unknown.status).toBe(404)
    expect((await h.call('/v1/embeddings', { body: { model: 'text-embedding-3-small', input: [1] } })).status).toBe(400)
  })
})

describe('bridge reverse mode', () => {
  interface Gateway {
    url: string
    frames: Json[]
    connections: number
    authorizations: (string | undefined)[]
    paths: (string | undefined)[]
    socket(): WebSocket
    send(frame: Json): void
    waitFor(predicate: (frame: Json) => boolean): Promise<Json>
  }

  /** A minimal gateway: accepts the bridge's socket and records every frame it sends. */
  async function startGateway(): Promise<Gateway> {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    const gateway: Gateway = {
      url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      frames: [],
      connections: 0,
      authorizations: [],
      paths: [],
      socket: () => current!,
      send: (frame) => current!.send(JSON.stringify(frame)),
      waitFor: async (predicate) => {
        await until(() => gateway.frames.some(predicate))
        return gateway.frames.find(predicate)!
      },
    }
    let current: WebSocket | undefined
    server.on('connection', (ws, req) => {
      gateway.connections++
      gateway.authorizations.push(req.headers.authorization)
      gateway.paths.push(req.url)
      current = ws
      ws.on('message', (data) => gateway.frames.push(JSON.parse(String(data)) as Json))
    })
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const client of server.clients) client.terminate()
          server.close(() => resolve())
        }),
    )
    return gateway
  }

  async function startReverse(options: FakeVscodeOptions = {}) {
    const vscode = createFakeVscode(options)
    const app = createBridgeApp(vscode, { getToken: () => TOKEN })
    const gateway = await startGateway()
    const states: string[] = []
    const connection: ReverseConnection = connectReverse({
      url: gateway.url,
      token: TOKEN,
      handler: app.fetch,
      WebSocket,
      minDelayMs: 20,
      maxDelayMs: 100,
      onStateChange: (state) => states.push(state),
    })
    cleanups.push(() => connection.close(), () => app.dispose())
    await until(() => connection.state === 'open' && gateway.connections === 1)
    return { vscode, app, gateway, connection, states }
  }

  it('builds the /bridge/connect endpoint from a gateway origin', () => {
    expect(reverseEndpoint('https://gw.example.com')).toBe('wss://gw.example.com/bridge/connect')
    expect(reverseEndpoint('http://127.0.0.1:4000/')).toBe('ws://127.0.0.1:4000/bridge/connect')
    expect(reverseEndpoint('wss://gw.example.com/custom/path')).toBe('wss://gw.example.com/custom/path')
    expect(() => reverseEndpoint('ftp://x')).toThrow()
  })

  it('dials /bridge/connect with the bearer token and answers JSON requests', async () => {
    const { gateway, vscode } = await startReverse()
    vscode.fake.addModel({ id: 'm' })
    expect(gateway.authorizations[0]).toBe(`Bearer ${TOKEN}`)
    expect(gateway.paths[0]).toBe('/bridge/connect')

    gateway.send({ id: 1, type: 'request', method: 'GET', path: '/v1/health' })
    const health = await gateway.waitFor((f) => f.id === 1)
    expect(health).toMatchObject({ id: 1, type: 'response', status: 200, body: { ok: true, bridge: '1' } })
    expect(health.headers['content-type']).toContain('application/json')

    gateway.send({ id: 'm-1', type: 'request', method: 'GET', path: '/v1/models' })
    expect((await gateway.waitFor((f) => f.id === 'm-1')).body.models[0].id).toBe('m')

    gateway.send({ id: 2, type: 'request', method: 'POST', path: '/v1/chat', body: { model: 'missing', messages: [user('x')] } })
    expect(await gateway.waitFor((f) => f.id === 2)).toMatchObject({ type: 'response', status: 404, body: { error: { code: 'NotFound' } } })
  })

  it('relays a chat stream as one chunk frame per event, then end', async () => {
    const { gateway, vscode } = await startReverse()
    vscode.fake.addModel({ id: 'm', reply: slowText(['one', 'two'], 5) })
    gateway.send({ id: 7, type: 'request', method: 'POST', path: '/v1/chat', body: { model: 'm', messages: [user('x')] } })
    await gateway.waitFor((f) => f.id === 7 && f.type === 'end')
    expect(gateway.frames.filter((f) => f.id === 7)).toEqual([
      { id: 7, type: 'chunk', data: { type: 'text', text: 'one' } },
      { id: 7, type: 'chunk', data: { type: 'text', text: 'two' } },
      { id: 7, type: 'chunk', data: { type: 'end' } },
      { id: 7, type: 'end' },
    ])
  })

  it('cancels one multiplexed request on a cancel frame and keeps serving others', async () => {
    const { gateway, vscode, app } = await startReverse()
    const model = vscode.fake.addModel({ id: 'm', reply: slowText(['a', 'b', 'c', 'd', 'e', 'f'], 30) })
    gateway.send({ id: 'slow', type: 'request', method: 'POST', path: '/v1/chat', body: { model: 'm', messages: [user('slow')] } })
    gateway.send({ id: 'other', type: 'request', method: 'POST', path: '/v1/chat', body: { model: 'm', messages: [user('other')] } })
    await gateway.waitFor((f) => f.id === 'slow' && f.type === 'chunk')
    gateway.send({ id: 'slow', type: 'cancel' })
    await until(() => model.requests.find((r) => textOf(r) === 'slow')?.cancelled === true)
    await gateway.waitFor((f) => f.id === 'other' && f.type === 'end')
    expect(model.requests.find((r) => textOf(r) === 'other')!.cancelled).toBe(false)
    expect(gateway.frames.filter((f) => f.id === 'other' && f.type === 'chunk')).toHaveLength(7)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(gateway.frames.some((f) => f.id === 'slow' && f.type === 'end')).toBe(false)
    await until(() => app.inflight() === 0)
  })

  it('answers ping with pong and rejects malformed request frames', async () => {
    const { gateway } = await startReverse()
    gateway.send({ type: 'ping' })
    await gateway.waitFor((f) => f.type === 'pong')
    gateway.send({ id: 9, type: 'request', method: 'GET', path: 'no-slash' })
    expect(await gateway.waitFor((f) => f.id === 9)).toMatchObject({ type: 'response', status: 400 })
  })

  it('reconnects with backoff when the socket drops, and stops on close', async () => {
    const { gateway, connection, states } = await startReverse()
    gateway.socket().terminate()
    await until(() => gateway.connections === 2 && connection.state === 'open')
    expect(states).toContain('waiting')
    gateway.send({ id: 'after', type: 'request', method: 'GET', path: '/v1/health' })
    expect(await gateway.waitFor((f) => f.id === 'after')).toMatchObject({ status: 200 })
    connection.close()
    expect(connection.state).toBe('closed')
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(gateway.connections).toBe(2)
  })

  it('keeps retrying while the gateway is unreachable', async () => {
    const vscode = createFakeVscode()
    const app = createBridgeApp(vscode, { getToken: () => TOKEN })
    const states: string[] = []
    const connection = connectReverse({
      url: 'ws://127.0.0.1:1',
      token: TOKEN,
      handler: app.fetch,
      WebSocket,
      minDelayMs: 10,
      maxDelayMs: 20,
      onStateChange: (state) => states.push(state),
    })
    cleanups.push(() => connection.close(), () => app.dispose())
    await until(() => states.filter((s) => s === 'waiting').length >= 3)
    expect(connection.state).not.toBe('open')
  })
})

describe('bridge extension lifecycle (controller)', () => {
  async function activate(settings: Record<string, unknown> = {}, extra: { WebSocket?: typeof WebSocket } = {}) {
    const vscode = createFakeVscode({ settings: { 'lmGateway.bridge.port': 0, ...settings } })
    const context = vscode.fake.createExtensionContext()
    const controller = new BridgeController(vscode, context, extra)
    context.subscriptions.push(controller)
    cleanups.push(() => controller.stop())
    await controller.start()
    return { vscode, context, controller }
  }

  it('creates a token once, keeps it in SecretStorage, and serves with it', async () => {
    const { vscode, context, controller } = await activate()
    const token = await context.secrets.get(TOKEN_SECRET_KEY)
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const address = controller.address!
    expect(address.host).toBe('127.0.0.1')
    const ok = await fetch(`${address.url}/v1/health`, { headers: { authorization: `Bearer ${token}` } })
    expect(ok.status).toBe(200)

    await vscode.fake.executeCommand(COMMANDS.copyToken)
    expect(vscode.fake.clipboard).toBe(token)

    // A second activation (VS Code restart) reuses the stored token.
    await controller.stop()
    const again = new BridgeController(createFakeVscode({ settings: { 'lmGateway.bridge.port': 0 } }), context)
    cleanups.push(() => again.stop())
    await again.start()
    expect(await context.secrets.get(TOKEN_SECRET_KEY)).toBe(token)
  })

  it('shows the port and the in-flight count in the status bar', async () => {
    const { vscode, context, controller } = await activate()
    const item = vscode.fake.statusBarItems[0]!
    expect(item.visible).toBe(true)
    expect(item.command).toBe(COMMANDS.showStatus)
    expect(item.text).toContain(`:${controller.address!.port}`)
    const model = vscode.fake.addModel({ id: 'm', reply: slowText(['a', 'b'], 100) })
    const token = await context.secrets.get(TOKEN_SECRET_KEY)
    const res = await fetch(`${controller.address!.url}/v1/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'm', messages: [user('x')] }),
    })
    await model.waitForRequest(0)
    expect(item.text).toMatch(/\$\(sync~spin\) 1$/)
    await res.text()
    await until(() => !item.text.includes('sync~spin'))
  })

  it('registers the three commands and shows status with actions', async () => {
    const { vscode, context } = await activate()
    for (const id of Object.values(COMMANDS)) expect(vscode.fake.hasCommand(id)).toBe(true)
    vscode.fake.addModel({ id: 'm' })
    vscode.fake.chooseNextMessageItem('Copy token')
    await vscode.fake.executeCommand(COMMANDS.showStatus)
    const status = vscode.fake.messages.find((m) => m.message.includes('protocol v1'))!
    expect(status.message).toContain('1 model(s)')
    expect(status.items).toEqual(['Copy token', 'Restart'])
    expect(vscode.fake.clipboard).toBe(await context.secrets.get(TOKEN_SECRET_KEY))
  })

  it('restarts on command and on a settings change', async () => {
    const { vscode, controller } = await activate()
    await vscode.fake.executeCommand(COMMANDS.restart)
    expect(controller.address).toBeDefined()
    expect(vscode.fake.messages.some((m) => m.message.includes('restarted'))).toBe(true)
    const blocker = await serveFetch(async () => new Response('busy'), { port: 0, host: '127.0.0.1' })
    cleanups.push(() => blocker.close())
    // A port in use is reported, not thrown.
    vscode.fake.setSetting('lmGateway.bridge.port', blocker.port)
    await controller.restart()
    expect(controller.address).toBeUndefined()
    expect(vscode.fake.statusBarItems[0]!.text).toContain('$(warning)')
    expect(vscode.fake.messages.some((m) => m.level === 'warning' && m.message.includes(String(blocker.port)))).toBe(true)
    vscode.fake.setSetting('lmGateway.bridge.port', 0)
    await controller.restart()
    expect(controller.address!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('warns when the host is not loopback', async () => {
    const { vscode } = await activate({ 'lmGateway.bridge.host': '0.0.0.0' })
    expect(vscode.fake.messages.some((m) => m.level === 'warning' && m.message.includes('not a loopback'))).toBe(true)
  })

  it('does not warn for loopback hosts', async () => {
    const { vscode } = await activate({ 'lmGateway.bridge.host': '127.0.0.1' })
    expect(vscode.fake.messages.filter((m) => m.level === 'warning')).toEqual([])
  })

  it('dials the gateway when lmGateway.bridge.reverseUrl is set', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const seen: (string | undefined)[] = []
    server.on('connection', (ws, req) => {
      seen.push(req.headers.authorization)
      ws.on('message', () => {})
    })
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const { controller, context } = await activate({ 'lmGateway.bridge.reverseUrl': url }, { WebSocket })
    await until(() => controller.reverseState === 'open')
    expect(seen).toEqual([`Bearer ${await context.secrets.get(TOKEN_SECRET_KEY)}`])
    await controller.stop()
    expect(controller.reverseState).toBeUndefined()
    for (const client of server.clients) client.terminate()
  })
})
