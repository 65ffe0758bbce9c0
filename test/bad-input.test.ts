import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { assertOpenAISchema } from './helpers/openai-spec.js'

interface Case {
  name: string
  path?: string
  method?: string
  body?: string
  headers?: Record<string, string>
  status: number
  error: { type?: string; param?: string | null; code?: string | null; message?: RegExp }
}

const msg = (content: unknown) => JSON.stringify({ model: 'mock-1', messages: [{ role: 'user', content }] })

/** Each malformed request, its status, and the error body a client gets. */
const cases: Case[] = [
  { name: 'malformed JSON', body: '{"model": "mock-1", "messages": [', status: 400, error: { type: 'invalid_request_error', code: 'invalid_json', message: /could not parse the JSON body/ } },
  { name: 'empty body', body: '', status: 400, error: { code: 'empty_body' } },
  { name: 'JSON array instead of object', body: '[1,2]', status: 400, error: { code: 'invalid_json', message: /must be a JSON object/ } },
  { name: 'JSON string instead of object', body: '"hello"', status: 400, error: { code: 'invalid_json' } },
  { name: 'missing model', body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'model', code: 'missing_required_parameter', message: /Missing required parameter: 'model'/ } },
  { name: 'missing messages', body: JSON.stringify({ model: 'mock-1' }), status: 400, error: { param: 'messages', code: 'missing_required_parameter' } },
  { name: 'empty messages', body: JSON.stringify({ model: 'mock-1', messages: [] }), status: 400, error: { param: 'messages', code: 'invalid_value' } },
  { name: 'model is a number', body: JSON.stringify({ model: 42, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'model', message: /expected string/ } },
  { name: 'messages is a string', body: JSON.stringify({ model: 'mock-1', messages: 'hi' }), status: 400, error: { param: 'messages', message: /expected array/ } },
  { name: 'unknown role', body: JSON.stringify({ model: 'mock-1', messages: [{ role: 'wizard', content: 'x' }] }), status: 400, error: { param: 'messages[0].role' } },
  { name: 'content is a number', body: msg(1), status: 400, error: { param: 'messages[0].content', message: /expected string or array, got number/ } },
  { name: 'unknown content part type', body: msg([{ type: 'hologram', data: 'x' }]), status: 400, error: { param: 'messages[0].content[0].type' } },
  { name: 'text part without text', body: msg([{ type: 'text' }]), status: 400, error: { param: 'messages[0].content[0].text' } },
  { name: 'image_url that is not a URL', body: msg([{ type: 'image_url', image_url: { url: 'not a url' } }]), status: 400, error: { param: 'messages[0].content[0].image_url.url', code: 'invalid_image_url' } },
  { name: 'tool message without tool_call_id', body: JSON.stringify({ model: 'mock-1', messages: [{ role: 'tool', content: 'x' }] }), status: 400, error: { param: 'messages[0].tool_call_id' } },
  { name: 'temperature out of range', body: JSON.stringify({ model: 'mock-1', temperature: 3, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'temperature', message: /<=2|2/ } },
  { name: 'top_p as a string', body: JSON.stringify({ model: 'mock-1', top_p: 'high', messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'top_p' } },
  { name: 'max_tokens negative', body: JSON.stringify({ model: 'mock-1', max_tokens: -5, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'max_tokens' } },
  { name: 'stream not a boolean', body: JSON.stringify({ model: 'mock-1', stream: 'yes', messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'stream' } },
  { name: 'too many stop sequences', body: JSON.stringify({ model: 'mock-1', stop: ['a', 'b', 'c', 'd', 'e'], messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'stop' } },
  { name: 'tools not an array', body: JSON.stringify({ model: 'mock-1', tools: { name: 'f' }, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'tools' } },
  { name: 'tool without function name', body: JSON.stringify({ model: 'mock-1', tools: [{ type: 'function', function: {} }], messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'tools[0].function.name' } },
  { name: 'tool_choice names an absent tool', body: JSON.stringify({ model: 'mock-1', tool_choice: { type: 'function', function: { name: 'nope' } }, tools: [{ type: 'function', function: { name: 'f' } }], messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'tool_choice', message: /"nope"/ } },
  { name: 'tool_choice required without tools', body: JSON.stringify({ model: 'mock-1', tool_choice: 'required', messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'tool_choice' } },
  { name: 'response_format of unknown type', body: JSON.stringify({ model: 'mock-1', response_format: { type: 'yaml' }, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'response_format.type' } },
  { name: 'n = 3', body: JSON.stringify({ model: 'mock-1', n: 3, messages: [{ role: 'user', content: 'x' }] }), status: 400, error: { param: 'n', code: 'unsupported_value' } },
  { name: 'unknown model', body: JSON.stringify({ model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] }), status: 404, error: { param: 'model', code: 'model_not_found', message: /gpt-nonexistent/ } },
  { name: 'unknown provider prefix', body: JSON.stringify({ model: 'nowhere/m', messages: [{ role: 'user', content: 'x' }] }), status: 404, error: { code: 'model_not_found' } },
  { name: 'known provider, unknown model', body: JSON.stringify({ model: 'mock/nope', messages: [{ role: 'user', content: 'x' }] }), status: 404, error: { code: 'model_not_found' } },
  { name: 'oversize body (content-length)', body: JSON.stringify({ model: 'mock-1', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }), status: 413, error: { code: 'request_too_large', message: /65536 bytes/ } },
  { name: 'completions: prompt missing', path: '/v1/completions', body: JSON.stringify({ model: 'mock-1' }), status: 400, error: { param: 'prompt' } },
  { name: 'completions: prompt a number', path: '/v1/completions', body: JSON.stringify({ model: 'mock-1', prompt: 5 }), status: 400, error: { param: 'prompt' } },
  { name: 'unknown route', path: '/v1/nope', body: '{}', status: 404, error: { code: 'unknown_route' } },
  { name: 'wrong API key', headers: { authorization: 'Bearer wrong' }, body: msg('x'), status: 401, error: { type: 'authentication_error', code: 'invalid_api_key', message: /Incorrect API key/ } },
  { name: 'no API key', headers: { authorization: '' }, body: msg('x'), status: 401, error: { type: 'authentication_error', message: /Missing API key/ } },
]

describe('bad input: precise errors in OpenAI’s shape, never a crash', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k1'], bodyLimit: 65536 }, providers: [{ id: 'mock', type: 'mock' }] })
  })
  afterAll(() => gw.close())

  it.each(cases)('$name → $status', async (c) => {
    const res = await fetch(gw.url + (c.path ?? '/v1/chat/completions'), {
      method: c.method ?? 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k1', ...c.headers },
      body: c.body,
    })
    expect(res.status).toBe(c.status)
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(res.headers.get('x-request-id')).toBeTruthy()
    const body = await res.json()
    assertOpenAISchema('ErrorResponse', body)
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
    const { message, ...rest } = c.error
    expect(body.error).toMatchObject(rest)
    if (message) expect(body.error.message).toMatch(message)
  })

  it('cuts a chunked upload at the limit with 413', async () => {
    const big = new TextEncoder().encode(JSON.stringify({ model: 'mock-1', messages: [{ role: 'user', content: 'y'.repeat(100_000) }] }))
    const body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < big.length; i += 8192) controller.enqueue(big.slice(i, i + 8192))
        controller.close()
      },
    })
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k1' }, body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(413)
    expect((await res.json()).error.code).toBe('request_too_large')
  })

  it('ignores unknown top-level fields, so newer clients keep working', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k1' },
      body: JSON.stringify({ model: 'mock-1', messages: [{ role: 'user', content: 'still fine' }], some_future_flag: { a: 1 }, store: true, modalities: ['text'] }),
    })
    expect(res.status).toBe(200)
    expect((await res.json()).choices[0].message.content).toBe('still fine')
  })

  it('accepts a JSON body sent without a content-type (curl -d)', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer k1', 'content-type': 'application/x-www-form-urlencoded' }, body: msg('curl style') })
    expect(res.status).toBe(200)
  })

  it('stays up after all of the above', async () => {
    expect((await fetch(`${gw.url}/health`)).status).toBe(200)
  })
})
