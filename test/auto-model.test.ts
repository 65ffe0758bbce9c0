import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'

/** `model: "auto"`: the answer names the model the router chose (its `model` and `x-gateway-model`). */
describe('auto model selection in the answer', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ providers: [{ id: 'mock', type: 'mock', models: ['mock-1'] }] })
  })
  afterAll(() => gw.close())

  it('chat completions, JSON and streamed', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const { data, response } = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
    expect(data.model).toBe('mock/mock-1')
    expect(response.headers.get('x-gateway-model')).toBe('mock/mock-1')
    const stream = await client.chat.completions.create({ model: 'auto', stream: true, messages: [{ role: 'user', content: 'hi there' }] })
    const models = new Set<string>()
    for await (const chunk of stream) models.add(chunk.model)
    expect([...models]).toEqual(['mock/mock-1'])
  })

  it('Anthropic messages', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'x', maxRetries: 0 })
    const msg = await anthropic.messages.create({ model: 'auto', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
    expect(msg.model).toBe('mock/mock-1')
    const final = await anthropic.messages.stream({ model: 'auto', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage()
    expect(final.model).toBe('mock/mock-1')
  })

  it('other names are echoed as the client sent them', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    expect((await client.chat.completions.create({ model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] })).model).toBe('mock-1')
  })
})
