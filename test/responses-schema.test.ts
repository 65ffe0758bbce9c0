import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { assertOpenAISchema } from './helpers/openai-spec.js'

const EVENT_SCHEMAS: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.completed': 'ResponseCompletedEvent',
}

/** The Responses API's objects and stream events, checked against OpenAI's own schemas. */
describe('Responses API against OpenAI’s schemas', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({})
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
  })
  afterAll(() => gw.close())

  it('a text answer and a function call are valid Response objects', async () => {
    const text = await client.responses.create({ model: 'mock-1', input: 'schema check' })
    assertOpenAISchema('Response', text)
    expect(text.output_text).toBe('schema check')
    const call = await client.responses.create({
      model: 'mock-1',
      input: 'Paris',
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }],
      tool_choice: 'required',
    })
    assertOpenAISchema('Response', call)
    expect(call.output.some((o) => o.type === 'function_call')).toBe(true)
  })

  it('every streamed event is a valid ResponseStreamEvent', async () => {
    const stream = await client.responses.create({ model: 'mock-1', input: 'one two three', stream: true })
    const types: string[] = []
    for await (const event of stream) {
      // ResponseStreamEvent is an anyOf whose errors are unreadable; validate against the member schema for the type.
      assertOpenAISchema(EVENT_SCHEMAS[event.type] ?? 'ResponseStreamEvent', event)
      types.push(event.type)
    }
    expect(types[0]).toBe('response.created')
    expect(types[types.length - 1]).toBe('response.completed')
  })
})
