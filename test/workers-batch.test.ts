import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { cronTrigger as cron, startWorkerd, type RuntimeServer } from './runtimes/spawn.js'

/**
 * Batches on Workers: files and jobs on KV, and the Cron Trigger resuming a
 * batch that a previous isolate left unfinished (a fresh Miniflare over the
 * same persisted KV stands in for a new isolate).
 */
describe('batches on Workers (KV + Cron Trigger)', () => {
  const servers: RuntimeServer[] = []
  afterAll(async () => {
    for (const s of servers) await s.close().catch(() => {})
  })

  it('a batch interrupted with its isolate is finished by the cron, each line exactly once', async () => {
    const kvPersist = mkdtempSync(join(tmpdir(), 'lmgw-kv-'))
    const config = {
      server: { apiKeys: ['k'] },
      storage: { files: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' }, jobs: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' } },
      batch: { concurrency: 1 },
    }
    const first = await startWorkerd(config, {}, { kvNamespaces: ['GATEWAY_KV'], kvPersist })
    servers.push(first)
    const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'k', maxRetries: 0 })
    const n = 12
    const jsonl = Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `w${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: `cron ${i} [[mock:delay=60]] a b` }] } })).join('\n')
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'w.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    // Created, not started: on Workers the Cron Trigger runs batches.
    expect((await client.batches.retrieve(batch.id)).status).toBe('validating')
    const running = (await cron(first)).scheduled({ cron: '* * * * *' }).catch(() => {})
    for (let i = 0; i < 400; i++) {
      const b = await client.batches.retrieve(batch.id)
      if ((b.request_counts?.completed ?? 0) >= 2) break
      await new Promise((r) => setTimeout(r, 25))
    }
    const midway = await client.batches.retrieve(batch.id)
    expect(midway.status).toBe('in_progress')
    expect(midway.request_counts!.completed).toBeLessThan(n)
    void running
    await first.close()

    const second = await startWorkerd(config, {}, { kvNamespaces: ['GATEWAY_KV'], kvPersist })
    servers.push(second)
    await (await cron(second)).scheduled({ cron: '* * * * *' })
    const client2 = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'k', maxRetries: 0 })
    const done = await client2.batches.retrieve(batch.id)
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 })
    const out = (await (await client2.files.content(done.output_file_id!)).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l))
    expect(out).toHaveLength(n)
    expect(new Set(out.map((r) => r.custom_id)).size).toBe(n)
  }, 120_000)
})
