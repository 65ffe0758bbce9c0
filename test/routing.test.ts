import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { providerFor, startOpenAITarget, type OpenAITarget } from './helpers/openai-target.js'
import { freePort } from './helpers/redis.js'

const PNG_1PX = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

let open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.map((o) => o.close()))
  open = []
})

async function targets(...names: string[]): Promise<OpenAITarget[]> {
  const out = await Promise.all(names.map((n) => startOpenAITarget(n)))
  open.push(...out)
  return out
}

async function gateway(config: Record<string, unknown>, deps = {}): Promise<{ gw: RunningGateway; client: OpenAI }> {
  const gw = await startGateway(config, deps)
  open.unshift(gw)
  return { gw, client: new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 }) }
}

const ask = (client: OpenAI, model: string, content = 'hi') => client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse()

describe('fallback', () => {
  it.each([
    ['500', { status: 500 as const }],
    ['429 (with a short Retry-After)', { status: 429 as const, retryAfter: '0' }],
  ])('falls back to the next target on %s', async (_, behaviour) => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => behaviour
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], models: { fast: { strategy: 'fallback', targets: ['a/m', 'b/m'] } } })
    const { data, response } = await ask(client, 'fast')
    expect(data.choices[0].message.content).toBe('b:m: hi')
    expect(response.headers.get('x-gateway-model')).toBe('b/m')
    expect(data.model).toBe('fast')
    expect(a.calls).toHaveLength(1)
  })

  it('falls back when the first target times out before its first event', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ hang: true })
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], models: { fast: { targets: [{ model: 'a/m', timeoutMs: 200 }, 'b/m'] } } })
    const t0 = Date.now()
    const { data } = await ask(client, 'fast')
    expect(data.choices[0].message.content).toBe('b:m: hi')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
    // The abandoned upstream call is cancelled, not left running.
    await expect.poll(() => a.aborted).toBe(1)
  })

  it('falls back when the first target refuses connections', async () => {
    const [b] = await targets('b')
    const port = await freePort()
    const { client } = await gateway({
      providers: [{ id: 'down', type: 'openai-compatible', baseURL: `http://127.0.0.1:${port}/v1`, models: ['m'] }, providerFor(b)],
      models: { fast: { targets: ['down/m', 'b/m'] } },
    })
    const { data, response } = await ask(client, 'fast')
    expect(data.choices[0].message.content).toBe('b:m: hi')
    expect(response.headers.get('x-gateway-model')).toBe('b/m')
  })

  it('does not fall back on a 400: the request itself is wrong', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ status: 400 })
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], models: { fast: { targets: ['a/m', 'b/m'] } } })
    const err = await ask(client, 'fast').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.message).toContain("Invalid value: 'foo'")
    expect(b.calls).toHaveLength(0)
  })

  it('when every target fails, answers the last error', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ status: 500 })
    b.behave = () => ({ status: 429, retryAfter: '30' })
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], models: { fast: { targets: ['a/m', 'b/m'] } } })
    const err = await ask(client, 'fast').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.headers.get('retry-after')).toBe('30')
  })

  it('never falls back once the first streamed event went out', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ cutAfterFirstChunk: true })
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], models: { fast: { targets: ['a/m', 'b/m'] } } })
    const stream = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }], stream: true })
    let text = ''
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    })().catch((e) => e)
    expect(text).toBe('a:m: hi')
    expect(err).toBeInstanceOf(Error)
    expect(b.calls).toHaveLength(0)
  })

  it('retries the same target with backoff, waiting out its Retry-After', async () => {
    const [a, b] = await targets('a', 'b')
    const times: number[] = []
    a.behave = ({ n }) => {
      times.push(Date.now())
      return n === 1 ? { status: 429, retryAfter: '0.3' } : {}
    }
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], routing: { retries: 1, backoff: { baseMs: 10 } }, models: { fast: { targets: ['a/m', 'b/m'] } } })
    const { data } = await ask(client, 'fast')
    expect(data.choices[0].message.content).toBe('a:m: hi')
    expect(times).toHaveLength(2)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(290)
    expect(b.calls).toHaveLength(0)
  })

  it('moves on instead of waiting out a Retry-After longer than routing.maxRetryAfterMs', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ status: 429, retryAfter: '20' })
    const { client } = await gateway({ providers: [providerFor(a), providerFor(b)], routing: { retries: 3, maxRetryAfterMs: 1000 }, models: { fast: { targets: ['a/m', 'b/m'] } } })
    const { data } = await ask(client, 'fast')
    expect(data.choices[0].message.content).toBe('b:m: hi')
    expect(a.calls).toHaveLength(1)
  })
})

describe('circuit breaker', () => {
  it('opens after N consecutive failures, skips the target, probes after the cool-down and closes again', async () => {
    const [a, b] = await targets('a', 'b')
    let aFails = true
    a.behave = () => (aFails ? { status: 500 } : {})
    let clock = 1_000_000
    const { gw, client } = await gateway(
      { providers: [providerFor(a), providerFor(b)], routing: { breaker: { failureThreshold: 2, cooldownMs: 10_000 } }, models: { fast: { targets: ['a/m', 'b/m'] } } },
      { now: () => clock },
    )
    const health = async () => (await fetch(`${gw.url}/health`)).json()

    for (let i = 0; i < 2; i++) expect((await ask(client, 'fast')).data.choices[0].message.content).toBe('b:m: hi')
    expect(a.calls).toHaveLength(2)
    let h = await health()
    expect(h.status).toBe('degraded')
    expect(h.breakers).toContainEqual({ target: 'a/m', state: 'open', consecutive_failures: 2, retry_in_ms: 10_000 })

    // Open: a is not even tried.
    await ask(client, 'fast')
    expect(a.calls).toHaveLength(2)

    clock += 9_999
    await ask(client, 'fast')
    expect(a.calls).toHaveLength(2)

    clock += 1
    aFails = false
    expect((await health()).breakers).toContainEqual({ target: 'a/m', state: 'half_open', consecutive_failures: 2 })
    expect((await ask(client, 'fast')).data.choices[0].message.content).toBe('a:m: hi')
    h = await health()
    expect(h.breakers).toContainEqual({ target: 'a/m', state: 'closed', consecutive_failures: 0 })
    expect(h.status).toBe('ok')
  })

  it('a failed probe re-opens the circuit for another cool-down', async () => {
    const [a, b] = await targets('a', 'b')
    a.behave = () => ({ status: 500 })
    let clock = 0
    const { gw, client } = await gateway(
      { providers: [providerFor(a), providerFor(b)], routing: { breaker: { failureThreshold: 1, cooldownMs: 5_000 } }, models: { fast: { targets: ['a/m', 'b/m'] } } },
      { now: () => clock },
    )
    await ask(client, 'fast')
    clock += 5_000
    await ask(client, 'fast')
    expect(a.calls).toHaveLength(2)
    const h = await (await fetch(`${gw.url}/health`)).json()
    expect(h.breakers).toContainEqual({ target: 'a/m', state: 'open', consecutive_failures: 2, retry_in_ms: 5_000 })
  })

  it('answers 503 with Retry-After when every target of an alias is open', async () => {
    const [a] = await targets('a')
    a.behave = () => ({ status: 500 })
    let clock = 0
    const { client } = await gateway({ providers: [providerFor(a)], routing: { breaker: { failureThreshold: 1, cooldownMs: 7_000 } }, models: { solo: { targets: ['a/m'] } } }, { now: () => clock })
    await ask(client, 'solo').catch(() => {})
    clock += 1_000
    const err = await ask(client, 'solo').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.InternalServerError)
    expect(err.status).toBe(503)
    expect(err.code).toBe('circuit_open')
    expect(err.headers.get('retry-after')).toBe('6')
    expect(a.calls).toHaveLength(1)
  })
})

describe('capabilities', () => {
  const image = [{ type: 'text' as const, text: 'what is this?' }, { type: 'image_url' as const, image_url: { url: PNG_1PX } }]

  it('skips targets that lack a capability the request needs (from config, provider metadata, or the known-models table)', async () => {
    const [a, b] = await targets('a', 'b')
    const { client } = await gateway({
      providers: [providerFor(a, 'a', ['gpt-3.5-turbo', 'text-only']), providerFor(b, 'b', ['gpt-4o'])],
      routing: { models: { 'a/text-only': { vision: false, tools: false } } },
      models: { pick: { targets: ['a/text-only', 'a/gpt-3.5-turbo', 'b/gpt-4o'] } },
    })
    // Plain text: the first target serves it.
    expect((await ask(client, 'pick')).response.headers.get('x-gateway-model')).toBe('a/text-only')
    // Tools: text-only is configured without tools; gpt-3.5-turbo has them (known-models table).
    const tools = await client.chat.completions
      .create({ model: 'pick', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }] })
      .withResponse()
    expect(tools.response.headers.get('x-gateway-model')).toBe('a/gpt-3.5-turbo')
    // An image: only gpt-4o takes images.
    const vision = await client.chat.completions.create({ model: 'pick', messages: [{ role: 'user', content: image }] }).withResponse()
    expect(vision.response.headers.get('x-gateway-model')).toBe('b/gpt-4o')
    expect(a.calls.map((c) => c.model)).toEqual(['text-only', 'gpt-3.5-turbo'])
  })

  it('answers a clear 400 naming the missing capability when no target has it', async () => {
    const [a] = await targets('a')
    const { client } = await gateway({ providers: [providerFor(a, 'a', ['gpt-3.5-turbo', 'llama3'])], models: { text: { targets: ['a/gpt-3.5-turbo', 'a/llama3'] } } })
    const err = await client.chat.completions.create({ model: 'text', messages: [{ role: 'user', content: image }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.code).toBe('unsupported_capability')
    expect(err.param).toBe('messages')
    expect(err.message).toContain('image input (vision)')
    expect(err.message).toContain('a/gpt-3.5-turbo')
    // A directly named model without the capability gets the same clear answer, before any upstream call.
    const direct = await client.chat.completions.create({ model: 'a/llama3', messages: [{ role: 'user', content: image }] }).catch((e) => e)
    expect(direct.status).toBe(400)
    expect(direct.message).toContain('The model "a/llama3" cannot serve this request: it lacks image input (vision)')
    expect(a.calls).toHaveLength(0)
  })

  it('skips models whose context window is too small for the prompt', async () => {
    const [a] = await targets('a')
    const { client } = await gateway({
      providers: [providerFor(a, 'a', ['small', 'large'])],
      routing: { models: { 'a/small': { contextWindow: 1000 }, 'a/large': { contextWindow: 100_000 } } },
      models: { ctx: { targets: ['a/small', 'a/large'] } },
    })
    expect((await ask(client, 'ctx', 'short')).response.headers.get('x-gateway-model')).toBe('a/small')
    expect((await ask(client, 'ctx', 'x'.repeat(8000))).response.headers.get('x-gateway-model')).toBe('a/large')
    const err = await ask(client, 'ctx', 'x'.repeat(800_000)).catch((e) => e)
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/context window of at least \d+ tokens/)
  })
})

describe('auto selection', () => {
  it.each([
    ['plain text', 'a/cheap', {}],
    ['an image', 'a/vision', { image: true }],
    ['tools', 'a/tools', { tools: true }],
    ['an image and tools', 'a/big', { image: true, tools: true }],
    ['a 20k-token prompt', 'a/tools', { chars: 80_000 }],
    ['a 200k-token prompt', 'a/big', { chars: 800_000 }],
  ])('"auto" with %s picks %s', async (_, expected, want: { image?: boolean; tools?: boolean; chars?: number }) => {
    const [a] = await targets('a')
    const { client } = await gateway({
      providers: [providerFor(a, 'a', ['cheap', 'vision', 'tools', 'big'])],
      routing: {
        models: {
          'a/cheap': { vision: false, tools: false, contextWindow: 8_000 },
          'a/vision': { vision: true, tools: false, contextWindow: 16_000 },
          'a/tools': { vision: false, tools: true, contextWindow: 128_000 },
          'a/big': { vision: true, tools: true, contextWindow: 1_000_000 },
        },
        // Listed in any order; "cheapest" puts them in cost order.
        auto: { candidates: [{ model: 'a/big', cost: 10 }, { model: 'a/tools', cost: 3 }, { model: 'a/cheap', cost: 1 }, { model: 'a/vision', cost: 2 }], order: 'cheapest' },
      },
    })
    const content = want.image ? [{ type: 'text' as const, text: 'x'.repeat(want.chars ?? 5) }, { type: 'image_url' as const, image_url: { url: PNG_1PX } }] : 'x'.repeat(want.chars ?? 5)
    const tools = want.tools ? [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: {} } } }] : undefined
    const { response } = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }], ...(tools ? { tools } : {}) }).withResponse()
    expect(response.headers.get('x-gateway-model')).toBe(expected)
    expect(a.calls[0].model).toBe(expected.slice(2))
  })

  it('"auto" without candidates chooses among every listed model, and is listed in /v1/models', async () => {
    const [a, b] = await targets('a', 'b')
    const { client } = await gateway({ providers: [providerFor(a, 'a', ['gpt-3.5-turbo']), providerFor(b, 'b', ['gpt-4o'])] })
    const ids = (await client.models.list()).data.map((m) => m.id)
    expect(ids).toContain('auto')
    expect((await ask(client, 'auto')).response.headers.get('x-gateway-model')).toBe('a/gpt-3.5-turbo')
    const vision = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: PNG_1PX } }] }] }).withResponse()
    expect(vision.response.headers.get('x-gateway-model')).toBe('b/gpt-4o')
  })

  it('alias rules pick targets by the request, first match wins', async () => {
    const [a] = await targets('a')
    const { client } = await gateway({
      providers: [providerFor(a, 'a', ['chat', 'coder', 'long'])],
      models: {
        smart: {
          targets: ['a/chat'],
          rules: [
            { when: { tools: true }, targets: ['a/coder'] },
            { when: { minPromptTokens: 1000 }, targets: ['a/long'] },
          ],
        },
      },
    })
    expect((await ask(client, 'smart')).response.headers.get('x-gateway-model')).toBe('a/chat')
    expect((await ask(client, 'smart', 'y'.repeat(8000))).response.headers.get('x-gateway-model')).toBe('a/long')
    const tools = await client.chat.completions
      .create({ model: 'smart', messages: [{ role: 'user', content: 'y'.repeat(8000) }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] })
      .withResponse()
    expect(tools.response.headers.get('x-gateway-model')).toBe('a/coder')
  })
})

describe('routing config', () => {
  it('refuses bad routing settings at start with the path of the mistake', async () => {
    await expect(startGateway({ routing: { retries: -1 } })).rejects.toThrow(/routing\.retries/)
    await expect(startGateway({ routing: { breaker: { treshold: 3 } } })).rejects.toThrow(/routing\.breaker.*treshold/)
    await expect(startGateway({ models: { x: { targets: ['nope/m'] } } })).rejects.toThrow(/models\.x\.targets\[0\]: "nope\/m" is not "provider\/model"/)
    await expect(startGateway({ models: { x: { strategy: 'random', targets: ['mock/mock-1'] } } })).rejects.toThrow(/strategy/)
  })
})
