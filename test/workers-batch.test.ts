import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { cronTrigger as cron, startWorkerd, type RuntimeServer } from './runtimes/spawn.js'

/**
 * Batches on Workers: files and jobs on KV, and the Cron Trigger resuming a
 * batch that a previous isolate left unfinished (a fresh Miniflare over the
 * same persisted KV stands in for a new isolate); an isolate that did not
 * run a batch reads it from KV.
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
      batch: { concurrency: 1, leaseSec: 1 },
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
    // The dead isolate's lease runs out (leaseSec 1) before the next trigger may take the batch over.
    await new Promise((r) => setTimeout(r, 1_500))

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

  it('the isolate that created a batch reports it completed after the cron ran it in another isolate', async () => {
    const kvPersist = mkdtempSync(join(tmpdir(), 'lmgw-kv-'))
    const config = {
      server: { apiKeys: ['k'] },
      storage: { files: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' }, jobs: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' } },
      batch: { concurrency: 2 },
    }
    const creator = await startWorkerd(config, {}, { kvNamespaces: ['GATEWAY_KV'], kvPersist })
    servers.push(creator)
    const client = new OpenAI({ baseURL: `${creator.url}/v1`, apiKey: 'k', maxRetries: 0 })
    const n = 6
    const jsonl = Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `c${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: `elsewhere ${i}` }] } })).join('\n')
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'c.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    expect((await client.batches.retrieve(batch.id)).status).toBe('validating')

    // Another isolate on the same KV: its Cron Trigger runs the batch to the end.
    const runner = await startWorkerd(config, {}, { kvNamespaces: ['GATEWAY_KV'], kvPersist })
    servers.push(runner)
    await (await cron(runner)).scheduled({ cron: '* * * * *' })

    const done = await client.batches.retrieve(batch.id)
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 })
    const listed = (await client.batches.list({ limit: 10 })).data.find((b) => b.id === batch.id)
    expect(listed).toMatchObject({ status: 'completed', request_counts: { total: n, completed: n, failed: 0 }, output_file_id: done.output_file_id })
    const out = (await (await client.files.content(done.output_file_id!)).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l))
    expect(out.map((r) => r.custom_id).sort()).toEqual(Array.from({ length: n }, (_, i) => `c${i}`))
    // The creating isolate's own trigger finds nothing left to run.
    await (await cron(creator)).scheduled({ cron: '* * * * *' })
    expect(await client.batches.retrieve(batch.id)).toMatchObject({ status: 'completed', output_file_id: done.output_file_id })
  }, 120_000)
})
