import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'

interface Case {
  name: string
  body: unknown
  headers?: Record<string, string>
  status: number
  /** Anthropic: error.type; OpenAI: error.type */
  type: string
  message: RegExp
  param?: string
}

const user = (content: unknown) => ({ model: 'mock-1', max_tokens: 10, messages: [{ role: 'user', content }] })
const toolHistory = (id: string, resultId: string) => ({
  model: 'mock-1',
  max_tokens: 10,
  messages: [
    { role: 'user', content: 'q' },
    { role: 'assistant', content: [{ type: 'tool_use', id, name: 'f', input: {} }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: resultId, content: 'r' }] },
  ],
})

const messages: Case[] = [
  { name: 'invalid JSON', body: '{"model":', status: 400, type: 'invalid_request_error', message: /not valid JSON/ },
  { name: 'missing max_tokens', body: { model: 'mock-1', messages: [{ role: 'user', content: 'x' }] }, status: 400, type: 'invalid_request_error', message: /max_tokens/ },
  { name: 'missing messages', body: { model: 'mock-1', max_tokens: 5 }, status: 400, type: 'invalid_request_error', message: /messages/ },
  { name: 'empty messages', body: { model: 'mock-1', max_tokens: 5, messages: [] }, status: 400, type: 'invalid_request_error', message: /messages/ },
  { name: 'unknown role', body: { model: 'mock-1', max_tokens: 5, messages: [{ role: 'robot', content: 'x' }] }, status: 400, type: 'invalid_request_error', message: /messages\[0\]\.role/ },
  { name: 'unknown content block type', body: user([{ type: 'hologram', data: 'x' }]), status: 400, type: 'invalid_request_error', message: /messages\[0\]\.content\[0\]\.type.*hologram/ },
  { name: 'image with an unknown source type', body: user([{ type: 'image', source: { type: 'ftp', url: 'x' } }]), status: 400, type: 'invalid_request_error', message: /source\.type/ },
  { name: 'image URL while remote media is off', body: user([{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }]), status: 400, type: 'invalid_request_error', message: /URL sources are disabled/ },
  { name: 'tool_use in a user message', body: user([{ type: 'tool_use', id: 't', name: 'f', input: {} }]), status: 400, type: 'invalid_request_error', message: /only appear in assistant messages/ },
  { name: 'tool_result in an assistant message', body: { model: 'mock-1', max_tokens: 5, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 't', content: 'r' }] }] }, status: 400, type: 'invalid_request_error', message: /only appear in user messages/ },
  { name: 'tool_use input not an object', body: { model: 'mock-1', max_tokens: 5, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: 'x' }] }] }, status: 400, type: 'invalid_request_error', message: /input/ },
  { name: 'orphaned tool_use (no tool_result after it)', body: { model: 'mock-1', max_tokens: 5, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_lost', name: 'f', input: {} }] }, { role: 'user', content: 'next' }] }, status: 400, type: 'invalid_request_error', message: /messages\[1\].*toolu_lost/ },
  { name: 'orphaned tool_result (id of no tool_use)', body: toolHistory('toolu_a', 'toolu_b'), status: 400, type: 'invalid_request_error', message: /toolu_a|toolu_b/ },
  { name: 'temperature above 1', body: { ...user('x'), temperature: 1.5 }, status: 400, type: 'invalid_request_error', message: /temperature/ },
  { name: 'tool_choice names an absent tool', body: { ...user('x'), tools: [{ name: 'f', input_schema: { type: 'object' } }], tool_choice: { type: 'tool', name: 'g' } }, status: 400, type: 'invalid_request_error', message: /"g"/ },
  { name: 'tool_choice any without tools', body: { ...user('x'), tool_choice: { type: 'any' } }, status: 400, type: 'invalid_request_error', message: /at least one tool/ },
  { name: 'system as a number', body: { ...user('x'), system: 5 }, status: 400, type: 'invalid_request_error', message: /system/ },
  { name: 'unknown model', body: { ...user('x'), model: 'nope' }, status: 404, type: 'not_found_error', message: /nope/ },
  { name: 'wrong key', body: user('x'), headers: { 'x-api-key': 'wrong' }, status: 401, type: 'authentication_error', message: /Incorrect API key/ },
]

const responses: Case[] = [
  { name: 'missing input', body: { model: 'mock-1' }, status: 400, type: 'invalid_request_error', message: /input/, param: 'input' },
  { name: 'unknown item type', body: { model: 'mock-1', input: [{ type: 'teleport' }] }, status: 400, type: 'invalid_request_error', message: /input\[0\]\.type/ },
  { name: 'unknown content part type', body: { model: 'mock-1', input: [{ role: 'user', content: [{ type: 'input_smell', text: 'x' }] }] }, status: 400, type: 'invalid_request_error', message: /content\[0\]\.type/ },
  { name: 'function_call without call_id', body: { model: 'mock-1', input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, status: 400, type: 'invalid_request_error', message: /call_id/ },
  { name: 'previous_response_id', body: { model: 'mock-1', input: 'x', previous_response_id: 'resp_1' }, status: 400, type: 'invalid_request_error', message: /no conversation state/, param: 'previous_response_id' },
  { name: 'item_reference', body: { model: 'mock-1', input: [{ type: 'item_reference', id: 'msg_1' }] }, status: 400, type: 'invalid_request_error', message: /item_reference/ },
  { name: 'background', body: { model: 'mock-1', input: 'x', background: true }, status: 400, type: 'invalid_request_error', message: /background/ },
  { name: 'orphaned function_call_output', body: { model: 'mock-1', input: [{ role: 'user', content: 'q' }, { type: 'function_call_output', call_id: 'call_x', output: 'r' }] }, status: 400, type: 'invalid_request_error', message: /input\[1\].*call_x/ },
  { name: 'orphaned function_call', body: { model: 'mock-1', input: [{ role: 'user', content: 'q' }, { type: 'function_call', call_id: 'call_y', name: 'f', arguments: '{}' }, { role: 'user', content: 'next' }] }, status: 400, type: 'invalid_request_error', message: /call_y/ },
  { name: 'text.format json_schema without schema', body: { model: 'mock-1', input: 'x', text: { format: { type: 'json_schema', name: 'a' } } }, status: 400, type: 'invalid_request_error', message: /schema/ },
  { name: 'tool_choice names an absent function', body: { model: 'mock-1', input: 'x', tools: [{ type: 'function', name: 'f', parameters: {} }], tool_choice: { type: 'function', name: 'g' } }, status: 400, type: 'invalid_request_error', message: /"g"/ },
  { name: 'image file_id', body: { model: 'mock-1', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }] }, status: 400, type: 'invalid_request_error', message: /file_id/ },
  { name: 'unknown model', body: { model: 'nope', input: 'x' }, status: 404, type: 'invalid_request_error', message: /nope/ },
]

let gw: RunningGateway
beforeAll(async () => {
  gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock' }] })
})
afterAll(() => gw?.close())

async function send(path: string, c: Case) {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'k', ...c.headers },
    body: typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
  })
  return { status: res.status, body: await res.json() }
}

describe('POST /v1/messages bad input: Anthropic error shape', () => {
  it.each(messages)('$name → $status', async (c) => {
    const { status, body } = await send('/v1/messages', c)
    expect(status).toBe(c.status)
    expect(body).toEqual({ type: 'error', error: { type: c.type, message: expect.stringMatching(c.message) }, request_id: expect.stringMatching(/^req_/) })
  })

  it('repairs orphaned tool pairs when compat.repairToolPairs is set', async () => {
    const repairing = await startGateway({ providers: [{ id: 'mock', type: 'mock' }], compat: { repairToolPairs: true } })
    for (const c of messages.filter((m) => m.name.startsWith('orphaned'))) {
      const res = await fetch(`${repairing.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.body) })
      expect(res.status, c.name).toBe(200)
    }
    await repairing.close()
  })
})

describe('POST /v1/messages/count_tokens bad input', () => {
  it.each(messages.filter((m) => !/max_tokens|temperature/.test(m.name)))('$name → $status', async (c) => {
    const { status, body } = await send('/v1/messages/count_tokens', c)
    expect(status).toBe(c.status)
    expect(body.type).toBe('error')
    expect(body.error.type).toBe(c.type)
  })
})

describe('POST /v1/responses bad input: OpenAI error shape', () => {
  it.each(responses)('$name → $status', async (c) => {
    const { status, body } = await send('/v1/responses', c)
    expect(status).toBe(c.status)
    expect(body).toEqual({ error: { type: c.type, message: expect.stringMatching(c.message), param: c.param ?? expect.toSatisfy((p: unknown) => p === null || typeof p === 'string'), code: expect.toSatisfy((p: unknown) => p === null || typeof p === 'string') } })
  })
})
