import type { ServerResponse } from 'node:http'
import * as fx from '../fixtures/anthropic/messages.js'
import { sleep, startUpstream, type FakeUpstream, type RecordedRequest } from './upstream.js'

export type AnthropicScenario = 'text' | 'tool_call' | 'thinking' | 'overloaded_mid_stream' | 'error_500' | 'error_401' | 'error_429' | 'error_400' | 'error_529' | 'slow'

/** Writes SSE as Anthropic does: `event: <type>` then `data: <json>` for every event; no [DONE]. */
export async function writeAnthropicSse(res: ServerResponse, events: Array<[string, unknown]>, delayMs = 0): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_fake' })
  for (const [event, data] of events) {
    if (res.destroyed) return
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    if (delayMs) await sleep(delayMs)
  }
  res.end()
}

/** Turns a recorded stream into the message a non-streaming call returns. */
function asMessage(events: Array<[string, any]>): unknown {
  const start = events[0][1].message
  const content: any[] = []
  let delta: any = {}
  for (const [type, d] of events) {
    if (type === 'content_block_start') content[d.index] = structuredClone(d.content_block)
    if (type === 'content_block_delta') {
      const b = content[d.index]
      if (d.delta.type === 'text_delta') b.text += d.delta.text
      if (d.delta.type === 'thinking_delta') b.thinking += d.delta.thinking
      if (d.delta.type === 'signature_delta') b.signature = d.delta.signature
      if (d.delta.type === 'input_json_delta') b._json = (b._json ?? '') + d.delta.partial_json
    }
    if (type === 'message_delta') delta = d
  }
  for (const b of content) if (b.type === 'tool_use') (b.input = JSON.parse(b._json || '{}'), delete b._json)
  return { ...start, content, stop_reason: delta.delta.stop_reason, stop_sequence: delta.delta.stop_sequence, usage: { ...start.usage, ...delta.usage } }
}

/**
 * A fake api.anthropic.com: models, messages (stream or not) and
 * count_tokens, answering per the arranged scenario with the fixtures'
 * exact bytes. It checks the headers the real API requires.
 */
export async function startFakeAnthropic(): Promise<FakeUpstream & { arrange(s: AnthropicScenario): void; last(): RecordedRequest }> {
  const state = { scenario: 'text' as AnthropicScenario }
  const up = await startUpstream()
  const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) =>
    void res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_fake', ...headers }).end(JSON.stringify(value))
  up.handle(async (req, res) => {
    if (!req.headers['x-api-key']) return json(res, 401, fx.errors[401])
    if (!req.headers['anthropic-version']) return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } })
    if (req.method === 'GET' && req.url?.startsWith('/v1/models')) return json(res, 200, fx.models)
    if (req.url === '/v1/messages/count_tokens') return json(res, 200, fx.countTokens)
    if (req.url !== '/v1/messages') return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'Not found' } })
    const body = req.json()
    const stream = body.stream === true
    switch (state.scenario) {
      case 'error_500':
        return json(res, 500, fx.errors[500])
      case 'error_401':
        return json(res, 401, fx.errors[401])
      case 'error_429':
        return json(res, 429, fx.errors[429], { 'retry-after': '7' })
      case 'error_400':
        return json(res, 400, fx.errors[400])
      case 'error_529':
        return json(res, 529, fx.errors[529])
      case 'overloaded_mid_stream':
        return writeAnthropicSse(res, fx.streamOverloaded)
      case 'slow': {
        const words: Array<[string, unknown]> = Array.from({ length: 200 }, (_, i) => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `w${i} ` } }])
        return writeAnthropicSse(res, [fx.streamText[0], fx.streamText[1], ...words, ...fx.streamText.slice(5)], 20)
      }
      default: {
        const events = state.scenario === 'tool_call' ? fx.streamToolUse : state.scenario === 'thinking' ? fx.streamThinking : fx.streamText
        return stream ? writeAnthropicSse(res, events) : json(res, 200, asMessage(events as Array<[string, any]>))
      }
    }
  })
  return Object.assign(up, {
    arrange(s: AnthropicScenario) {
      state.scenario = s
    },
    last: () => up.requests[up.requests.length - 1],
  })
}
