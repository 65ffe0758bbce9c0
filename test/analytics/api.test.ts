import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'

const ADMIN = 'sk-admin-analytics'
const USER = 'sk-user-analytics'

/** Prices given per model in config, so expected costs follow from the token counts the client saw. */
const PRICES = { 'mock/mock-1': { input: 3, output: 15 }, 'alt/mock-2': { input: 1, output: 2 } }

async function getJson(url: string, key: string | undefined, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers as Record<string, string>) } })
  return { status: res.status, body: await res.json() }
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (ok(v) || Date.now() > deadline) return v
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('usage analytics over real requests (openai client, mock providers)', () => {
  let gw: RunningGateway
  let user: OpenAI
  let admin: OpenAI
  const sent = { requests: 0, errors: 0, cancelled: 0, input: 0, output: 0, usd: 0, byModel: new Map<string, number>() }
  const note = (model: string, u: { prompt_tokens: number; completion_tokens: number } | undefined) => {
    sent.requests++
    sent.byModel.set(model, (sent.byModel.get(model) ?? 0) + 1)
    if (!u) return
    sent.input += u.prompt_tokens
    sent.output += u.completion_tokens
    const p = PRICES[model as keyof typeof PRICES]
    sent.usd += (u.prompt_tokens * p.input + u.completion_tokens * p.output) / 1e6
  }

  beforeAll(async () => {
    gw = await startGateway({
      server: { apiKeys: [USER, ADMIN], adminKeys: [ADMIN] },
      providers: [
        { id: 'mock', type: 'mock' },
        { id: 'alt', type: 'mock' },
      ],
      analytics: { enabled: true, flushIntervalMs: 20, prices: PRICES },
      // No reconnect grace: a client that goes away cancels the upstream at once.
      streaming: { reconnectGraceSec: 0 },
    })
    user = new OpenAI({ baseURL: gw.baseURL, apiKey: USER, maxRetries: 0 })
    admin = new OpenAI({ baseURL: gw.baseURL, apiKey: ADMIN, maxRetries: 0 })

    // The scripted mix: plain and streamed chats on two providers, an upstream error, an unknown model, a bad body.
    for (const text of ['alpha beta', 'gamma delta epsilon', 'zeta']) {
      const r = await user.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: text }] })
      note('mock/mock-1', r.usage)
    }
    for (const text of ['one two three', 'four five']) {
      const stream = await admin.chat.completions.create({ model: 'alt/mock-2', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } })
      let usage: OpenAI.CompletionUsage | undefined
      for await (const chunk of stream) if (chunk.usage) usage = chunk.usage
      note('alt/mock-2', usage)
    }
    const limited = await user.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'x [[mock:error=rate_limit]]' }] }).catch((e) => e)
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError)
    note('mock/mock-1', undefined)
    sent.errors++
    const missing = await user.chat.completions.create({ model: 'nope/never', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError)
    sent.requests++
    sent.errors++
    const bad = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${USER}`, 'content-type': 'application/json' }, body: '{"model": 1}' })
    expect(bad.status).toBe(400)
    sent.requests++
    sent.errors++
  })
  afterAll(() => gw.close())

  it('summary totals match what was sent: requests, errors, tokens, estimated cost', async () => {
    const { status, body } = await getJson(`${gw.url}/v1/analytics/summary?range=1h`, ADMIN)
    expect(status).toBe(200)
    expect(body.granularity).toBe('minute')
    const t = body.totals
    expect(t.requests).toBe(sent.requests)
    expect(t.errors).toBe(sent.errors)
    expect(t.input_tokens).toBe(sent.input)
    expect(t.output_tokens).toBe(sent.output)
    expect(t.streamed).toBe(2)
    expect(t.cost_usd).toBeCloseTo(sent.usd, 6)
    expect(t.error_rate).toBeCloseTo(sent.errors / sent.requests, 9)
    expect(t.error_kinds).toEqual({ rate_limit: 1, not_found: 1, invalid_request: 1 })
    expect(t.statuses).toMatchObject({ 200: 5, 429: 1, 404: 1, 400: 1 })
    expect(t.latency_ms.p50).toBeGreaterThan(0)
    expect(t.latency_ms.p95).toBeGreaterThanOrEqual(t.latency_ms.p50)
    expect(t.ttft_ms.p50).toBeGreaterThan(0)
    expect(body.privacy.retention_days).toBe(30)
    expect(body.privacy.storage).toBe('memory')
    expect(body.privacy.collected.map((f: { field: string }) => f.field)).toContain('keyId')
  })

  it('breaks down by model, provider, key and endpoint', async () => {
    const byModel = (await getJson(`${gw.url}/v1/analytics/summary?range=1h&group_by=model`, ADMIN)).body
    expect(byModel.group_by).toBe('model')
    const models = Object.fromEntries(byModel.groups.map((g: { key: string; requests: number }) => [g.key, g.requests]))
    // The failed lookup never got a served model: it counts under the name the client sent.
    expect(models).toEqual({ 'mock/mock-1': 4, 'alt/mock-2': 2, 'nope/never': 1, '(none)': 1 })

    const byProvider = (await getJson(`${gw.url}/v1/analytics/summary?range=1h&group_by=provider`, ADMIN)).body
    const providers = Object.fromEntries(byProvider.groups.map((g: { key: string; requests: number }) => [g.key, g.requests]))
    expect(providers).toEqual({ mock: 4, alt: 2, '(none)': 2 })

    const byKey = (await getJson(`${gw.url}/v1/analytics/summary?range=1h&group_by=key`, ADMIN)).body
    expect(byKey.groups).toHaveLength(2)
    for (const g of byKey.groups) {
      expect(g.key).toMatch(/^key_[0-9a-f]{16}$/)
      expect(g.key).not.toContain('sk-')
    }
    expect(byKey.groups.map((g: { requests: number }) => g.requests).sort()).toEqual([2, 6])

    const byEndpoint = (await getJson(`${gw.url}/v1/analytics/summary?range=1h&group_by=endpoint`, ADMIN)).body
    expect(byEndpoint.groups).toEqual([expect.objectContaining({ key: 'POST /v1/chat/completions', requests: sent.requests })])
  })

  it('timeseries columns add up to the totals, per group too', async () => {
    const { status, body } = await getJson(`${gw.url}/v1/analytics/timeseries?range=1h&group_by=provider`, ADMIN)
    expect(status).toBe(200)
    expect(body.bucket_ms).toBe(60_000)
    expect(body.timestamps.length).toBeGreaterThanOrEqual(60)
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
    expect(sum(body.totals.requests)).toBe(sent.requests)
    expect(sum(body.totals.input_tokens)).toBe(sent.input)
    expect(sum(body.totals.cost_usd)).toBeCloseTo(sent.usd, 6)
    const mock = body.groups.find((g: { key: string }) => g.key === 'mock')
    expect(sum(mock.requests)).toBe(4)
    expect(body.totals.requests.length).toBe(body.timestamps.length)

    const daily = (await getJson(`${gw.url}/v1/analytics/timeseries?range=30d`, ADMIN)).body
    expect(daily.granularity).toBe('day')
    expect(sum(daily.totals.requests)).toBe(sent.requests)
    const hourly = (await getJson(`${gw.url}/v1/analytics/timeseries?range=24h`, ADMIN)).body
    expect(hourly.granularity).toBe('hour')
    expect(sum(hourly.totals.output_tokens)).toBe(sent.output)
  })

  it('records a stream the client aborts, when it ends, as cancelled', async () => {
    const before = (await getJson(`${gw.url}/v1/analytics/summary?range=1h`, ADMIN)).body.totals
    const ctrl = new AbortController()
    const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ')
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock/mock-1', stream: true, messages: [{ role: 'user', content: `[[mock:delay=10]] ${words}` }] }),
      signal: ctrl.signal,
    })
    const reader = res.body!.getReader()
    await reader.read()
    await reader.read()
    ctrl.abort()
    const after = await until(
      async () => (await getJson(`${gw.url}/v1/analytics/summary?range=1h`, ADMIN)).body.totals,
      (t) => t.cancelled === before.cancelled + 1,
    )
    expect(after.cancelled).toBe(before.cancelled + 1)
    expect(after.requests).toBe(before.requests + 1)
    expect(after.errors).toBe(before.errors)
    expect(after.error_kinds.cancelled).toBe(1)
  })

  it('refuses non-admin keys and bad queries with precise OpenAI-shaped errors', async () => {
    const denied = await getJson(`${gw.url}/v1/analytics/summary`, USER)
    expect(denied.status).toBe(403)
    expect(denied.body.error).toMatchObject({ type: 'permission_error', code: 'admin_required' })
    const anon = await getJson(`${gw.url}/v1/analytics/summary`, undefined)
    expect(anon.status).toBe(401)
    expect(anon.body.error.code).toBe('invalid_api_key')

    const group = await getJson(`${gw.url}/v1/analytics/summary?group_by=ip`, ADMIN)
    expect(group.status).toBe(400)
    expect(group.body.error).toMatchObject({ type: 'invalid_request_error', param: 'group_by' })
    const range = await getJson(`${gw.url}/v1/analytics/timeseries?range=2y`, ADMIN)
    expect(range.status).toBe(400)
    expect(range.body.error.param).toBe('range')
    const from = await getJson(`${gw.url}/v1/analytics/summary?from=yesterday`, ADMIN)
    expect(from.status).toBe(400)
    expect(from.body.error).toMatchObject({ param: 'from', code: 'invalid_value' })
    const order = await getJson(`${gw.url}/v1/analytics/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, ADMIN)
    expect(order.status).toBe(400)
    expect(order.body.error.message).toContain("'from' must be before 'to'")
    const minute = await getJson(`${gw.url}/v1/analytics/timeseries?range=30d&granularity=minute`, ADMIN)
    expect(minute.status).toBe(400)
    expect(minute.body.error.param).toBe('granularity')
    const wipe = await getJson(`${gw.url}/v1/analytics`, USER, { method: 'DELETE' })
    expect(wipe.status).toBe(403)
    // The analytics API itself is not counted as usage.
    const t = (await getJson(`${gw.url}/v1/analytics/summary?range=1h&group_by=endpoint`, ADMIN)).body
    expect(t.groups.every((g: { key: string }) => !g.key.includes('analytics'))).toBe(true)
  })

  it('DELETE /v1/analytics wipes everything (admin key)', async () => {
    const res = await getJson(`${gw.url}/v1/analytics`, ADMIN, { method: 'DELETE' })
    expect(res.status).toBe(200)
    expect(res.body.deleted).toBe(true)
    expect(res.body.documents).toBeGreaterThan(0)
    expect(await gw.gateway.storage.mount('analytics').getKeys()).toEqual([])
    const after = (await getJson(`${gw.url}/v1/analytics/summary?range=30d`, ADMIN)).body
    expect(after.totals.requests).toBe(0)
    // Collection goes on after a wipe.
    await user.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'again' }] })
    const again = (await getJson(`${gw.url}/v1/analytics/summary?range=1h`, ADMIN)).body
    expect(again.totals.requests).toBe(1)
  })
})

describe('analytics disabled (the default)', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ providers: [{ id: 'mock', type: 'mock' }] })
  })
  afterAll(() => gw.close())

  it('answers a clear 404 on the API and the dashboard, and stores nothing', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'none', maxRetries: 0 })
    await client.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'hi' }] })
    const res = await getJson(`${gw.url}/v1/analytics/summary`, undefined)
    expect(res.status).toBe(404)
    expect(res.body.error).toMatchObject({ code: 'analytics_disabled' })
    expect(res.body.error.message).toContain('analytics')
    const page = await fetch(`${gw.url}/dashboard`)
    expect(page.status).toBe(404)
    expect(await page.text()).toContain('disabled')
    expect(await gw.gateway.storage.mount('analytics').getKeys()).toEqual([])
  })
})
