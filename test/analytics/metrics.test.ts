import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../../src/analytics/metrics.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}
interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * A strict parser of the Prometheus text format 0.0.4: every line is a HELP,
 * a TYPE or a sample of a declared family; label values use only the
 * allowed escapes; no duplicate series; histograms have cumulative buckets,
 * a +Inf bucket equal to _count, and _sum. It throws on the first violation.
 */
function parseProm(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const at = `line ${i + 1}: ${line}`
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) throw new Error(`bad comment, ${at}`)
      const [, kind, name, rest] = m
      if (!NAME.test(name)) throw new Error(`bad metric name, ${at}`)
      let f = families.get(name)
      if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }))
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type, ${at}`)
        if (f.samples.length) throw new Error(`TYPE after samples, ${at}`)
        f.type = rest
      } else f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
      return
    }
    if (line.trim() === '') throw new Error(`blank line, ${at}`)
    let p = 0
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)
    if (!nameMatch) throw new Error(`bad sample name, ${at}`)
    const name = nameMatch[0]
    p = name.length
    const labels: Record<string, string> = {}
    if (line[p] === '{') {
      p++
      while (line[p] !== '}') {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(p))
        if (!lm || !LABEL.test(lm[1])) throw new Error(`bad label, ${at}`)
        p += lm[0].length
        let value = ''
        for (;;) {
          const ch = line[p]
          if (ch === undefined) throw new Error(`unterminated label value, ${at}`)
          if (ch === '"') break
          if (ch === '\\') {
            const next = line[p + 1]
            if (next === 'n') value += '\n'
            else if (next === '\\' || next === '"') value += next
            else throw new Error(`bad escape, ${at}`)
            p += 2
          } else {
            value += ch
            p++
          }
        }
        p++
        if (lm[1] in labels) throw new Error(`duplicate label, ${at}`)
        labels[lm[1]] = value
        if (line[p] === ',') p++
        else if (line[p] !== '}') throw new Error(`expected , or }, ${at}`)
      }
      p++
    }
    const rest = line.slice(p)
    const vm = /^ (\S+)(?: (-?\d+))?$/.exec(rest)
    if (!vm) throw new Error(`bad value, ${at}`)
    const raw = vm[1]
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw)
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad number, ${at}`)
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
    if (!family) throw new Error(`sample of an undeclared family, ${at}`)
    if (family.name !== name && family.type !== 'histogram' && family.type !== 'summary') throw new Error(`suffix on a ${family.type}, ${at}`)
    if (name.endsWith('_bucket') && family.type === 'histogram' && !('le' in labels)) throw new Error(`bucket without le, ${at}`)
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(id)) throw new Error(`duplicate series, ${at}`)
    seen.add(id)
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`negative counter, ${at}`)
    family.samples.push({ name, labels, value })
  })
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const groups = new Map<string, Sample[]>()
    for (const s of f.samples.filter((s) => s.name === `${f.name}_bucket`)) {
      const { le: _le, ...rest } = s.labels
      const k = JSON.stringify(Object.entries(rest).sort())
      groups.set(k, [...(groups.get(k) ?? []), s])
    }
    for (const [k, buckets] of groups) {
      const sorted = [...buckets].sort((a, b) => Number(a.labels.le === '+Inf' ? Infinity : a.labels.le) - Number(b.labels.le === '+Inf' ? Infinity : b.labels.le))
      sorted.reduce((prev, b) => {
        if (b.value < prev) throw new Error(`${f.name}: buckets not cumulative for ${k}`)
        return b.value
      }, 0)
      const inf = sorted[sorted.length - 1]
      if (inf.labels.le !== '+Inf') throw new Error(`${f.name}: no +Inf bucket for ${k}`)
      const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k)
      if (!count || count.value !== inf.value) throw new Error(`${f.name}: _count differs from the +Inf bucket for ${k}`)
      if (!f.samples.some((s) => s.name === `${f.name}_sum` && JSON.stringify(Object.entries(s.labels).sort()) === k)) throw new Error(`${f.name}: no _sum for ${k}`)
    }
  }
  return families
}

const sum = (f: Family | undefined, name: string, where: Record<string, string> = {}) =>
  (f?.samples ?? []).filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)

describe('GET /metrics', () => {
  let gw: RunningGateway
  const ADMIN = 'sk-admin-metrics'
  const USER = 'sk-user-metrics'
  const sent = { ok: 0, input: 0, output: 0 }
  const inventedModels: string[] = []

  beforeAll(async () => {
    gw = await startGateway({
      server: { apiKeys: [USER, ADMIN], adminKeys: [ADMIN] },
      providers: [
        { id: 'mock', type: 'mock' },
        { id: 'alt', type: 'mock' },
      ],
      models: { fast: { strategy: 'fallback', targets: ['alt/mock-2', 'mock/mock-1'] } },
    })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: USER, maxRetries: 0 })
    for (const text of ['one', 'two three', 'four five six']) {
      const r = await client.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: text }] })
      sent.ok++
      sent.input += r.usage!.prompt_tokens
      sent.output += r.usage!.completion_tokens
    }
    const s = await client.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: 'streamed words' }], stream: true, stream_options: { include_usage: true } })
    for await (const c of s) {
      if (!c.usage) continue
      sent.input += c.usage.prompt_tokens
      sent.output += c.usage.completion_tokens
    }
    sent.ok++
    // Through an alias: the router keeps a circuit breaker per target.
    await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'via alias' }] })
    for (let i = 0; i < 2; i++) await client.chat.completions.create({ model: 'alt/mock-2', messages: [{ role: 'user', content: '[[mock:error=upstream]]' }] }).catch(() => {})
    // Clients inventing model names must not create label values.
    for (let i = 0; i < 20; i++) {
      const name = `invented-${i}-${Math.random().toString(36).slice(2)}`
      inventedModels.push(name)
      await client.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'x' }] }).catch(() => {})
    }
  })
  afterAll(() => gw.close())

  it('serves a strictly valid Prometheus exposition whose numbers match the traffic', async () => {
    const res = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await res.text()
    const m = parseProm(text)

    const requests = m.get('gateway_requests_total')!
    expect(requests.type).toBe('counter')
    const chat = { endpoint: 'POST /v1/chat/completions' }
    expect(sum(requests, 'gateway_requests_total', chat)).toBe(sent.ok + 1 + 2 + 20)
    expect(sum(requests, 'gateway_requests_total', { ...chat, status: '200', provider: 'mock', model: 'mock/mock-1' })).toBe(sent.ok)
    expect(sum(requests, 'gateway_requests_total', { ...chat, status: '404', model: 'none' })).toBe(20)
    expect(sum(m.get('gateway_tokens_total'), 'gateway_tokens_total', { model: 'mock/mock-1', type: 'input' })).toBe(sent.input)
    expect(sum(m.get('gateway_tokens_total'), 'gateway_tokens_total', { model: 'mock/mock-1', type: 'output' })).toBe(sent.output)
    expect(sum(m.get('gateway_errors_total'), 'gateway_errors_total', { kind: 'not_found' })).toBe(20)
    expect(sum(m.get('gateway_errors_total'), 'gateway_errors_total', { kind: 'upstream' })).toBe(2)

    const duration = m.get('gateway_request_duration_seconds')!
    expect(duration.type).toBe('histogram')
    expect(sum(duration, 'gateway_request_duration_seconds_count', chat)).toBe(sent.ok + 23)
    expect(sum(m.get('gateway_time_to_first_token_seconds'), 'gateway_time_to_first_token_seconds_count', { provider: 'mock' })).toBe(sent.ok)
    expect(sum(m.get('gateway_requests_in_flight'), 'gateway_requests_in_flight')).toBe(0)

    // Breaker states are read from the router at scrape time: one series per target it has seen.
    const breakers = m.get('gateway_circuit_breaker_state')!
    expect(breakers.type).toBe('gauge')
    const states = gw.gateway.router.breakerStates()
    expect(states.length).toBeGreaterThan(0)
    const code = { closed: 0, half_open: 1, open: 2 }
    for (const b of states) expect(sum(breakers, 'gateway_circuit_breaker_state', { target: b.target })).toBe(code[b.state])
    expect(breakers.samples).toHaveLength(states.length)
    for (const family of ['gateway_queue_depth', 'gateway_queue_wait_seconds', 'gateway_cache_lookups_total']) expect(m.get(family)?.type).toBeDefined()

    // Bounded labels: nothing a client typed became a label value.
    for (const name of inventedModels) expect(text).not.toContain(name)
    expect(requests.samples.length).toBeLessThanOrEqual(5)
    expect(text).not.toContain(USER)
    expect(text).not.toContain(ADMIN)
  })

  it('needs an admin key and can be turned off', async () => {
    const denied = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${USER}` } })
    expect(denied.status).toBe(403)
    expect((await denied.json()).error.code).toBe('admin_required')
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(401)
    const off = await startGateway({ analytics: { metrics: false } })
    const res = await fetch(`${off.url}/metrics`)
    expect(res.status).toBe(404)
    expect((await res.json()).error.code).toBe('metrics_disabled')
    await off.close()
  })
})

describe('MetricsRegistry', () => {
  it('caps label sets per metric and escapes label values', () => {
    const r = new MetricsRegistry(3)
    const c = r.counter('t_total', 'A test\ncounter with a back\\slash.', ['model'])
    for (const model of ['a', 'b', 'c', 'd', 'e']) c.inc({ model })
    c.inc({ model: 'a' }, 2)
    const h = r.histogram('t_seconds', 'Durations.', ['model'], [0.1, 1])
    h.observe({ model: 'quote"new\nline\\' }, 0.5)
    const families = parseProm(r.render())
    const t = families.get('t_total')!
    expect(t.help).toBe('A test\ncounter with a back\\slash.')
    expect(Object.fromEntries(t.samples.map((s) => [s.labels.model, s.value]))).toEqual({ a: 3, b: 1, c: 1, _other: 2 })
    const bucket = families.get('t_seconds')!.samples.find((s) => s.labels.le === '1')!
    expect(bucket.labels.model).toBe('quote"new\nline\\')
    expect(bucket.value).toBe(1)
    expect(() => r.counter('bad name', 'x')).toThrow()
    expect(() => r.counter('ok_total', 'x', ['le'])).toThrow()
  })
})
