/**
 * Claude Code's and Codex's APIs over the VS Code bridge: the real
 * @anthropic-ai/sdk and openai clients → the gateway → the real bridge →
 * the fake `vscode` module, whose models count one token per character, so
 * the counts the clients see are checkable to the unit.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LanguageModelToolResultPart, type ReplyScript } from './fakes/vscode.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { startBridge, type RunningBridge } from './helpers/vscode-bridge.js'

const TOKEN = 'bridge-token'

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

let bridge: RunningBridge
let gw: RunningGateway
beforeAll(async () => {
  bridge = await startBridge(TOKEN)
  bridge.vscode.fake.addModel({ id: 'claude-sonnet-4.5', vendor: 'copilot', maxInputTokens: 80_000, capabilities: { supportsImageToText: false, supportsToolCalling: true }, countTokens: (t: string) => t.length, reply: weatherAgent })
  bridge.vscode.fake.addModel({ id: 'gpt-4o', vendor: 'copilot', maxInputTokens: 63_000, capabilities: { supportsImageToText: false, supportsToolCalling: true }, countTokens: (t: string) => t.length })
  gw = await startGateway({ server: { apiKeys: ['sk-gw'] }, providers: [{ id: 'vscode', type: 'vscode-bridge', url: bridge.url, token: TOKEN }] })
})
afterAll(async () => {
  await gw?.close()
  await bridge?.close()
})

const weather = { name: 'get_weather', description: 'Weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } }

describe('Anthropic SDK over the vscode-bridge provider', () => {
  const client = () => new Anthropic({ baseURL: gw.url, apiKey: 'sk-gw', maxRetries: 0 })

  it('a dated Claude id reaches Copilot’s claude-sonnet-4.5; text and tool call in one message; tool round trip', async () => {
    const first = await client().messages.stream({ model: 'claude-sonnet-4-5-20250929', max_tokens: 1000, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage()
    expect(first.model).toBe('claude-sonnet-4-5-20250929')
    expect(first.content).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'call_w1', name: 'get_weather', input: { city: 'Paris' } },
    ])
    expect(first.stop_reason).toBe('tool_use')
    const second = await client().messages.create({
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 1000,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_w1', content: 'sunny' }] },
      ],
    })
    expect(second.content).toEqual([{ type: 'text', text: 'In Paris it is sunny.' }])
  })

  it('count_tokens uses VS Code’s tokenizer, and message_start reports the same count', async () => {
    const params = { model: 'vscode/gpt-4o', messages: [{ role: 'user' as const, content: 'Count every character of this sentence, please.' }] }
    const counted = await client().messages.countTokens(params)
    // One token per character: at least the text itself, far above the ~4-characters-a-token estimate.
    expect(counted.input_tokens).toBeGreaterThanOrEqual(params.messages[0].content.length)
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-gw' }, body: JSON.stringify({ ...params, max_tokens: 100, stream: true }) })
    const start = JSON.parse((await res.text()).split('\n').find((l) => l.startsWith('data: {"type":"message_start"'))!.slice(6))
    expect(start.message.usage.input_tokens).toBe(counted.input_tokens)
  })
})

describe('openai Responses client over the vscode-bridge provider', () => {
  const client = () => new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw', maxRetries: 0 })

  it('responses.create and responses.stream', async () => {
    const r = await client().responses.create({ model: 'vscode/gpt-4o', input: 'Echo me', store: false })
    expect(r.output_text).toBe('Echo me')
    const s = await client().responses.stream({ model: 'vscode/gpt-4o', input: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'Stream me' }] }).finalResponse()
    expect(s.output_text).toBe('Stream me')
    expect(s.usage!.input_tokens).toBeGreaterThan(0)
  })

  it('function call round trip with replayed items', async () => {
    const tools = [{ type: 'function' as const, name: 'get_weather', parameters: weather.input_schema, strict: false }]
    const first = await client().responses.create({ model: 'vscode/claude-sonnet-4.5', input: 'Weather in Paris?', tools })
    expect(first.output.map((o) => o.type)).toEqual(['message', 'function_call'])
    const second = await client().responses.create({
      model: 'vscode/claude-sonnet-4.5',
      tools,
      input: [{ role: 'user', content: 'Weather in Paris?' }, ...(first.output as never[]), { type: 'function_call_output', call_id: 'call_w1', output: 'rainy' }],
    })
    expect(second.output_text).toBe('In Paris it is rainy.')
  })
})
