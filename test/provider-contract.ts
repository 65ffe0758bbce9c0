import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../src/core/aggregate.js'
import type { ChatEvent, ChatRequest } from '../src/core/types.js'
import { GatewayError } from '../src/errors.js'
import type { CallContext, Provider } from '../src/providers/types.js'

/**
 * The provider conformance suite. Every provider runs it against a fake of
 * its service that speaks the real wire format. A harness arranges each
 * scenario in the fake (or, for the mock, returns directives to add to the
 * user message), and the suite asserts what the gateway sees.
 *
 * Scenarios and the answers the fake must give:
 *  - text:      "Hello, world!" (streamed in at least two pieces), usage 10 in / 5 out, finish stop
 *  - tool_call: one call of `get_weather` with arguments {"city":"Paris"}, finish tool_calls
 *  - image:     any text; the upstream request must carry the image (checked by `sawImage`)
 *  - error_500 / error_401 / error_429 (Retry-After: 7) / error_400: the service's own error body
 *  - slow:      text in many pieces, slowly, for the abort test
 */
export type Scenario = 'text' | 'tool_call' | 'image' | 'error_500' | 'error_401' | 'error_429' | 'error_400' | 'slow'

export interface ContractHarness {
  provider: Provider
  model: string
  supports: { tools: boolean; images: boolean; streaming: boolean }
  /** Usage numbers are the fake's own (10/5), not estimates. */
  exactUsage: boolean
  /** Arranges the next call; may return text to append to the user message. */
  arrange(s: Scenario): Promise<string | void> | string | void
  /** Whether the upstream saw the image of the last request in its own format. */
  sawImage?(): boolean
  /** Whether the upstream saw the client go away during the last request. */
  upstreamAborted?(): Promise<boolean> | boolean
  teardown?(): Promise<void>
}

const PNG_1PX = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

function ctx(signal = new AbortController().signal): CallContext {
  return { signal, requestId: 'req_contract', meta: {} }
}

function request(model: string, text: string, extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model, messages: [{ role: 'user', content: [{ type: 'text', text }] }], stream: true, ...extra }
}

async function collect(stream: ReadableStream<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = []
  const reader = stream.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return out
    out.push(value)
  }
}

async function failure(stream: ReadableStream<ChatEvent>): Promise<GatewayError> {
  try {
    await collect(stream)
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError)
    return err as GatewayError
  }
  throw new Error('expected the stream to fail')
}

export function providerContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`provider contract: ${name}`, () => {
    let h: ContractHarness
    beforeAll(async () => {
      h = await setup()
    })
    afterAll(async () => {
      await h?.teardown?.()
    })

    const say = async (s: Scenario, base = 'Say hello') => `${base}${(await h.arrange(s)) ?? ''}`

    it('lists models including the one under test', async () => {
      const models = await h.provider.models(AbortSignal.timeout(5000))
      expect(models.map((m) => m.id)).toContain(h.model)
    })

    it('streams text in pieces, then usage and finish', async () => {
      const events = await collect(h.provider.chat(request(h.model, await say('text')), ctx()))
      const texts = events.filter((e) => e.type === 'text')
      expect(texts.length).toBeGreaterThanOrEqual(2)
      expect(texts.map((e) => (e as { text: string }).text).join('')).toBe('Hello, world!')
      const finish = events.filter((e) => e.type === 'finish')
      expect(finish).toEqual([{ type: 'finish', reason: 'stop' }])
      expect(events[events.length - 1].type).toBe('finish')
      const usage = events.findLast((e) => e.type === 'usage') as { usage: { inputTokens: number; outputTokens: number } } | undefined
      expect(usage).toBeDefined()
      if (h.exactUsage) expect(usage!.usage).toMatchObject({ inputTokens: 10, outputTokens: 5 })
      else expect(usage!.usage.outputTokens).toBeGreaterThan(0)
    })

    it('answers the same text without streaming (aggregate)', async () => {
      const result = await aggregate(h.provider.chat(request(h.model, await say('text'), { stream: false }), ctx()))
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
      expect(result.finishReason).toBe('stop')
    })

    it('returns tool calls with complete JSON arguments', async (t) => {
      if (!h.supports.tools) return t.skip()
      const tools = [{ name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }]
      const result = await aggregate(h.provider.chat(request(h.model, await say('tool_call', 'Weather in Paris? Use get_weather'), { tools }), ctx()))
      const calls = result.content.filter((p) => p.type === 'tool_call')
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatchObject({ type: 'tool_call', name: 'get_weather' })
      expect(JSON.parse((calls[0] as { arguments: string }).arguments)).toEqual({ city: 'Paris' })
      expect((calls[0] as { id: string }).id).toBeTruthy()
      expect(result.finishReason).toBe('tool_calls')
    })

    it('sends images in the service format', async (t) => {
      if (!h.supports.images) return t.skip()
      const extra = (await h.arrange('image')) ?? ''
      const req: ChatRequest = {
        model: h.model,
        stream: true,
        messages: [{ role: 'user', content: [{ type: 'text', text: `What is this?${extra}` }, { type: 'image', mimeType: 'image/png', data: PNG_1PX }] }],
      }
      const result = await aggregate(h.provider.chat(req, ctx()))
      expect(result.content.length).toBeGreaterThan(0)
      if (h.sawImage) expect(h.sawImage()).toBe(true)
    })

    it('maps a server error to a retryable upstream error', async () => {
      const err = await failure(h.provider.chat(request(h.model, await say('error_500')), ctx()))
      expect(err.retryable).toBe(true)
      expect(err.status).toBeGreaterThanOrEqual(500)
    })

    it('maps an auth failure to a non-retryable error that blames the provider, not the client', async () => {
      const err = await failure(h.provider.chat(request(h.model, await say('error_401')), ctx()))
      expect(err.retryable).toBe(false)
      expect(['auth', 'permission']).toContain(err.kind)
      expect(err.status).toBe(502)
      expect(err.message).toContain(h.provider.id)
    })

    it('maps throttling to rate_limit with Retry-After', async () => {
      const err = await failure(h.provider.chat(request(h.model, await say('error_429')), ctx()))
      expect(err.kind).toBe('rate_limit')
      expect(err.retryable).toBe(true)
      expect(err.retryAfter).toBe(7)
    })

    it('maps a bad request to a non-retryable 400', async () => {
      const err = await failure(h.provider.chat(request(h.model, await say('error_400')), ctx()))
      expect(err.kind).toBe('invalid_request')
      expect(err.status).toBe(400)
      expect(err.retryable).toBe(false)
    })

    it('stops the upstream call when the consumer cancels mid-stream', async () => {
      const ac = new AbortController()
      const reader = h.provider.chat(request(h.model, await say('slow')), ctx(ac.signal)).getReader()
      let texts = 0
      while (texts < 2) {
        const { done, value } = await reader.read()
        if (done) throw new Error('stream ended before cancel')
        if (value.type === 'text') texts++
      }
      await reader.cancel('client went away')
      ac.abort()
      if (h.upstreamAborted) await expect.poll(() => h.upstreamAborted!(), { timeout: 5000 }).toBe(true)
    })
  })
}
