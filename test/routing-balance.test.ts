import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { startGateway } from './helpers/gateway.js'
import { providerFor, startOpenAITarget, type OpenAITarget } from './helpers/openai-target.js'

/** Each balancing strategy over 1,000 real requests through the gateway. */
let open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.map((o) => o.close()))
  open = []
})

async function setup(strategy: string, targets: Array<{ name: string; weight?: number; delayMs?: number }>, routing: Record<string, unknown> = {}) {
  const ups: OpenAITarget[] = await Promise.all(targets.map((t) => startOpenAITarget(t.name, () => (t.delayMs ? { delayMs: t.delayMs } : {}))))
  const gw = await startGateway({
    providers: ups.map((u) => providerFor(u)),
    routing,
    models: { pool: { strategy, targets: targets.map((t) => (t.weight ? { model: `${t.name}/m`, weight: t.weight } : `${t.name}/m`)) } },
  })
  open.push(gw, ...ups)
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
  return { ups, client }
}

/** Sends `total` requests with `concurrency` in flight; returns how many each target served. */
async function load(client: OpenAI, ups: OpenAITarget[], total: number, concurrency: number): Promise<Record<string, number>> {
  let sent = 0
  const worker = async () => {
    while (sent < total) {
      sent++
      await client.chat.completions.create({ model: 'pool', messages: [{ role: 'user', content: 'hi' }] })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return Object.fromEntries(ups.map((u) => [u.name, u.calls.length]))
}

// 1,000 real HTTP requests per strategy: generous timeouts for a loaded two-core machine.
describe('balancing strategies over 1,000 requests', { timeout: 180_000 }, () => {
  it('round-robin: an even split, exactly', async () => {
    const { ups, client } = await setup('round-robin', [{ name: 'a' }, { name: 'b' }, { name: 'c' }])
    const counts = await load(client, ups, 1000, 8)
    expect(Object.values(counts).sort()).toEqual([333, 333, 334])
  })

  it('weighted: in proportion to the weights (3:1), within 4 standard deviations', async () => {
    const { ups, client } = await setup('weighted', [{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }])
    const counts = await load(client, ups, 1000, 8)
    // Binomial(1000, 0.75): sd ≈ 13.7.
    expect(counts.a + counts.b).toBe(1000)
    expect(Math.abs(counts.a - 750)).toBeLessThan(55)
  })

  it('least-busy: idle targets share evenly; under load the slow target gets fewer', async () => {
    const even = await setup('least-busy', [{ name: 'a' }, { name: 'b' }])
    const idle = await load(even.client, even.ups, 200, 1)
    expect(idle).toEqual({ a: 100, b: 100 })

    const { ups, client } = await setup('least-busy', [{ name: 'slow', delayMs: 120 }, { name: 'fast' }])
    const busy = await load(client, ups, 1000, 8)
    expect(busy.slow + busy.fast).toBe(1000)
    // Both hold about the same number in flight, so each serves in proportion to its speed.
    expect(busy.fast).toBeGreaterThan(busy.slow * 2)
  })

  it('lowest-latency: the target with the lower time to first event gets nearly everything, the other is still re-measured', async () => {
    const { ups, client } = await setup('lowest-latency', [{ name: 'slow', delayMs: 400 }, { name: 'fast' }], { latency: { explore: 0.05 } })
    const counts = await load(client, ups, 1000, 8)
    expect(counts.slow + counts.fast).toBe(1000)
    // 5% exploration: about 50 go to the slow one, so its estimate stays current.
    expect(counts.fast).toBeGreaterThan(900)
    expect(counts.slow).toBeGreaterThan(10)
  })

  it('fallback: all to the first target while it is healthy', async () => {
    const { ups, client } = await setup('fallback', [{ name: 'a' }, { name: 'b' }])
    expect(await load(client, ups, 1000, 8)).toEqual({ a: 1000, b: 0 })
  })
})
