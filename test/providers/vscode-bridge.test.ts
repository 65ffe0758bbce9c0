/**
 * The vscode-bridge provider against the REAL bridge extension (bridge/src)
 * running over the fake `vscode` module: directly over HTTP, and in reverse
 * mode with the bridge dialling a gateway-side WebSocket endpoint.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { connectReverse, type ReverseConnection } from '../../bridge/src/reverse.js'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatEvent, ChatRequest } from '../../src/core/types.js'
import { attachBridgeUpgrade } from '../../src/entry/node-bridge-upgrade.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import { vscodeBridgeProvider, type VscodeBridgeOptions, type VscodeBridgeProvider } from '../../src/providers/vscode-bridge/index.js'
import type { CallContext } from '../../src/providers/types.js'
import { bridgeConnector } from '../../src/ws/bridge-connect.js'
import { LanguageModelDataPart, LanguageModelError, LanguageModelTextPart, LanguageModelToolCallPart, LanguageModelToolResultPart, slowText, type FakeChatModel, type ReplyScript } from '../fakes/vscode.js'
import { startUpstream, sleep } from '../helpers/upstream.js'
import { startBridge, type RunningBridge } from '../helpers/vscode-bridge.js'
import { providerContract, type Scenario } from '../provider-contract.js'

const TOKEN = 'bridge-token-for-tests'
const MODEL = 'copilot-gpt-4o'

const helloWorld: ReplyScript = async function* (ctx) {
  yield ctx.text('Hello, ')
  yield ctx.text('world!')
}

/** A gateway-side endpoint for reverse mode: a plain Node server with the Node upgrade hook. */
async function reverseEndpoint(provider: VscodeBridgeProvider): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((_, res) => res.writeHead(404).end())
  const detach = attachBridgeUpgrade(server, bridgeConnector([provider]))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    server,
    async close() {
      detach()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

async function dialIn(bridge: RunningBridge, url: string, provider: VscodeBridgeProvider): Promise<ReverseConnection> {
  const connection = connectReverse({ url, token: bridge.token, handler: bridge.app.fetch, WebSocket, minDelayMs: 20, maxDelayMs: 100 })
  const deadline = Date.now() + 5000
  while (!(connection.state === 'open' && provider.reverse?.hub.current() !== undefined)) {
    if (Date.now() > deadline) throw new Error('the bridge did not connect in reverse mode')
    await sleep(10)
  }
  return connection
}

function harness(mode: 'direct' | 'direct-fetch' | 'reverse') {
  return async () => {
    const bridge = await startBridge(TOKEN)
    const model: FakeChatModel = bridge.vscode.fake.addModel({
      id: MODEL,
      name: 'GPT-4o',
      vendor: 'copilot',
      family: 'gpt-4o',
      maxInputTokens: 63_000,
      capabilities: { supportsImageToText: true, supportsToolCalling: true },
    })
    // In reverse mode the URL points nowhere: every call must travel over the socket.
    const url = mode === 'reverse' ? 'http://127.0.0.1:1' : bridge.url
    const provider = vscodeBridgeProvider({ id: 'vscode', url, token: TOKEN }, mode === 'direct-fetch' ? fetchClient() : undiciClient())
    let endpoint: Awaited<ReturnType<typeof reverseEndpoint>> | undefined
    let connection: ReverseConnection | undefined
    if (mode === 'reverse') {
      endpoint = await reverseEndpoint(provider)
      connection = await dialIn(bridge, endpoint.url, provider)
    }
    return {
      provider,
      model: MODEL,
      supports: { tools: true, images: true, streaming: true },
      exactUsage: false,
      arrange(s: Scenario) {
        model.failWith = undefined
        bridge.token = TOKEN
        switch (s) {
          case 'text':
            model.reply = helloWorld
            break
          case 'tool_call':
            model.reply = async function* (ctx) {
              yield ctx.toolCall('call_1', 'get_weather', { city: 'Paris' })
            }
            break
          case 'image':
            model.reply = async function* (ctx) {
              yield ctx.text('A single pixel.')
            }
            break
          case 'error_500':
            model.failWith = () => new Error('The model endpoint crashed')
            break
          case 'error_401':
            // The user regenerated the token in VS Code; the gateway still has the old one.
            bridge.token = 'a-new-token'
            break
          case 'error_429':
            model.failWith = () => LanguageModelError.Blocked('Sorry, your request was rate-limited. Please wait 7 seconds before trying again.')
            break
          case 'error_400':
            model.failWith = () => new Error('Invalid request: the conversation cannot be sent to this model')
            break
          case 'slow':
            model.reply = slowText(Array.from({ length: 200 }, (_, i) => `w${i} `), 20)
            break
        }
      },
      sawImage() {
        const last = model.lastRequest!
        return last.messages.some((m) => m.content.some((p) => p instanceof LanguageModelDataPart && p.mimeType === 'image/png' && p.data.length > 0))
      },
      upstreamAborted: () => model.lastRequest?.cancelled === true,
      async teardown() {
        connection?.close()
        await endpoint?.close()
        await bridge.close()
      },
    }
  }
}

providerContract('vscode-bridge (real bridge, undici)', harness('direct'))
providerContract('vscode-bridge (real bridge, fetch)', harness('direct-fetch'))
providerContract('vscode-bridge (reverse mode over a WebSocket)', harness('reverse'))

// ---------------------------------------------------------------- specifics

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function ctx(signal = new AbortController().signal): CallContext {
  return { signal, requestId: 'req_test', meta: {} }
}

async function setup(reply?: ReplyScript, opts: Partial<VscodeBridgeOptions> = {}) {
  const bridge = await startBridge(TOKEN)
  const model = bridge.vscode.fake.addModel({ id: MODEL, reply, capabilities: { supportsImageToText: true, supportsToolCalling: true } })
  const provider = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: TOKEN, ...opts }, undiciClient())
  cleanups.push(() => bridge.close())
  return { bridge, model, provider }
}

const user = (text: string): ChatRequest['messages'][number] => ({ role: 'user', content: [{ type: 'text', text }] })
const req = (extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: MODEL, stream: true, messages: [user('hi')], ...extra })

async function events(stream: ReadableStream<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = []
  for await (const e of stream as unknown as AsyncIterable<ChatEvent>) out.push(e)
  return out
}

async function failure(stream: ReadableStream<ChatEvent>): Promise<GatewayError> {
  try {
    await events(stream)
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError)
    return err as GatewayError
  }
  throw new Error('expected a failure')
}

function chunks(...parts: string[]): ReplyScript {
  return async function* (ctx) {
    for (const p of parts) {
      if (ctx.token.isCancellationRequested) return
      yield ctx.text(p)
      await ctx.sleep(5)
    }
  }
}

describe('vscode-bridge: what VS Code receives', () => {
  it('puts the system prompt first as a User message, tool calls in an Assistant message and results right after, images as data parts', async () => {
    const { model, provider } = await setup(chunks('ok'))
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
    const result = await aggregate(
      provider.chat(
        req({
          messages: [
            { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
            { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }, { type: 'image', mimeType: 'image/png', data: png }] },
            {
              role: 'assistant',
              content: [
                { type: 'text', text: 'Checking.' },
                { type: 'tool_call', id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
                { type: 'tool_call', id: 'c2', name: 'get_weather', arguments: '{"city":"Rome"}' },
              ],
            },
            { role: 'tool', content: [{ type: 'tool_result', callId: 'c1', content: [{ type: 'text', text: 'sunny' }] }] },
            { role: 'tool', content: [{ type: 'tool_result', callId: 'c2', content: [{ type: 'text', text: 'rain' }] }] },
            { role: 'user', content: [{ type: 'text', text: 'Summarise.' }] },
          ],
          tools: [{ name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
          temperature: 0.2,
          topP: 0.9,
          maxTokens: 100,
        }),
        ctx(),
      ),
    )
    expect(result.content).toEqual([{ type: 'text', text: 'ok' }])
    const sent = model.lastRequest!
    expect(sent.messages.map((m) => m.role)).toEqual([1, 1, 2, 1])
    expect((sent.messages[0].content[0] as LanguageModelTextPart).value).toBe('Be brief.')
    expect(sent.messages[1].content[1]).toBeInstanceOf(LanguageModelDataPart)
    const calls = sent.messages[2].content.filter((p) => p instanceof LanguageModelToolCallPart) as LanguageModelToolCallPart[]
    expect(calls.map((c) => [c.callId, c.input])).toEqual([
      ['c1', { city: 'Paris' }],
      ['c2', { city: 'Rome' }],
    ])
    // Both results and the follow-up text share the one User message after the calls.
    const after = sent.messages[3].content
    expect(after.map((p) => p.constructor.name)).toEqual(['LanguageModelToolResultPart', 'LanguageModelToolResultPart', 'LanguageModelTextPart'])
    expect((after[0] as LanguageModelToolResultPart).callId).toBe('c1')
    expect(sent.options?.tools).toEqual([{ name: 'get_weather', description: 'Weather for a city', inputSchema: { type: 'object', properties: { city: { type: 'string' } } } }])
    expect(sent.options?.toolMode).toBeUndefined()
    expect(sent.options?.modelOptions).toEqual({ temperature: 0.2, top_p: 0.9, max_tokens: 100 })
    expect(sent.options?.justification).toContain('vscode-lm-gateway')
  })

  it('maps tool_choice: required → toolMode Required; a named tool → Required with only that tool; none → no tools', async () => {
    const { model, provider } = await setup(chunks('ok'))
    const tools = [
      { name: 'a', parameters: { type: 'object' } },
      { name: 'b', description: 'B', parameters: { type: 'object' } },
    ]
    await aggregate(provider.chat(req({ tools, toolChoice: 'required' }), ctx()))
    expect(model.lastRequest!.options?.toolMode).toBe(2)
    expect(model.lastRequest!.options?.tools?.map((t) => t.name)).toEqual(['a', 'b'])
    await aggregate(provider.chat(req({ tools, toolChoice: { name: 'b' } }), ctx()))
    expect(model.lastRequest!.options?.toolMode).toBe(2)
    expect(model.lastRequest!.options?.tools).toEqual([{ name: 'b', description: 'B', inputSchema: { type: 'object' } }])
    await aggregate(provider.chat(req({ tools, toolChoice: 'none' }), ctx()))
    expect(model.lastRequest!.options?.tools).toBeUndefined()
    const err = await failure(provider.chat(req({ tools, toolChoice: { name: 'zzz' } }), ctx()))
    expect(err).toMatchObject({ kind: 'invalid_request', param: 'tool_choice' })
  })

  it('refuses content vscode.lm cannot take, with a 400 naming the field', async () => {
    const { provider } = await setup()
    const audio = await failure(provider.chat(req({ messages: [{ role: 'user', content: [{ type: 'audio', mimeType: 'audio/wav', data: 'AAAA' }] }] }), ctx()))
    expect(audio).toMatchObject({ kind: 'invalid_request', status: 400, param: 'messages[0].content[0]' })
    const remote = await failure(provider.chat(req({ messages: [{ role: 'user', content: [{ type: 'image', mimeType: 'image/png', url: 'https://example.com/a.png' }] }] }), ctx()))
    expect(remote.message).toContain('data: URL')
    const badArgs = await failure(provider.chat(req({ messages: [user('x'), { role: 'assistant', content: [{ type: 'tool_call', id: 'c', name: 'f', arguments: '{nope' }] }] }), ctx()))
    expect(badArgs).toMatchObject({ kind: 'invalid_request', param: 'messages[1].content[0].arguments' })
  })

  it('reports VS Code refusing the conversation (tool result without its call) as a 400', async () => {
    const { provider } = await setup()
    const err = await failure(provider.chat(req({ messages: [{ role: 'tool', content: [{ type: 'tool_result', callId: 'x', content: [{ type: 'text', text: '1' }] }] }] }), ctx()))
    expect(err).toMatchObject({ kind: 'invalid_request', status: 400 })
    expect(err.message).toContain('LanguageModelToolResultPart')
  })
})

describe('vscode-bridge: stop sequences and max_tokens, enforced gateway-side', () => {
  it('cuts at a stop sequence split across chunks, reports stop_sequence, and cancels the model', async () => {
    const { model, provider } = await setup(async function* (ctx) {
      for (const p of ['Hello wo', 'rld. ST', 'OP and more', ' text that must never arrive']) {
        yield ctx.text(p)
        await ctx.sleep(30)
        if (ctx.token.isCancellationRequested) return
      }
    })
    const ev = await events(provider.chat(req({ stop: ['STOP', 'never'] }), ctx()))
    const text = ev.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('')
    expect(text).toBe('Hello world. ')
    expect(ev[ev.length - 1]).toEqual({ type: 'finish', reason: 'stop_sequence', stopSequence: 'STOP' })
    await expect.poll(() => model.lastRequest?.cancelled, { timeout: 3000 }).toBe(true)
  })

  it('releases held-back text when no stop sequence completes', async () => {
    const { provider } = await setup(chunks('abc S', 'TO', 'x end S'))
    const result = await aggregate(provider.chat(req({ stop: ['STOP'] }), ctx()))
    expect(result.content).toEqual([{ type: 'text', text: 'abc STOx end S' }])
    expect(result.finishReason).toBe('stop')
  })

  it('stops at max_tokens with finish length and cancels the model', async () => {
    const { model, provider } = await setup(slowText(Array.from({ length: 100 }, () => 'word '), 10))
    const result = await aggregate(provider.chat(req({ maxTokens: 5 }), ctx()))
    expect(result.finishReason).toBe('length')
    const text = (result.content[0] as { text: string }).text
    expect(text.length).toBe(20)
    // The fake counts a token per four characters, so the count agrees with the budget.
    expect(result.usage?.outputTokens).toBe(5)
    await expect.poll(() => model.lastRequest?.cancelled, { timeout: 3000 }).toBe(true)
  })

  it('does not call an answer that ends exactly at max_tokens truncated', async () => {
    const { provider } = await setup(chunks('12345678'))
    const result = await aggregate(provider.chat(req({ maxTokens: 2 }), ctx()))
    expect(result.finishReason).toBe('stop')
  })
})

describe('vscode-bridge: events and usage', () => {
  it('maps tool calls (one delta with the JSON input) and thinking', async () => {
    const bridge = await startBridge(TOKEN, { thinkingPart: true })
    cleanups.push(() => bridge.close())
    bridge.vscode.fake.addModel({
      id: MODEL,
      reply: async function* (ctx) {
        yield ctx.thinking('Let me think.')
        yield ctx.text('Calling.')
        yield ctx.toolCall('call_a', 'lookup', { q: 'x', n: 2 })
        yield ctx.toolCall('call_b', 'lookup', { q: 'y' })
      },
    })
    const provider = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: TOKEN }, undiciClient())
    const ev = await events(provider.chat(req(), ctx()))
    expect(ev.filter((e) => e.type !== 'usage')).toEqual([
      { type: 'thinking', text: 'Let me think.' },
      { type: 'text', text: 'Calling.' },
      { type: 'tool_call_start', index: 0, id: 'call_a', name: 'lookup' },
      { type: 'tool_call_delta', index: 0, arguments: '{"q":"x","n":2}' },
      { type: 'tool_call_start', index: 1, id: 'call_b', name: 'lookup' },
      { type: 'tool_call_delta', index: 1, arguments: '{"q":"y"}' },
      { type: 'finish', reason: 'tool_calls' },
    ])
  })

  it("counts usage with the model's tokenizer and caches prompt messages by hash", async () => {
    const bridge = await startBridge(TOKEN)
    cleanups.push(() => bridge.close())
    // One token per character: distinguishable from the gateway's 4-characters estimate.
    const model = bridge.vscode.fake.addModel({ id: MODEL, reply: chunks('abc', 'de'), countTokens: (t) => t.length })
    const provider = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: TOKEN }, undiciClient())
    const conversation = [user('first question'), { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'first answer' }] }]
    const one = await aggregate(provider.chat(req({ messages: [...conversation, user('q2')] }), ctx()))
    expect(one.usage).toEqual({ inputTokens: 'first question'.length + 'first answer'.length + 'q2'.length, outputTokens: 5 })
    const countedBefore = model.countTokensCalls.length
    const two = await aggregate(provider.chat(req({ messages: [...conversation, user('q3!')] }), ctx()))
    expect(two.usage?.inputTokens).toBe('first question'.length + 'first answer'.length + 3)
    // Only the new message and the completion were counted again.
    expect(model.countTokensCalls.length - countedBefore).toBe(2)
    expect(await provider.countTokens!(req({ messages: [user('12345')] }), ctx())).toBe(5)
  })

  it('falls back to the estimate, marked estimated, when the bridge cannot count', async () => {
    const { model, provider } = await setup(chunks('abcd'))
    model.countTokensFn = () => {
      throw new Error('tokenizer unavailable')
    }
    const result = await aggregate(provider.chat(req(), ctx()))
    expect(result.usage).toMatchObject({ outputTokens: 1, estimated: true })
    expect(result.usage!.inputTokens).toBeGreaterThan(0)
  })

  it('tolerates NDJSON split at every byte (a tunnel re-chunking the stream)', async () => {
    const lines = [{ type: 'text', text: 'héllo ' }, { type: 'tool_call', callId: 'c', name: 'f', input: { a: '✓' } }, { type: 'end' }].map((e) => JSON.stringify(e) + '\n').join('')
    const bytes = Buffer.from(lines)
    const up = await startUpstream(async (r, res) => {
      if (r.url === '/prefix/v1/chat') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        for (const b of bytes) {
          res.write(Buffer.from([b]))
          await sleep(1)
        }
        return void res.end()
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tokens: 3 }))
    })
    cleanups.push(() => up.close())
    const provider = vscodeBridgeProvider({ id: 'vscode', url: `${up.url}/prefix/`, token: TOKEN, headers: { 'x-tunnel-skip-antiphishing-page': 'true' } }, undiciClient())
    const result = await aggregate(provider.chat(req(), ctx()))
    expect(result.content).toEqual([
      { type: 'text', text: 'héllo ' },
      { type: 'tool_call', id: 'c', name: 'f', arguments: '{"a":"✓"}' },
    ])
    // The URL's path prefix is kept for every route (tunnels mount the bridge under one).
    expect(up.requests.every((r) => r.url.startsWith('/prefix/v1/'))).toBe(true)
    expect(up.requests[0].headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(up.requests[0].headers['x-tunnel-skip-antiphishing-page']).toBe('true')
  })

  it('reports a stream that breaks off without its end event as a retryable upstream error', async () => {
    const up = await startUpstream((r, res) => {
      if (r.url !== '/v1/chat') return void res.writeHead(500).end()
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"type":"text","text":"par')
      res.end()
    })
    cleanups.push(() => up.close())
    const provider = vscodeBridgeProvider({ id: 'vscode', url: up.url, token: TOKEN, countUsage: false }, undiciClient())
    const err = await failure(provider.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'upstream', retryable: true })
  })
})

describe('vscode-bridge: errors users can act on', () => {
  it('consent refused: 403 telling the user to allow access in VS Code', async () => {
    const { model, provider } = await setup()
    model.consent = false
    const err = await failure(provider.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'permission', status: 403, retryable: false })
    expect(err.message).toMatch(/allow/i)
    expect(err.message).toContain('Manage Language Model Access')
  })

  it('an unknown model is model_not_found', async () => {
    const { provider } = await setup()
    const err = await failure(provider.chat(req({ model: 'no-such-model' }), ctx()))
    expect(err).toMatchObject({ kind: 'not_found', status: 404, code: 'model_not_found' })
  })

  it('a failure after the first part ends the stream with the mapped error', async () => {
    const { provider } = await setup(async function* (ctx) {
      yield ctx.text('partial')
      throw LanguageModelError.Blocked('Quota exceeded, try again in 2 minutes')
    })
    const reader = provider.chat(req(), ctx()).getReader()
    expect(await reader.read()).toEqual({ done: false, value: { type: 'text', text: 'partial' } })
    const err = await reader.read().then(
      () => undefined,
      (e: GatewayError) => e,
    )
    expect(err).toMatchObject({ kind: 'rate_limit', retryAfter: 120 })
  })

  it('bridge down: 503 saying the bridge is not reachable and what to check', async () => {
    const { bridge, provider } = await setup()
    await bridge.close()
    const err = await failure(provider.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'unavailable', status: 503, code: 'bridge_unreachable' })
    expect(err.message).toContain(`VS Code bridge is not reachable at ${bridge.url}`)
    expect(err.message).toContain('is VS Code running with the LM Gateway Bridge extension?')
    await expect(provider.models(AbortSignal.timeout(2000))).rejects.toMatchObject({ status: 503 })
    expect(await provider.health!(AbortSignal.timeout(2000))).toMatchObject({ ok: false })
  })

  it('wrong bridge token: 502 naming the bridge token, not the API key', async () => {
    const bridge = await startBridge('the-real-token')
    cleanups.push(() => bridge.close())
    bridge.vscode.fake.addModel({ id: MODEL })
    const p = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: 'an-old-token' }, undiciClient())
    const err = await failure(p.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'auth', status: 502, code: 'bridge_auth_failed', retryable: false })
    expect(err.message).toContain('bridge token')
    expect(err.message).toContain('not your API key')
  })

  it('a proxy or tunnel page instead of the bridge is named as such', async () => {
    const up = await startUpstream((_, res) => void res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad gateway</html>'))
    cleanups.push(() => up.close())
    const provider = vscodeBridgeProvider({ id: 'vscode', url: up.url, token: TOKEN }, undiciClient())
    const err = await failure(provider.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'upstream', code: 'bridge_unexpected_answer', retryable: true })
    expect(err.message).toContain('tunnel')
  })

  it('times out when the model never starts answering, with a hint about the consent prompt', async () => {
    const { provider } = await setup(async function* (ctx) {
      await ctx.sleep(5000)
      yield ctx.text('late')
    }, { firstByteTimeoutMs: 150 })
    const err = await failure(provider.chat(req(), ctx()))
    expect(err).toMatchObject({ kind: 'timeout', status: 504 })
    expect(err.message).toContain('prompt')
  })
})

describe('vscode-bridge: models, health, embeddings', () => {
  it('lists models with capabilities and context window', async () => {
    const bridge = await startBridge(TOKEN)
    cleanups.push(() => bridge.close())
    bridge.vscode.fake.addModel({ id: 'copilot-gpt-4o', name: 'GPT-4o', vendor: 'copilot', maxInputTokens: 63_000, capabilities: { supportsImageToText: true, supportsToolCalling: true } })
    bridge.vscode.fake.addModel({ id: 'other', vendor: 'acme', maxInputTokens: 8000 })
    const provider = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: TOKEN }, undiciClient())
    expect(await provider.models()).toEqual([
      { id: 'copilot-gpt-4o', name: 'GPT-4o', ownedBy: 'copilot', contextWindow: 63_000, capabilities: { tools: true, vision: true, streaming: true, embeddings: false } },
      { id: 'other', name: 'other', ownedBy: 'acme', contextWindow: 8000, capabilities: { tools: true, vision: false, streaming: true, embeddings: false } },
    ])
    expect(await provider.health!()).toEqual({ ok: true, detail: `VS Code 1.104.0, bridge protocol 1, at ${bridge.url}` })
  })

  it('embeddings: a clear 400 where VS Code has no embeddings API, vectors where it has', async () => {
    const { provider } = await setup()
    await expect(provider.embed!({ model: 'text-embedding-3-small', input: ['a'] }, ctx())).rejects.toMatchObject({
      kind: 'invalid_request',
      status: 400,
      code: 'embeddings_not_supported',
      message: expect.stringContaining('VS Code has no embeddings API'),
    })
    const bridge = await startBridge(TOKEN, { embeddings: true })
    cleanups.push(() => bridge.close())
    const p = vscodeBridgeProvider({ id: 'vscode', url: bridge.url, token: TOKEN }, undiciClient())
    const result = await p.embed!({ model: 'text-embedding-3-small', input: ['one two', 'three'] }, ctx())
    expect(result.embeddings).toHaveLength(2)
    expect(result.embeddings[0]).toEqual(bridge.vscode.fake.embedCalls[0] && [7, expect.any(Number), 2, 1])
  })
})
