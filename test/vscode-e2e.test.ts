/**
 * End to end, as a user runs it: the official `openai` client → the gateway
 * (on Node) → the real bridge extension (bridge/src) → the fake `vscode`
 * module. Over the bridge's HTTP port, and in reverse mode with the bridge
 * dialling the gateway's /bridge/connect WebSocket.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { connectReverse, type ReverseConnection } from '../bridge/src/reverse.js'
import { LanguageModelDataPart, LanguageModelToolCallPart, LanguageModelToolResultPart, slowText, type FakeChatModel, type ReplyScript } from './fakes/vscode.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { assertOpenAISchema } from './helpers/openai-spec.js'
import { sleep } from './helpers/upstream.js'
import { startBridge, type RunningBridge } from './helpers/vscode-bridge.js'

const TOKEN = 'e2e-bridge-token'
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

/** Tokens as the fake model counts them: one per character, so usage is checkable to the unit. */
const perChar = (t: string) => t.length

const weatherAgent: ReplyScript = async function* (ctx) {
  const last = ctx.request.messages[ctx.request.messages.length - 1]
  const result = last.content.find((p) => p instanceof LanguageModelToolResultPart) as LanguageModelToolResultPart | undefined
  if (!result) {
    yield ctx.text('Let me check.')
    yield ctx.toolCall('call_w1', 'get_weather', { city: 'Paris' })
    return
  }
  const text = (result.content as Array<{ value?: string }>).map((c) => c.value ?? '').join('')
  yield ctx.text(`In Paris it is ${text}.`)
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

describe('openai client → gateway → bridge → fake VS Code', () => {
  let bridge: RunningBridge
  let gw: RunningGateway
  let client: OpenAI
  let gpt: FakeChatModel
  let claude: FakeChatModel

  beforeAll(async () => {
    // Compiling OpenAI's schemas takes seconds: done up front, not while a test's sockets wait.
    assertOpenAISchema('CompletionUsage', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 })
    bridge = await startBridge(TOKEN)
    gpt = bridge.vscode.fake.addModel({
      id: 'copilot-gpt-4o',
      name: 'GPT-4o',
      vendor: 'copilot',
      family: 'gpt-4o',
      maxInputTokens: 63_000,
      capabilities: { supportsImageToText: true, supportsToolCalling: true },
      countTokens: perChar,
    })
    claude = bridge.vscode.fake.addModel({ id: 'claude-sonnet-4', vendor: 'copilot', maxInputTokens: 80_000, countTokens: perChar })
    gw = await startGateway({
      server: { apiKeys: ['sk-gw'] },
      providers: [{ id: 'vscode', type: 'vscode-bridge', url: bridge.url, token: TOKEN }],
      // A client that goes away cancels its model call at once (no wait for a stream resume).
      streaming: { reconnectGraceSec: 0 },
    })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw', maxRetries: 0 })
  })
  afterAll(async () => {
    await gw?.close()
    await bridge?.close()
  })
  afterEach(() => {
    for (const m of [gpt, claude]) {
      m.reply = async function* (ctx) {
        yield ctx.text(ctx.lastUserText())
      }
      m.consent = true
      m.failWith = undefined
    }
    bridge.token = TOKEN
  })

  it("lists VS Code's models as vscode/<id>", async () => {
    const list = await client.models.list()
    expect(list.data.map((m) => m.id).filter((id) => id.startsWith('vscode/'))).toEqual(['vscode/copilot-gpt-4o', 'vscode/claude-sonnet-4'])
    expect(list.data[0]).toMatchObject({ object: 'model', owned_by: 'copilot' })
  })

  it('answers a plain chat, with usage counted by the model tokenizer', async () => {
    gpt.reply = async function* (ctx) {
      yield ctx.text('Hi ')
      yield ctx.text('there!')
    }
    const res = await client.chat.completions.create({
      model: 'vscode/copilot-gpt-4o',
      messages: [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'Hello' },
      ],
    })
    assertOpenAISchema('CreateChatCompletionResponse', res)
    expect(res.choices[0]).toMatchObject({ finish_reason: 'stop', message: { role: 'assistant', content: 'Hi there!' } })
    // perChar: "Be kind." + "Hello" in, "Hi there!" out.
    expect(res.usage).toMatchObject({ prompt_tokens: 8 + 5, completion_tokens: 9, total_tokens: 22 })
    // VS Code saw the system prompt as the first User message.
    const sent = gpt.lastRequest!
    expect(sent.messages.map((m) => m.role)).toEqual([1, 1])
  })

  it('streams, with the include_usage chunk', async () => {
    gpt.reply = slowText(['One, ', 'two, ', 'three.'], 10)
    const stream = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'Count' }], stream: true, stream_options: { include_usage: true } })
    let text = ''
    let finish: string | null = null
    let usage: OpenAI.CompletionUsage | undefined
    let deltas = 0
    for await (const chunk of stream) {
      assertOpenAISchema('CreateChatCompletionStreamResponse', chunk)
      const c = chunk.choices[0]
      if (c?.delta.content) {
        text += c.delta.content
        deltas++
      }
      if (c?.finish_reason) finish = c.finish_reason
      if (chunk.usage) usage = chunk.usage
    }
    expect(text).toBe('One, two, three.')
    expect(deltas).toBeGreaterThanOrEqual(3)
    expect(finish).toBe('stop')
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 16 })
  })

  it('does a tool-calling round trip: call, tool result, answer', async () => {
    gpt.reply = weatherAgent
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ]
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }]
    const first = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages, tools })
    expect(first.choices[0].finish_reason).toBe('tool_calls')
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall
    expect(call).toMatchObject({ id: 'call_w1', type: 'function', function: { name: 'get_weather' } })
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' })
    messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21°C' })
    const second = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages, tools })
    expect(second.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'In Paris it is sunny, 21°C.' } })
    // VS Code's ordering rule held: the Assistant's call, then the User message with its result.
    const sent = gpt.lastRequest!.messages
    expect(sent.map((m) => m.role)).toEqual([1, 2, 1])
    expect(sent[1].content.some((p) => p instanceof LanguageModelToolCallPart && p.callId === 'call_w1')).toBe(true)
    expect(sent[2].content[0]).toBeInstanceOf(LanguageModelToolResultPart)
    expect(gpt.lastRequest!.options?.tools?.[0]).toMatchObject({ name: 'get_weather', description: 'Current weather' })
  })

  it('streams a tool call the way the openai client assembles it', async () => {
    gpt.reply = weatherAgent
    const stream = await client.chat.completions.create({
      model: 'vscode/copilot-gpt-4o',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
      stream: true,
    })
    let id = ''
    let name = ''
    let args = ''
    let finish: string | null = null
    for await (const chunk of stream) {
      const call = chunk.choices[0]?.delta.tool_calls?.[0]
      if (call?.id) id = call.id
      if (call?.function?.name) name = call.function.name
      args += call?.function?.arguments ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect({ id, name, args: JSON.parse(args), finish }).toEqual({ id: 'call_w1', name: 'get_weather', args: { city: 'Paris' }, finish: 'tool_calls' })
  })

  it('sends an image to the model as a data part', async () => {
    gpt.reply = async function* (ctx) {
      yield ctx.text('A tiny image.')
    }
    const res = await client.chat.completions.create({
      model: 'vscode/copilot-gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is it?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
    })
    expect(res.choices[0].message.content).toBe('A tiny image.')
    const part = gpt.lastRequest!.messages[0].content[1] as unknown as LanguageModelDataPart
    expect(part).toBeInstanceOf(LanguageModelDataPart)
    expect(part.mimeType).toBe('image/png')
    expect(Buffer.from(part.data).toString('base64')).toBe(PNG)
  })

  it('cancels one of two concurrent streams; the other completes and only the first token is cancelled', async () => {
    gpt.reply = slowText(Array.from({ length: 40 }, (_, i) => `a${i} `), 15)
    claude.reply = slowText(Array.from({ length: 20 }, (_, i) => `b${i} `), 15)
    const gptBefore = gpt.requests.length
    const claudeBefore = claude.requests.length
    const ac = new AbortController()
    const one = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'long' }], stream: true }, { signal: ac.signal })
    const two = await client.chat.completions.create({ model: 'vscode/claude-sonnet-4', messages: [{ role: 'user', content: 'long too' }], stream: true })
    const readOne = (async () => {
      let n = 0
      try {
        for await (const chunk of one) {
          if (chunk.choices[0]?.delta.content && ++n === 3) {
            ac.abort()
            break
          }
        }
      } catch (err) {
        return { n, err }
      }
      return { n, err: undefined }
    })()
    let text = ''
    for await (const chunk of two) text += chunk.choices[0]?.delta.content ?? ''
    const r1 = await readOne
    expect(r1.n).toBe(3)
    // openai 6 ends an aborted stream's iteration quietly, or with its abort error.
    if (r1.err) expect(r1.err).toBeInstanceOf(OpenAI.APIUserAbortError)
    expect(text).toBe(Array.from({ length: 20 }, (_, i) => `b${i} `).join(''))
    await until(() => gpt.requests[gptBefore]?.cancelled === true, 'the cancelled stream to reach VS Code')
    expect(claude.requests[claudeBefore]).toMatchObject({ cancelled: false, finished: true })
    expect(claude.requests[claudeBefore].token?.isCancellationRequested).toBe(false)
  })

  it('enforces stop sequences across chunks and max_tokens, with the finish reasons', async () => {
    gpt.reply = slowText(['The answer is 4', '2. END', ' of story'], 10)
    const stopped = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'q' }], stop: ['END'] })
    expect(stopped.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'The answer is 42. ' } })
    expect(gpt.lastRequest!.options?.modelOptions).toMatchObject({ stop: ['END'] })

    gpt.reply = slowText(Array.from({ length: 50 }, () => 'lorem '), 5)
    const long = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'q' }], max_tokens: 4 })
    expect(long.choices[0].finish_reason).toBe('length')
    expect(long.choices[0].message.content).toBe('lorem lorem lore')
    await until(() => gpt.lastRequest?.cancelled === true, 'the model to be cancelled at max_tokens')
  })

  it('serves Anthropic clients too: system prompt, stop_sequences → stop_reason stop_sequence, usage', async () => {
    gpt.reply = slowText(['Alpha ', 'beta #', '# gamma'], 5)
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'sk-gw', maxRetries: 0 })
    const msg = await anthropic.messages.create({
      model: 'vscode/copilot-gpt-4o',
      max_tokens: 100,
      system: 'Be short.',
      messages: [{ role: 'user', content: 'go' }],
      stop_sequences: ['##'],
    })
    expect(msg.stop_reason).toBe('stop_sequence')
    expect(msg.stop_sequence).toBe('##')
    expect(msg.content).toMatchObject([{ type: 'text', text: 'Alpha beta ' }])
    expect(msg.usage).toMatchObject({ input_tokens: 'Be short.'.length + 'go'.length, output_tokens: 'Alpha beta '.length })
  })

  it('consent refused: 403 telling the user to allow access in VS Code', async () => {
    gpt.consent = false
    const err = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError)
    expect(err.status).toBe(403)
    expect(err.message).toContain('Manage Language Model Access')
    expect(err.message).toMatch(/allow/i)
  })

  it('model not found: 404 model_not_found', async () => {
    const err = await client.chat.completions.create({ model: 'vscode/gpt-9-ultra', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.error).toMatchObject({ code: 'model_not_found' })
  })

  it('bridge token wrong: 502 naming the bridge token, not the API key', async () => {
    bridge.token = 'regenerated-in-vscode'
    const err = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.InternalServerError)
    expect(err.status).toBe(502)
    expect(err.error).toMatchObject({ code: 'bridge_auth_failed' })
    expect(err.message).toContain('bridge token')
    expect(err.message).toContain('not your API key')
  })

  it('bridge down: 503 with a clear message', async () => {
    const other = await startBridge(TOKEN)
    const url = other.url
    await other.close()
    const g = await startGateway({ providers: [{ id: 'vscode', type: 'vscode-bridge', url, token: TOKEN }] })
    try {
      const c = new OpenAI({ baseURL: g.baseURL, apiKey: 'none', maxRetries: 0 })
      const err = await c.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
      expect(err.status).toBe(503)
      expect(err.message).toContain(`VS Code bridge is not reachable at ${url}`)
      expect(err.message).toContain('is VS Code running with the LM Gateway Bridge extension?')
      const health = await (await fetch(`${g.url}/health`)).json()
      expect(health.providers[0]).toMatchObject({ id: 'vscode', type: 'vscode-bridge', ok: false })
    } finally {
      await g.close()
    }
  })
})

describe('reverse mode: the bridge dials the gateway', () => {
  let bridge: RunningBridge
  let gw: RunningGateway
  let client: OpenAI
  let model: FakeChatModel
  let connection: ReverseConnection | undefined

  beforeAll(async () => {
    bridge = await startBridge(TOKEN)
    model = bridge.vscode.fake.addModel({ id: 'copilot-gpt-4o', vendor: 'copilot', countTokens: perChar })
    // Nothing listens at the URL: the gateway can only reach this bridge through the socket it dials.
    gw = await startGateway({
      server: { apiKeys: ['sk-gw'] },
      providers: [{ id: 'vscode', type: 'vscode-bridge', url: 'http://127.0.0.1:1', token: TOKEN }],
      streaming: { reconnectGraceSec: 0 },
    })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw', maxRetries: 0 })
  })
  afterAll(async () => {
    connection?.close()
    await gw?.close()
    await bridge?.close()
  })

  it('refuses a bridge with the wrong token before upgrading', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/bridge/connect`, { headers: { authorization: 'Bearer wrong' } })
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('open', () => reject(new Error('upgraded with a wrong token')))
      ws.on('error', () => {})
    })
    expect(status).toBe(401)
    const plain = await fetch(`${gw.url}/bridge/connect`)
    expect(plain.status).toBe(426)
  })

  it('serves chat over the socket, with usage, and lists the models', async () => {
    const before = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(before.status).toBe(503)
    expect(before.message).toContain('No bridge is connected in reverse mode either')

    connection = connectReverse({
      url: gw.url,
      token: TOKEN,
      handler: bridge.app.fetch,
      WebSocket,
      minDelayMs: 20,
      maxDelayMs: 100,
      // As the extension's controller wires it.
      modelsChanged: (listener) => bridge.vscode.lm.onDidChangeChatModels(listener),
    })
    await until(() => connection!.state === 'open', 'the bridge to connect')
    model.reply = slowText(['Over ', 'the ', 'socket.'], 5)
    const res = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hello' }] })
    expect(res.choices[0].message.content).toBe('Over the socket.')
    expect(res.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 16 })
    const list = await client.models.list()
    expect(list.data.map((m) => m.id)).toContain('vscode/copilot-gpt-4o')
    const health = await (await fetch(`${gw.url}/health`)).json()
    expect(health.providers[0]).toMatchObject({ ok: true, detail: expect.stringContaining('reverse mode') })
  })

  it('refreshes the model list when VS Code reports a change (models_changed frame)', async () => {
    expect((await client.models.list()).data.map((m) => m.id)).not.toContain('vscode/late-model')
    bridge.vscode.fake.addModel({ id: 'late-model' })
    let ids: string[] = []
    const deadline = Date.now() + 3000
    while (!ids.includes('vscode/late-model') && Date.now() < deadline) {
      ids = (await client.models.list()).data.map((m) => m.id)
      await sleep(20)
    }
    expect(ids).toContain('vscode/late-model')
  })

  it('cancels one of two concurrent streams over the socket; the other completes', async () => {
    model.reply = async function* (ctx) {
      const tag = ctx.lastUserText()
      for (let i = 0; i < 20; i++) {
        await ctx.sleep(15)
        if (ctx.token.isCancellationRequested) return
        yield ctx.text(`${tag}${i} `)
      }
    }
    const before = model.requests.length
    const ac = new AbortController()
    const one = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: ac.signal })
    const two = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'y' }], stream: true })
    const readOne = (async () => {
      let n = 0
      try {
        for await (const chunk of one) {
          if (chunk.choices[0]?.delta.content && ++n === 2) {
            ac.abort()
            break
          }
        }
      } catch {
        /* aborted */
      }
      return n
    })()
    let text = ''
    for await (const chunk of two) text += chunk.choices[0]?.delta.content ?? ''
    expect(await readOne).toBe(2)
    expect(text).toBe(Array.from({ length: 20 }, (_, i) => `y${i} `).join(''))
    const reqs = model.requests.slice(before)
    const x = reqs.find((r) => r.messages[0].content.some((p) => (p as { value?: string }).value === 'x'))!
    const y = reqs.find((r) => r.messages[0].content.some((p) => (p as { value?: string }).value === 'y'))!
    await until(() => x.cancelled, 'the cancel frame to reach VS Code')
    expect(y.cancelled).toBe(false)
    expect(y.token?.isCancellationRequested).toBe(false)
  })

  it('fails calls in flight when the bridge disconnects, then falls back to the URL (503)', async () => {
    model.reply = slowText(Array.from({ length: 100 }, () => 'z '), 20)
    const stream = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'q' }], stream: true })
    let got = 0
    let failed: unknown
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content && ++got === 2) connection!.close()
      }
    } catch (err) {
      failed = err
    }
    expect(got).toBeGreaterThanOrEqual(2)
    expect(String((failed as Error | undefined)?.message ?? '')).toContain('disconnected')
    const after = await client.chat.completions.create({ model: 'vscode/copilot-gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(after.status).toBe(503)
  })
})
