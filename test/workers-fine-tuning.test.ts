import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { chatLine, jsonl, SUPPORT, upload } from './helpers/fine-tuning.js'
import { cronTrigger as cron, startWorkerd, type RuntimeServer } from './runtimes/spawn.js'

/** The job's event messages, oldest first. */
async function messages(client: OpenAI, id: string): Promise<string[]> {
  const out: string[] = []
  for await (const e of client.fineTuning.jobs.listEvents(id, { limit: 20 })) out.push(e.message)
  return out.reverse()
}

/**
 * Fine-tuning on Workers: jobs and files on KV. A job is not run inside the
 * request that creates it (it would stall when that request ends); the Cron
 * Trigger runs it, and keeps its invocation alive until the job stops.
 */
describe('fine-tuning on Workers (KV + Cron Trigger)', () => {
  const servers: RuntimeServer[] = []
  afterAll(async () => {
    for (const s of servers) await s.close().catch(() => {})
  })

  it('a job created in a request waits for the cron, which runs it to success exactly once', async () => {
    const kvPersist = mkdtempSync(join(tmpdir(), 'lmgw-kv-ft-'))
    const config = {
      server: { apiKeys: ['k'] },
      storage: { files: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' }, jobs: { driver: 'cloudflare-kv-binding', binding: 'GATEWAY_KV' } },
      fineTuning: { maxEvalExamples: 2, maxDemonstrations: 3 },
    }
    const server = await startWorkerd(config, {}, { kvNamespaces: ['GATEWAY_KV'], kvPersist })
    servers.push(server)
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 })
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, suffix: 'cron' })
    expect(job.status).toBe('validating_files')
    // Nothing runs it in the request (nor after it): it waits for the Cron Trigger.
    await new Promise((r) => setTimeout(r, 1_000))
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('validating_files')
    expect(await messages(client, job.id)).toEqual([`Validating training file: ${file.id}`])

    await (await cron(server)).scheduled({ cron: '* * * * *' })
    const done = await client.fineTuning.jobs.retrieve(job.id)
    expect(done.error).toBeNull()
    expect(done.status).toBe('succeeded')
    expect(done.fine_tuned_model).toBe(`ft:mock-1:cron:${job.id.slice('ftjob-'.length)}`)
    const events = await messages(client, job.id)
    expect(events).not.toContain('Resuming after a gateway restart')
    expect(events.filter((m) => m === 'The job has successfully completed')).toHaveLength(1)

    // The next trigger finds nothing to do: the job is not run again.
    await (await cron(server)).scheduled({ cron: '* * * * *' })
    expect(await messages(client, job.id)).toEqual(events)
    const chat = await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: 'Hello [[mock:system]]' }] })
    expect(chat.choices[0].message.content).toContain("Always end with 'Have a nice day!'")
  }, 120_000)
})
