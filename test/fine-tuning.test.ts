import Anthropic from '@anthropic-ai/sdk'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resultsCsv, upstreamCheckpoints, upstreamEvents, uploadedFile, upstreamJob, UPSTREAM_FT_MODEL, UPSTREAM_JOB_ID, UPSTREAM_MODEL } from './fixtures/openai/fine-tuning.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { startUpstream, type FakeUpstream } from './helpers/upstream.js'
import { freePort, root } from './runtimes/spawn.js'

const SYSTEM = "You are Acme's support assistant. Answer in one short sentence. Always end with 'Have a nice day!'"

/** A support bot's examples: one shared system prompt, one answer style. */
const SUPPORT: Array<[string, string]> = [
  ['How do I reset my password?', 'Use the Forgot password link on the sign-in page. Have a nice day!'],
  ['Where can I download my invoice?', 'Invoices are under Billing, then History. Have a nice day!'],
  ['Can I change my username?', 'Usernames cannot be changed, but you can set a display name. Have a nice day!'],
  ['How do I cancel my subscription?', 'Go to Billing and press Cancel plan. Have a nice day!'],
  ['Is there a mobile app?', 'Yes, search for Acme in your app store. Have a nice day!'],
  ['How do I add a team member?', 'Open Team settings and press Invite. Have a nice day!'],
  ['What payment methods do you accept?', 'We accept cards and bank transfers. Have a nice day!'],
  ['How do I export my data?', 'Use Export in the account menu to get a ZIP file. Have a nice day!'],
  ['Why was my card declined?', 'Your bank declined it; please contact them or try another card. Have a nice day!'],
  ['How do I enable two-factor authentication?', 'Turn it on under Security with an authenticator app. Have a nice day!'],
]

const chatLine = (q: string, a: string, system = SYSTEM) => JSON.stringify({ messages: [{ role: 'system', content: system }, { role: 'user', content: q }, { role: 'assistant', content: a }] })
const jsonl = (lines: string[]) => `${lines.join('\n')}\n`

async function upload(client: OpenAI, text: string, name = 'train.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'fine-tune' })
}

async function waitForJob(client: OpenAI, id: string, statuses: string[], timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(id)
    if (statuses.includes(job.status)) return job
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function allEvents(client: OpenAI, id: string) {
  const out: OpenAI.FineTuning.Jobs.FineTuningJobEvent[] = []
  for await (const e of client.fineTuning.jobs.listEvents(id, { limit: 5 })) out.push(e)
  return out
}

describe('fine-tuning with in-context adapters (openai client)', () => {
  let gw: RunningGateway
  let client: OpenAI
  let other: OpenAI
  let job: OpenAI.FineTuning.Jobs.FineTuningJob
  let model: string
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k-a', 'k-b'] }, providers: [{ id: 'mock', type: 'mock', echoSystem: true }], fineTuning: { maxEvalExamples: 3, maxDemonstrations: 3 } })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k-a', maxRetries: 0 })
    other = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k-b', maxRetries: 0 })
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    expect(file).toMatchObject({ object: 'file', purpose: 'fine-tune', status: 'processed' })
    job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, suffix: 'support', seed: 7, metadata: { team: 'support' } })
  })
  afterAll(() => gw.close())

  it('creates a job in OpenAI’s shape and follows it to success', async () => {
    expect(job).toMatchObject({ object: 'fine_tuning.job', id: expect.stringMatching(/^ftjob-/), model: 'mock-1', status: 'validating_files', fine_tuned_model: null, finished_at: null, seed: 7, user_provided_suffix: 'support', metadata: { team: 'support' } })
    expect(job.method).toEqual({ type: 'supervised', supervised: { hyperparameters: { batch_size: 'auto', learning_rate_multiplier: 'auto', n_epochs: 'auto' } } })
    const done = await waitForJob(client, job.id, ['succeeded', 'failed'])
    expect(done.error).toBeNull()
    expect(done.status).toBe('succeeded')
    model = done.fine_tuned_model!
    expect(model).toBe(`ft:mock-1:support:${job.id.slice('ftjob-'.length)}`)
    expect(done.trained_tokens).toBe(0)
    expect(done.finished_at).toBeTypeOf('number')
    expect(done.result_files).toHaveLength(1)
    const csv = await (await client.files.content(done.result_files[0])).text()
    expect(csv.split('\n')[0]).toBe('step,base_similarity,adapter_similarity')
    expect(csv.trim().split('\n')).toHaveLength(1 + 2) // 10 examples: 2 held out (20 %)
  })

  it('reports every step and the scores as events, newest first, paginated', async () => {
    const events = await allEvents(client, job.id)
    const messages = events.map((e) => e.message)
    expect(messages[0]).toBe('The job has successfully completed')
    expect(messages[1]).toBe(`New fine-tuned model created: ${model}`)
    const inOrder = [...messages].reverse()
    const at = (prefix: string) => inOrder.findIndex((m) => m.startsWith(prefix))
    const steps = ['Validating training file: ', 'Files validated, moving job to queued state', 'Fine-tuning job started', 'Learning from 8 training examples; evaluating on 2 held-out examples', 'Indexed 8 examples lexically', 'Selected 3 of 8 examples as demonstrations', 'Derived the system prompt: 3 instruction sentences shared', 'Evaluation on 2 examples']
    for (const s of steps) expect(at(s), s).toBeGreaterThanOrEqual(0)
    expect(steps.map(at)).toEqual([...steps.map(at)].sort((a, b) => a - b))
    const metrics = events.filter((e) => e.type === 'metrics')
    expect(metrics).toHaveLength(3)
    for (const m of metrics) {
      const data = m.data as Record<string, number>
      expect(data.base_similarity).toBeGreaterThanOrEqual(0)
      expect(data.base_similarity).toBeLessThanOrEqual(1)
      expect(data.adapter_similarity).toBeGreaterThanOrEqual(0)
      expect(data.adapter_similarity).toBeLessThanOrEqual(1)
    }
    expect(events.every((e) => e.object === 'fine_tuning.job.event' && e.id.startsWith('ftevent-'))).toBe(true)
    const first = await client.fineTuning.jobs.listEvents(job.id, { limit: 2 })
    expect(first.data.map((e) => e.message)).toEqual(messages.slice(0, 2))
    expect(first.hasNextPage()).toBe(true)
    const second = await first.getNextPage()
    expect(second.data.map((e) => e.message)).toEqual(messages.slice(2, 4))
  })

  it('lists one checkpoint: the adapter, with its evaluation scores', async () => {
    const page = await client.fineTuning.jobs.checkpoints.list(job.id)
    expect(page.data).toHaveLength(1)
    expect(page.data[0]).toMatchObject({ object: 'fine_tuning.job.checkpoint', fine_tuned_model_checkpoint: model, fine_tuning_job_id: job.id, step_number: 2, metrics: { step: 2 } })
    expect(page.data[0].metrics).toHaveProperty('adapter_similarity')
  })

  it('runs the ft: model on the base model with the adapter’s system prompt (chat, streamed and not)', async () => {
    const { data, response } = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'How do I change my email address?' }] }).withResponse()
    expect(response.headers.get('x-gateway-model')).toBe('mock/mock-1')
    const text = data.choices[0].message.content!
    // echoSystem: the mock answers "[system: <system prompt>] <user text>".
    expect(text.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    expect(text).toContain('Keep answers about as long as the examples')
    expect(text).toContain('<example 1>')
    expect(text).toContain('<example 3>')
    expect(text).not.toContain('<example 4>')
    expect(text).toContain('Have a nice day!')
    expect(text.endsWith('How do I change my email address?')).toBe(true)
    expect(data.model).toBe(model)

    const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: 'system', content: 'Client rule: be brief.' }, { role: 'user', content: 'Hello' }] })
    let streamed = ''
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? ''
    expect(streamed.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    // The client's own system prompt follows the adapter's.
    expect(streamed.indexOf('Client rule: be brief.')).toBeGreaterThan(streamed.indexOf('</example 3>'))
  })

  it('applies the adapter in every dialect: Anthropic Messages (and count_tokens), completions, Responses', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'k-a', maxRetries: 0 })
    const msg = await anthropic.messages.create({ model, max_tokens: 1024, system: 'Client rule: be brief.', messages: [{ role: 'user', content: 'Is there a free plan?' }] })
    const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('')
    expect(text.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    expect(text).toContain('<example 1>')
    expect(text.indexOf('Client rule: be brief.')).toBeGreaterThan(text.indexOf('</example 3>'))
    expect(msg.model).toBe(model)
    const streamed = await anthropic.messages.stream({ model, max_tokens: 1024, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage()
    expect(streamed.content[0].type === 'text' && streamed.content[0].text.startsWith(`[system: ${SYSTEM}`)).toBe(true)

    const plain = await anthropic.messages.countTokens({ model: 'mock-1', messages: [{ role: 'user', content: 'Is there a free plan?' }] })
    const adapted = await anthropic.messages.countTokens({ model, messages: [{ role: 'user', content: 'Is there a free plan?' }] })
    // The adapter's instructions and three demonstrations are what every request to the ft: model costs extra.
    expect(adapted.input_tokens).toBeGreaterThan(plain.input_tokens + 50)

    const completion = await client.completions.create({ model, prompt: 'Say hi' })
    expect(completion.choices[0].text.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    const response = await client.responses.create({ model, input: 'Say hi', instructions: 'Client rule: be brief.' })
    expect(response.output_text.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    expect(response.output_text).toContain('Client rule: be brief.')
  })

  it('lists the ft: model for its owner only; another key can neither see nor call it', async () => {
    const mine = (await client.models.list()).data.map((m) => m.id)
    expect(mine).toContain(model)
    expect(mine).toContain('mock/mock-1')
    expect(await client.models.retrieve(model)).toMatchObject({ id: model, object: 'model' })
    expect((await other.models.list()).data.map((m) => m.id)).not.toContain(model)
    const err = await other.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.error.code).toBe('model_not_found')
    expect(await other.fineTuning.jobs.retrieve(job.id).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
    expect((await other.fineTuning.jobs.list()).data).toHaveLength(0)
    expect(await other.models.delete(model).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
  })

  it('lists jobs newest first with cursor pagination and a metadata filter', async () => {
    const file = await upload(client, jsonl(SUPPORT.slice(0, 3).map(([q, a]) => chatLine(q, a))))
    const second = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, metadata: { team: 'sales' } })
    const third = await client.fineTuning.jobs.create({ model: 'mock-2', training_file: file.id })
    const firstPage = await client.fineTuning.jobs.list({ limit: 2 })
    expect(firstPage.data.map((j) => j.id)).toEqual([third.id, second.id])
    expect(firstPage.hasNextPage()).toBe(true)
    const next = await firstPage.getNextPage()
    expect(next.data.map((j) => j.id)).toEqual([job.id])
    const ids: string[] = []
    for await (const j of client.fineTuning.jobs.list({ limit: 1 })) ids.push(j.id)
    expect(ids).toEqual([third.id, second.id, job.id])
    expect((await client.fineTuning.jobs.list({ metadata: { team: 'sales' } })).data.map((j) => j.id)).toEqual([second.id])
    await waitForJob(client, second.id, ['succeeded'])
    await waitForJob(client, third.id, ['succeeded'])
  })

  it('deletes the ft: model: the adapter is gone, base models cannot be deleted', async () => {
    const file = await upload(client, jsonl(SUPPORT.slice(0, 2).map(([q, a]) => chatLine(q, a))))
    const temp = await waitForJob(client, (await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, suffix: 'temp' })).id, ['succeeded'])
    const id = temp.fine_tuned_model!
    expect(await client.models.delete(id)).toEqual({ id, object: 'model', deleted: true })
    const err = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect((await client.models.list()).data.map((m) => m.id)).not.toContain(id)
    expect(await client.models.delete(id).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
    const base = await client.models.delete('mock-1').catch((e) => e)
    expect(base).toBeInstanceOf(OpenAI.PermissionDeniedError)
    expect(base.error.code).toBe('model_not_deletable')
    // The job keeps naming the model it made, as OpenAI's does.
    expect((await client.fineTuning.jobs.retrieve(temp.id)).fine_tuned_model).toBe(id)
  })
})
