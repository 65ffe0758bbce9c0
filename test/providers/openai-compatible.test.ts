import { describe, expect, it } from 'vitest'
import { undiciClient } from '../../src/entry/undici-client.js'
import { openAICompatibleProvider } from '../../src/providers/openai-compatible/index.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import { aggregate } from '../../src/core/aggregate.js'
import * as fx from '../fixtures/openai/chat.js'
import { providerContract, type Scenario } from '../provider-contract.js'
import { startUpstream, writeSse, type FakeUpstream } from '../helpers/upstream.js'

function harness(client: 'undici' | 'fetch') {
  return async () => {
    const up: FakeUpstream = await startUpstream()
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    up.handle(async (req, res) => {
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
      const body = req.json()
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) =>
        void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value))
      switch (scenario) {
        case 'error_500':
          return json(500, fx.errors[500])
        case 'error_401':
          return json(401, fx.errors[401])
        case 'error_429':
          return json(429, fx.errors[429], { 'retry-after': '7' })
        case 'error_400':
          return json(400, fx.errors[400])
        case 'tool_call':
          return body.stream ? writeSse(res, fx.streamToolCall) : json(200, fx.completionToolCall)
        case 'slow':
          return writeSse(res, Array.from({ length: 200 }, (_, i) => ({ ...fx.streamText[1], choices: [{ index: 0, delta: { content: `w${i} ` }, finish_reason: null }] })), { delayMs: 20 })
        default:
          return body.stream ? writeSse(res, fx.streamText) : json(200, fx.completionText)
      }
    })
    return {
      provider: openAICompatibleProvider({ id: 'upstream', baseURL: `${up.url}/v1`, apiKey: 'sk-test' }, client === 'undici' ? undiciClient() : fetchClient()),
      model: 'gpt-4o-mini',
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const last = up.requests[up.requests.length - 1].json()
        const parts = last.messages[0].content
        return Array.isArray(parts) && parts.some((p: any) => p.type === 'image_url' && p.image_url.url.startsWith('data:image/png;base64,'))
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      teardown: () => up.close(),
    }
  }
}

providerContract('openai-compatible (undici)', harness('undici'))
providerContract('openai-compatible (fetch)', harness('fetch'))

describe('openai-compatible specifics', () => {
  it('sends the key, the model and stream_options upstream, and the tool call fields', async () => {
    const up = await startUpstream((req, res) => writeSse(res, fx.streamText))
    const p = openAICompatibleProvider({ id: 'u', baseURL: `${up.url}/v1/`, apiKey: 'sk-secret', headers: { 'x-extra': '1' } }, undiciClient())
    const result = await aggregate(
      p.chat(
        {
          model: 'gpt-4o-mini',
          stream: true,
          messages: [
            { role: 'system', content: [{ type: 'text', text: 'be brief' }] },
            { role: 'user', content: [{ type: 'text', text: 'hi' }] },
            { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'f', arguments: '{"a":1}' }] },
            { role: 'tool', content: [{ type: 'tool_result', callId: 'call_1', content: [{ type: 'text', text: '42' }] }] },
          ],
          maxTokens: 50,
          stop: ['END'],
          responseFormat: { type: 'json_object' },
        },
        { signal: new AbortController().signal, requestId: 'r', meta: {} },
      ),
    )
    expect(result.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    expect(result.usage).toMatchObject({ inputTokens: 10, outputTokens: 5 })
    const sent = up.requests[0]
    expect(sent.url).toBe('/v1/chat/completions')
    expect(sent.headers.authorization).toBe('Bearer sk-secret')
    expect(sent.headers['x-extra']).toBe('1')
    expect(sent.json()).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
      stop: ['END'],
      response_format: { type: 'json_object' },
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '42' },
      ],
    })
    await up.close()
  })

  it('reports a refused connection as 503 naming the provider', async () => {
    const up = await startUpstream()
    const url = up.url
    await up.close()
    const p = openAICompatibleProvider({ id: 'gone', baseURL: url }, undiciClient())
    await expect(aggregate(p.chat({ model: 'm', stream: false, messages: [] }, { signal: new AbortController().signal, requestId: 'r' }))).rejects.toMatchObject({
      kind: 'unavailable',
      status: 503,
      message: expect.stringContaining('"gone"'),
    })
  })

  it.each(['undici', 'fetch'] as const)('times out when the upstream sends no headers in time (%s), naming the provider and the deadline', async (client) => {
    const up = await startUpstream(() => new Promise(() => {}))
    const p = openAICompatibleProvider({ id: 'slow', baseURL: up.url, timeoutMs: 200 }, client === 'undici' ? undiciClient() : fetchClient())
    const started = Date.now()
    await expect(aggregate(p.chat({ model: 'm', stream: false, messages: [] }, { signal: new AbortController().signal, requestId: 'r' }))).rejects.toMatchObject({
      kind: 'timeout',
      status: 504,
      message: 'Provider "slow" did not answer within 200 ms.',
    })
    expect(Date.now() - started).toBeLessThan(2000)
    await up.close()
  })

  it('the header deadline never cuts a long body that began in time', async () => {
    const up = await startUpstream((_req, res) => writeSse(res, fx.streamText, { delayMs: 120 }))
    const p = openAICompatibleProvider({ id: 'up', baseURL: `${up.url}/v1`, timeoutMs: 200 }, undiciClient())
    const result = await aggregate(p.chat({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] }, { signal: new AbortController().signal, requestId: 'r' }))
    expect(result.finishReason).toBe('stop')
    await up.close()
  })

  it('sequential streams reuse keep-alive connections (read to the end of the body), not one connection per stream', async () => {
    const up = await startUpstream((_req, res) => writeSse(res, fx.streamText))
    const p = openAICompatibleProvider({ id: 'up', baseURL: `${up.url}/v1` }, undiciClient())
    for (let i = 0; i < 10; i++) {
      const result = await aggregate(p.chat({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] }, { signal: new AbortController().signal, requestId: 'r' }))
      expect(result.finishReason).toBe('stop')
    }
    // undici may open one spare connection next to the one in use.
    expect(up.connections).toBeLessThanOrEqual(2)
    await up.close()
  })

  it('a body held open after [DONE] still ends the stream, with every event delivered', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const e of fx.streamText) res.write(`data: ${JSON.stringify(e)}\n\n`)
      res.write('data: [DONE]\n\n')
      // …and never ends the response.
    })
    const p = openAICompatibleProvider({ id: 'up', baseURL: `${up.url}/v1` }, undiciClient())
    const started = Date.now()
    const result = await aggregate(p.chat({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] }, { signal: new AbortController().signal, requestId: 'r' }))
    expect(result.finishReason).toBe('stop')
    expect(result.content.length).toBeGreaterThan(0)
    expect(Date.now() - started).toBeLessThan(4000)
    await up.close()
  })
})
