import Anthropic from '@anthropic-ai/sdk'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resultsCsv, upstreamCheckpoints, upstreamEvents, uploadedFile, upstreamJob, UPSTREAM_FT_MODEL, UPSTREAM_JOB_ID, UPSTREAM_MODEL } from './fixtures/openai/fine-tuning.js'
import { chatLine, jsonl, SUPPORT, SYSTEM, upload } from './helpers/fine-tuning.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { startUpstream, type FakeUpstream } from './helpers/upstream.js'
import { freePort, nodeGatewayLauncher } from './runtimes/spawn.js'

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

  it('fine-tunes an ft: model again: the new adapter runs on top of the first', async () => {
    const file = await upload(client, jsonl([chatLine('What is the SLA?', 'We answer within one business day. Have a nice day!', 'Mention the SLA when relevant.')]))
    const stacked = await waitForJob(client, (await client.fineTuning.jobs.create({ model, training_file: file.id, suffix: 'sla' })).id, ['succeeded', 'failed'])
    expect(stacked.fine_tuned_model).toBe(`${`ft:${model}`}:sla:${stacked.id.slice('ftjob-'.length)}`)
    const text = (await client.chat.completions.create({ model: stacked.fine_tuned_model!, messages: [{ role: 'user', content: 'Hi' }] })).choices[0].message.content!
    // Both reach the base model: the first adapter's prompt, then the one built on it (as a client's system prompt follows an adapter's).
    expect(text.startsWith(`[system: ${SYSTEM}`)).toBe(true)
    expect(text.indexOf('Mention the SLA when relevant.')).toBeGreaterThan(text.indexOf('</example 3>'))
    expect(text).toContain('We answer within one business day.')
    expect(await client.models.delete(stacked.fine_tuned_model!)).toMatchObject({ deleted: true })
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

describe('training files and job requests: precise 400s', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock' }] })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
  })
  afterAll(() => gw.close())

  it('rejects an invalid training file with a line-numbered message for each problem', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
    const lines = [
      chatLine('ok', 'fine'),
      'not json',
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'bot', content: 'hello' }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello', weight: 2 }] }),
      JSON.stringify({ tools, messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'nope', content: '12' }, { role: 'assistant', content: 'ok' }] }),
      JSON.stringify({ messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi' }] }),
      '[1, 2]',
      JSON.stringify({ messages: [{ role: 'user', content: 'hi', mood: 'happy' }, { role: 'assistant', content: 'ok' }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'ok', weight: 1, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'f', arguments: '{bad' } }] }] }),
    ]
    const err = await upload(client, jsonl(lines)).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_jsonl', param: 'file' })
    const message: string = err.error.message
    expect(message).toMatch(/^Invalid training file: line 2: This line is not valid JSON\./)
    expect(message).toContain('line 3: messages[1].role must be one of system, developer, user, assistant, tool; got "bot".')
    expect(message).toContain('line 4: messages[1].weight must be 0 or 1; got 2.')
    expect(message).toContain('line 5: messages[1].tool_calls[0] calls "get_time", which is not one of the example\'s tools (get_weather).')
    expect(message).toContain('line 6: messages[1].tool_call_id "nope" does not match a tool call of an earlier assistant message.')
    expect(message).toContain('line 7: The example has no assistant message to learn from')
    expect(message).toContain('line 8: Each line must be a JSON object.')
    expect(message).toContain("line 9: messages[0] has an unrecognized key 'mood'.")
    expect(message).toContain('line 10: messages[1].tool_calls[0].function.arguments is not valid JSON.')
    expect(message).not.toContain('line 1:')
  })

  it('rejects empty and mixed-format files, and accepts tool calls, weights, prompt/completion and preference files', async () => {
    const empty = await upload(client, '\n\n').catch((e) => e)
    expect(empty.error.message).toBe('Invalid training file: line 1: The file has no examples.')
    const mixed = await upload(client, jsonl([chatLine('a', 'b'), JSON.stringify({ prompt: 'p', completion: 'c' })])).catch((e) => e)
    expect(mixed.error.message).toContain('line 2: This line is in the prompt/completion format but line 1 is in the chat (messages) format; use one format per file.')
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
    const toolExample = JSON.stringify({
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }], weight: 0 },
        { role: 'tool', tool_call_id: 'c1', content: '18°C' },
        { role: 'assistant', content: 'It is 18°C in Paris.' },
      ],
    })
    expect((await upload(client, jsonl([toolExample, chatLine('a', 'b')]))).status).toBe('processed')
    expect((await upload(client, jsonl([JSON.stringify({ prompt: 'Q: 2+2', completion: ' 4' })]))).status).toBe('processed')
    const pref = JSON.stringify({ input: { messages: [{ role: 'user', content: 'Hi' }] }, preferred_output: [{ role: 'assistant', content: 'Hello!' }], non_preferred_output: [{ role: 'assistant', content: 'What?' }] })
    expect((await upload(client, jsonl([pref]))).status).toBe('processed')
    const badPref = await upload(client, jsonl([JSON.stringify({ input: { messages: [{ role: 'user', content: 'Hi' }] }, preferred_output: [{ role: 'user', content: 'x' }], non_preferred_output: [] })])).catch((e) => e)
    expect(badPref.error.message).toContain('line 1: preferred_output[0].role must be "assistant"; got "user".')
    expect(badPref.error.message).toContain("line 1: 'non_preferred_output' must be an array holding one assistant message.")
  })

  it('answers job requests it cannot run with the field at fault', async () => {
    const file = await upload(client, jsonl([chatLine('a', 'b')]))
    const batchFile = await client.files.create({ file: await toFile(Buffer.from(JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-1' } })), 'b.jsonl'), purpose: 'batch' })
    const cases: Array<[Record<string, unknown>, string, string | null]> = [
      [{ model: 'mock-1' }, 'training_file', 'missing_required_parameter'],
      [{ model: 'mock-1', training_file: 'file-doesnotexist1' }, 'training_file', 'invalid_file_id'],
      [{ model: 'mock-1', training_file: batchFile.id }, 'training_file', 'invalid_file_purpose'],
      [{ model: 'mock-1', training_file: file.id, validation_file: batchFile.id }, 'validation_file', 'invalid_file_purpose'],
      [{ model: 'no-such-model', training_file: file.id }, 'model', 'model_not_available'],
      [{ model: 'mock-1', training_file: file.id, suffix: 'has space' }, 'suffix', 'invalid_suffix'],
      [{ model: 'mock-1', training_file: file.id, method: { type: 'reinforcement' } }, 'method.type', 'unsupported_method'],
      [{ model: 'mock-1', training_file: file.id, method: { type: 'magic' } }, 'method.type', 'invalid_value'],
    ]
    for (const [body, param, code] of cases) {
      const err = await client.fineTuning.jobs.create(body as never).catch((e) => e)
      expect(err, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError)
      expect(err.error, JSON.stringify(body)).toMatchObject({ type: 'invalid_request_error', param, code })
    }
    const raw = await fetch(`${gw.baseURL}/fine_tuning/jobs`, { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: '{"model":' })
    expect(raw.status).toBe(400)
    expect((await raw.json()).error.code).toBe('invalid_json')
    for (const call of [() => client.fineTuning.jobs.retrieve('ftjob-nope'), () => client.fineTuning.jobs.cancel('ftjob-nope'), () => client.fineTuning.jobs.listEvents('ftjob-nope'), () => client.fineTuning.jobs.checkpoints.list('ftjob-nope')]) {
      const err = await call().catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.NotFoundError)
      expect(err.error.code).toBe('fine_tuning_job_not_found')
    }
    expect(await client.fineTuning.jobs.list({ limit: 0 }).catch((e) => e)).toBeInstanceOf(OpenAI.BadRequestError)
  })

  it('cancels a running job: no model is published, and a finished job cannot be cancelled', async () => {
    // Each evaluation call streams its words 300 ms apart: the job stays running long enough to cancel.
    const slow = SUPPORT.map(([q, a]) => chatLine(`[[mock:delay=300]] ${q}`, a))
    const file = await upload(client, jsonl(slow))
    const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id })
    await waitForJob(client, job.id, ['running'])
    const cancelled = await client.fineTuning.jobs.cancel(job.id)
    expect(cancelled).toMatchObject({ id: job.id, status: 'cancelled', fine_tuned_model: null })
    await gw.gateway.fineTunes.settled(job.id)
    const after = await client.fineTuning.jobs.retrieve(job.id)
    expect(after.status).toBe('cancelled')
    expect(after.fine_tuned_model).toBeNull()
    expect((await allEvents(client, job.id))[0].message).toBe('Fine-tuning job cancelled')
    expect((await client.models.list()).data.some((m) => m.id.startsWith('ft:'))).toBe(false)
    const again = await client.fineTuning.jobs.cancel(job.id).catch((e) => e)
    expect(again).toBeInstanceOf(OpenAI.BadRequestError)
    expect(again.error.code).toBe('job_not_cancellable')
  })

  it('fails a job whose file went bad after upload, naming the line', async () => {
    // Files are validated on upload; a job still re-validates what it reads (the file may be replaced in storage).
    const file = await upload(client, jsonl([chatLine('a', 'b')]))
    await gw.gateway.storage.mount('files').setItem(`data:${file.id}`, jsonl([chatLine('a', 'b'), '{"messages": []}']))
    const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id })
    const done = await waitForJob(client, job.id, ['failed', 'succeeded'])
    expect(done.status).toBe('failed')
    expect(done.error).toEqual({ code: 'invalid_training_file', param: 'training_file', message: "The job failed due to an invalid training file: line 2: 'messages' must be a non-empty array of messages." })
  })
})

describe('adapter building: scores, retrieval, embeddings, validation files', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock' }] })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
  })
  afterAll(() => gw.close())

  it('measures similarity for real: an echo task scores 1.0 with and without, an unrelated one 0', async () => {
    // The mock answers with the user's text, so "answer = question" is matched word for word.
    const echo = Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `repeat after me number ${i}` }, { role: 'assistant', content: `repeat after me number ${i}` }] }))
    const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: (await upload(client, jsonl(echo))).id })
    const done = await waitForJob(client, job.id, ['succeeded'])
    const [checkpoint] = (await client.fineTuning.jobs.checkpoints.list(job.id)).data
    expect(checkpoint.metrics).toMatchObject({ step: 2, base_similarity: 1, adapter_similarity: 1 })
    expect(done.status).toBe('succeeded')

    const unrelated = Array.from({ length: 5 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `alpha beta ${i}` }, { role: 'assistant', content: 'gamma delta' }] }))
    const job2 = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: (await upload(client, jsonl(unrelated))).id })
    await waitForJob(client, job2.id, ['succeeded'])
    const [c2] = (await client.fineTuning.jobs.checkpoints.list(job2.id)).data
    expect(c2.metrics).toMatchObject({ step: 1, base_similarity: 0, adapter_similarity: 0 })
  })

  it('retrieval mode: each request gets the demonstrations closest to it', async () => {
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const body = { model: 'mock-1', training_file: file.id, suffix: 'rag', adapter: { mode: 'retrieval', retrieve_k: 1, evaluate: false } }
    const job = await client.fineTuning.jobs.create(body as OpenAI.FineTuning.JobCreateParams)
    const done = await waitForJob(client, job.id, ['succeeded'])
    const events = (await allEvents(client, job.id)).map((e) => e.message)
    expect(events).toContain('Retrieval mode: each request gets the 1 of 10 examples closest to its last user message')
    expect(events.some((m) => m.startsWith('Evaluation skipped'))).toBe(true)
    const ask = async (q: string) => (await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: `${q} [[mock:system]]` }] })).choices[0].message.content!
    const password = await ask('I forgot my password, how do I reset it?')
    expect(password).toContain('Forgot password link')
    expect(password).not.toContain('<example 2>')
    const invoice = await ask('where is the invoice download?')
    expect(invoice).toContain('Billing, then History')
    expect(invoice).not.toContain('Forgot password link')
  })

  it('selects and scores with embeddings when an embeddings model is configured, and evaluates on the validation file', async () => {
    const emb = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock' }], fineTuning: { embeddingModel: 'mock/mock-1', maxDemonstrations: 4 } })
    try {
      const c = new OpenAI({ baseURL: emb.baseURL, apiKey: 'k', maxRetries: 0 })
      const training = await upload(c, jsonl(SUPPORT.slice(0, 7).map(([q, a]) => chatLine(q, a))))
      const validation = await upload(c, jsonl(SUPPORT.slice(7).map(([q, a]) => chatLine(q, a))), 'valid.jsonl')
      const job = await c.fineTuning.jobs.create({ model: 'mock-1', training_file: training.id, validation_file: validation.id })
      expect(job.validation_file).toBe(validation.id)
      const done = await waitForJob(c, job.id, ['succeeded', 'failed'])
      expect(done.error).toBeNull()
      const events = await allEvents(c, job.id)
      const messages = events.map((e) => e.message)
      expect(messages).toContain('Learning from 7 training examples; evaluating on 3 validation examples')
      expect(messages).toContain('Embedded 7 examples with mock/mock-1')
      expect(messages.some((m) => m.startsWith('Selected 4 of 7 examples as demonstrations (embedding similarity'))).toBe(true)
      const summary = events.find((e) => e.message.startsWith('Evaluation on 3 examples (embedding cosine'))!
      expect(summary.data).toMatchObject({ examples: 3, metric: 'embedding_cosine' })
      const data = summary.data as { base_similarity: number; adapter_similarity: number }
      expect(data.base_similarity).toBeGreaterThan(0)
      expect(data.base_similarity).toBeLessThanOrEqual(1)
    } finally {
      await emb.close()
    }
  })
})

describe('legacy /v1/fine-tunes routes, mapped onto the same jobs', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock', echoSystem: true }] })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
  })
  afterAll(() => gw.close())
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${gw.baseURL}${path}`, { method, headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })

  it('creates, lists and retrieves fine-tune objects with their events; the job is also a fine_tuning.job', async () => {
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => JSON.stringify({ prompt: `${q}\n\n###\n\n`, completion: ` ${a}` }))))
    const res = await call('POST', '/fine-tunes', { training_file: file.id, model: 'mock-1', n_epochs: 2, suffix: 'legacy' })
    expect(res.status).toBe(200)
    const ft = await res.json()
    expect(ft).toMatchObject({ object: 'fine-tune', id: expect.stringMatching(/^ftjob-/), model: 'mock-1', status: 'pending', fine_tuned_model: null, hyperparams: { n_epochs: 2, batch_size: null } })
    expect(ft.training_files).toEqual([expect.objectContaining({ id: file.id, object: 'file', purpose: 'fine-tune' })])
    expect(ft.events[0]).toMatchObject({ object: 'fine-tune-event', level: 'info', message: `Validating training file: ${file.id}` })

    const job = await waitForJob(client, ft.id, ['succeeded'])
    const got = await (await call('GET', `/fine-tunes/${ft.id}`)).json()
    expect(got).toMatchObject({ object: 'fine-tune', status: 'succeeded', fine_tuned_model: job.fine_tuned_model })
    expect(got.result_files[0]).toMatchObject({ object: 'file', purpose: 'fine-tune-results' })
    expect(got.events.map((e: { message: string }) => e.message)).toContain('Hyperparameters n_epochs=2 have no effect on an in-context adapter: no weights are trained.')
    expect(got.events[got.events.length - 1].message).toBe('The job has successfully completed')
    const list = await (await call('GET', '/fine-tunes')).json()
    expect(list.object).toBe('list')
    expect(list.data.map((j: { id: string }) => j.id)).toContain(ft.id)
    const events = await (await call('GET', `/fine-tunes/${ft.id}/events`)).json()
    expect(events.data[0]).toMatchObject({ object: 'fine-tune-event', message: `Validating training file: ${file.id}` })

    // A legacy prompt/completion model is used through /v1/completions.
    const completion = await client.completions.create({ model: job.fine_tuned_model!, prompt: 'How do I log in?\n\n###\n\n' })
    expect(completion.choices[0].text).toContain('Have a nice day!')
    const cancelled = await call('POST', `/fine-tunes/${ft.id}/cancel`)
    expect(cancelled.status).toBe(400)
    expect((await cancelled.json()).error.code).toBe('job_not_cancellable')
  })

  it('answers bad legacy requests in OpenAI’s error shape', async () => {
    const missing = await call('POST', '/fine-tunes', { training_file: 'file-x' })
    expect(missing.status).toBe(400)
    expect((await missing.json()).error).toMatchObject({ type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' })
    const unknown = await call('GET', '/fine-tunes/ftjob-nope')
    expect(unknown.status).toBe(404)
    expect((await unknown.json()).error.code).toBe('fine_tuning_job_not_found')
  })
})

describe('pass-through to a provider that really fine-tunes', () => {
  let upstream: FakeUpstream
  let gw: RunningGateway
  let client: OpenAI
  const uploads: Array<{ body: string; contentType: string }> = []
  let status: 'running' | 'succeeded' = 'running'
  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const json = (code: number, body: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      const path = req.url.split('?')[0]
      if (req.method === 'POST' && path === '/v1/files') {
        uploads.push({ body: req.body, contentType: String(req.headers['content-type']) })
        const filename = /filename="([^"]+)"/.exec(req.body)?.[1] ?? 'upload'
        return json(200, uploadedFile(`file-up${uploads.length}`, filename, Buffer.byteLength(req.body)))
      }
      if (req.method === 'POST' && path === '/v1/fine_tuning/jobs') {
        const body = req.json()
        const examples = uploads.find((_, i) => `file-up${i + 1}` === body.training_file)?.body.match(/"messages"/g)?.length ?? 0
        if (examples < 10) return json(400, { error: { message: `Training file has ${examples} example(s), but must have at least 10 examples`, type: 'invalid_request_error', param: 'training_file', code: 'invalid_n_examples' } })
        return json(200, upstreamJob('validating_files', body.training_file, body.validation_file ?? null))
      }
      if (req.method === 'GET' && path === `/v1/fine_tuning/jobs/${UPSTREAM_JOB_ID}`) return json(200, upstreamJob(status, 'file-up1'))
      if (req.method === 'GET' && path === `/v1/fine_tuning/jobs/${UPSTREAM_JOB_ID}/events`) return json(200, upstreamEvents)
      if (req.method === 'GET' && path === `/v1/fine_tuning/jobs/${UPSTREAM_JOB_ID}/checkpoints`) return json(200, upstreamCheckpoints)
      if (req.method === 'POST' && path === `/v1/fine_tuning/jobs/${UPSTREAM_JOB_ID}/cancel`) return json(200, upstreamJob('cancelled', 'file-up1'))
      if (req.method === 'GET' && path === '/v1/files/file-results1/content') return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(resultsCsv)
      if (req.method === 'DELETE' && path === `/v1/models/${encodeURIComponent(UPSTREAM_FT_MODEL)}`) return json(200, { id: UPSTREAM_FT_MODEL, object: 'model', deleted: true })
      if (req.method === 'POST' && path === '/v1/chat/completions') {
        const body = req.json()
        return json(200, { id: 'chatcmpl-1', object: 'chat.completion', created: 1721764800, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'Tuned answer.', refusal: null }, logprobs: null, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } })
      }
      json(404, { error: { message: `Unknown route ${req.method} ${path}`, type: 'invalid_request_error', param: null, code: null } })
    })
    gw = await startGateway({
      server: { apiKeys: ['k'] },
      providers: [
        { id: 'mock', type: 'mock' },
        { id: 'oai', type: 'openai-compatible', baseURL: `${upstream.url}/v1`, apiKey: 'sk-upstream', models: [UPSTREAM_MODEL] },
      ],
      fineTuning: { passThrough: ['oai'] },
    })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
  })
  afterAll(async () => {
    await gw.close()
    await upstream.close()
  })

  it('uploads the files and creates the job upstream; ids, files and model names are the gateway’s', async () => {
    const lines = SUPPORT.map(([q, a]) => chatLine(q, a))
    const file = await upload(client, jsonl(lines))
    const job = await client.fineTuning.jobs.create({ model: `oai/${UPSTREAM_MODEL}`, training_file: file.id, suffix: 'custom-suffix', method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 4 } } } })
    expect(job).toMatchObject({ object: 'fine_tuning.job', status: 'validating_files', model: `oai/${UPSTREAM_MODEL}`, training_file: file.id, fine_tuned_model: null, organization_id: 'org-123' })
    expect(job.id).toMatch(/^ftjob-/)
    expect(job.id).not.toBe(UPSTREAM_JOB_ID)
    // The training file went upstream as OpenAI's multipart upload, with the provider's key.
    const upload1 = upstream.requests.find((r) => r.url === '/v1/files')!
    expect(upload1.headers.authorization).toBe('Bearer sk-upstream')
    expect(uploads[0].contentType).toMatch(/^multipart\/form-data; boundary=/)
    expect(uploads[0].body).toContain('name="purpose"\r\n\r\nfine-tune')
    expect(uploads[0].body).toContain(lines[3])
    const created = upstream.requests.find((r) => r.url === '/v1/fine_tuning/jobs')!.json()
    expect(created).toEqual({ model: UPSTREAM_MODEL, training_file: 'file-up1', suffix: 'custom-suffix', method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 4 } } } })

    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('running')
    status = 'succeeded'
    const done = await client.fineTuning.jobs.retrieve(job.id)
    expect(done).toMatchObject({ id: job.id, status: 'succeeded', fine_tuned_model: `oai/${UPSTREAM_FT_MODEL}`, trained_tokens: 5768, training_file: file.id })
    // The provider's result file is copied into the gateway's Files API, once.
    expect(done.result_files).toHaveLength(1)
    expect(await (await client.files.content(done.result_files[0])).text()).toBe(resultsCsv)
    expect((await client.fineTuning.jobs.retrieve(job.id)).result_files).toEqual(done.result_files)
    expect(upstream.requests.filter((r) => r.url === '/v1/files/file-results1/content')).toHaveLength(1)

    const events = await client.fineTuning.jobs.listEvents(job.id)
    expect(events.data.map((e) => e.message)).toEqual(upstreamEvents.data.map((e) => e.message))
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id)
    expect(checkpoints.data[0]).toMatchObject({ fine_tuning_job_id: job.id, fine_tuned_model_checkpoint: `oai/${UPSTREAM_FT_MODEL}:ckpt-step-2000`, step_number: 2000, metrics: { full_valid_loss: 0.134 } })
    expect((await client.fineTuning.jobs.list()).data.map((j) => j.id)).toContain(job.id)

    // The fine-tuned model is the provider's: requests go straight to it.
    const chat = await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: 'hi' }] })
    expect(chat.choices[0].message.content).toBe('Tuned answer.')
    expect(upstream.requests.filter((r) => r.url === '/v1/chat/completions').at(-1)!.json().model).toBe(UPSTREAM_FT_MODEL)

    expect(await client.models.delete(done.fine_tuned_model!)).toEqual({ id: done.fine_tuned_model, object: 'model', deleted: true })
    expect(upstream.requests.some((r) => r.method === 'DELETE')).toBe(true)
    expect((await client.fineTuning.jobs.cancel(job.id)).status).toBe('cancelled')
    expect(upstream.requests.some((r) => r.method === 'POST' && r.url === `/v1/fine_tuning/jobs/${UPSTREAM_JOB_ID}/cancel`)).toBe(true)
  })

  it('passes the provider’s own refusal back to the client', async () => {
    const file = await upload(client, jsonl([chatLine('a', 'b')]))
    const err = await client.fineTuning.jobs.create({ model: `oai/${UPSTREAM_MODEL}`, training_file: file.id }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error.message).toBe('Provider "oai" answered 400: Training file has 1 example(s), but must have at least 10 examples')
  })

  it('builds an in-context adapter instead when the job asks for one (method.type "adapter")', async () => {
    const before = upstream.requests.filter((r) => r.url.startsWith('/v1/fine_tuning')).length
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const body = { model: `oai/${UPSTREAM_MODEL}`, training_file: file.id, method: { type: 'adapter' }, adapter: { evaluate: false } }
    const job = await client.fineTuning.jobs.create(body as unknown as OpenAI.FineTuning.JobCreateParams)
    const done = await waitForJob(client, job.id, ['succeeded', 'failed'])
    expect(done.fine_tuned_model).toBe(`ft:oai/${UPSTREAM_MODEL}::${job.id.slice('ftjob-'.length)}`)
    expect(upstream.requests.filter((r) => r.url.startsWith('/v1/fine_tuning')).length).toBe(before)
    const chat = await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: 'hi' }] })
    expect(chat.choices[0].message.content).toBe('Tuned answer.')
    const sent = upstream.requests.filter((r) => r.url === '/v1/chat/completions').at(-1)!.json()
    expect(sent.model).toBe(UPSTREAM_MODEL)
    expect(sent.messages[0].role).toBe('system')
    expect(JSON.stringify(sent.messages[0].content)).toContain('Have a nice day!')
  })

  it('reaches Azure OpenAI’s fine-tuning data plane (api-version, api-key)', async () => {
    const azure = await startUpstream((req, res) => {
      const json = (body: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (req.method === 'POST' && req.url === '/openai/files?api-version=2024-10-21') return json(uploadedFile('file-az1', 'train.jsonl', req.body.length))
      if (req.method === 'POST' && req.url === '/openai/fine_tuning/jobs?api-version=2024-10-21') return json(upstreamJob('validating_files', req.json().training_file))
      if (req.method === 'GET' && req.url === `/openai/fine_tuning/jobs/${UPSTREAM_JOB_ID}/events?api-version=2024-10-21&limit=20`) return json(upstreamEvents)
      void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: '404', message: `Resource not found: ${req.url}` } }))
    })
    const az = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'az', type: 'azure-openai', endpoint: azure.url, apiKey: 'az-key', models: [UPSTREAM_MODEL] }], fineTuning: { passThrough: ['az'] } })
    try {
      const c = new OpenAI({ baseURL: az.baseURL, apiKey: 'k', maxRetries: 0 })
      const file = await upload(c, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
      const job = await c.fineTuning.jobs.create({ model: `az/${UPSTREAM_MODEL}`, training_file: file.id })
      expect(job).toMatchObject({ status: 'validating_files', model: `az/${UPSTREAM_MODEL}`, training_file: file.id })
      expect(azure.requests.map((r) => r.headers['api-key'])).toEqual(['az-key', 'az-key'])
      expect(azure.requests[1].json()).toMatchObject({ model: UPSTREAM_MODEL, training_file: 'file-az1' })
      expect((await c.fineTuning.jobs.listEvents(job.id)).data).toHaveLength(2)
    } finally {
      await az.close()
      await azure.close()
    }
  })

  it('refuses at start-up to pass jobs to a provider that cannot fine-tune', async () => {
    const err = await startGateway({ providers: [{ id: 'mock', type: 'mock' }], fineTuning: { passThrough: ['mock'] } }).catch((e) => e)
    expect(String(err.message)).toContain('fineTuning.passThrough: provider "mock" is of type mock, which has no fine-tuning API')
    const unknown = await startGateway({ providers: [{ id: 'mock', type: 'mock' }], fineTuning: { passThrough: ['nope'] } }).catch((e) => e)
    expect(String(unknown.message)).toContain('fineTuning.passThrough: no provider has the id "nope"')
    const bad = await startGateway({ providers: [{ id: 'mock', type: 'mock' }], fineTuning: { mode: 'weights', maxDemonstrations: -1 } }).catch((e) => e)
    expect(String(bad.message)).toContain('fineTuning.mode: Invalid option')
    expect(String(bad.message)).toContain('fineTuning.maxDemonstrations')
  })
})

describe('fine-tuning jobs survive a gateway restart', () => {
  let child: ChildProcess | undefined
  afterAll(() => {
    child?.kill('SIGKILL')
  })

  it('a job killed mid-evaluation resumes where it stopped, and its ft: model works after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-ft-'))
    const configFile = join(dir, 'gateway.config.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { apiKeys: ['k'] },
        providers: [{ id: 'mock', type: 'mock' }],
        storage: { files: { driver: 'fs', base: join(dir, 'files') }, jobs: { driver: 'fs', base: join(dir, 'jobs') } },
        // The killed process keeps its lease: the restarted one takes the job over once it expires.
        fineTuning: { maxEvalExamples: 6, heldOutFraction: 0.5, concurrency: 1, leaseSec: 2 },
      }),
    )
    const port = await freePort()
    const launcher = nodeGatewayLauncher(configFile, port)
    const start = () => launcher.start()
    child = await start()
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'k', maxRetries: 0 })
    // Each evaluation call streams about ten words 40 ms apart: six steps take a few seconds.
    const slow = SUPPORT.map(([q, a]) => chatLine(`[[mock:delay=40]] ${q}`, a))
    const file = await upload(client, jsonl(slow))
    const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, suffix: 'restart' })
    let before: string[] = []
    for (let i = 0; i < 400 && !before.some((m) => m.startsWith('Step ')); i++) {
      before = (await allEvents(client, job.id)).map((e) => e.message)
      await new Promise((r) => setTimeout(r, 25))
    }
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('running')
    const stepsBefore = before.filter((m) => m.startsWith('Step ')).map((m) => m.split(':')[0])
    expect(stepsBefore.length).toBeGreaterThan(0)
    expect(stepsBefore.length).toBeLessThan(5)
    child.kill('SIGKILL')
    await new Promise((r) => child!.once('exit', r))

    child = await start()
    const done = await waitForJob(client, job.id, ['succeeded', 'failed'], 30_000).catch((e) => {
      throw new Error(`${e.message}\n${launcher.logs}`)
    })
    expect(done.status).toBe('succeeded')
    const after = (await allEvents(client, job.id)).map((e) => e.message)
    expect(after).toContain('Resuming after a gateway restart')
    const steps = after.filter((m) => m.startsWith('Step ')).map((m) => m.split(':')[0])
    // Every step ran; those finished before the crash were not run again.
    expect(new Set(steps)).toEqual(new Set(['Step 1/5', 'Step 2/5', 'Step 3/5', 'Step 4/5', 'Step 5/5']))
    for (const s of stepsBefore) expect(steps.filter((x) => x === s)).toHaveLength(1)
    expect(after[0]).toBe('The job has successfully completed')

    // A fresh process loads the adapter from storage.
    child.kill('SIGKILL')
    await new Promise((r) => child!.once('exit', r))
    child = await start()
    const chat = await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: 'Hello [[mock:system]]' }] })
    expect(chat.choices[0].message.content).toContain("Always end with 'Have a nice day!'")
    expect(chat.choices[0].message.content).toContain('<example 1>')
    child.kill('SIGTERM')
  }, 90_000)
})

describe('two gateways sharing the jobs mount: the job lease', () => {
  let child: ChildProcess | undefined
  let second: RunningGateway | undefined
  afterAll(async () => {
    child?.kill('SIGKILL')
    await second?.close()
  })

  it('a job leased by a live gateway is not taken by the other; once the lease expires it is, and the job completes exactly once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-ft-lease-'))
    const config = {
      server: { apiKeys: ['k'] },
      providers: [{ id: 'mock', type: 'mock' }],
      storage: { files: { driver: 'fs', base: join(dir, 'files') }, jobs: { driver: 'fs', base: join(dir, 'jobs') } },
      fineTuning: { maxEvalExamples: 6, heldOutFraction: 0.5, concurrency: 1, leaseSec: 2 },
    }
    const configFile = join(dir, 'gateway.config.json')
    writeFileSync(configFile, JSON.stringify(config))
    const port = await freePort()
    const launcher = nodeGatewayLauncher(configFile, port)
    child = await launcher.start()
    const first = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'k', maxRetries: 0 })
    // Each evaluation call streams its few words 300 ms apart: the five steps take about twenty seconds.
    const file = await upload(first, jsonl(SUPPORT.map(([q, a]) => chatLine(`[[mock:delay=300]] ${q}`, a))))
    const job = await first.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id, suffix: 'lease' })
    let before: string[] = []
    for (let i = 0; i < 400 && !before.some((m) => m.startsWith('Step ')); i++) {
      before = (await allEvents(first, job.id)).map((e) => e.message)
      await new Promise((r) => setTimeout(r, 25))
    }
    expect(before.some((m) => m.startsWith('Step '))).toBe(true)

    // A second gateway on the same storage (it resumes on start and sweeps every leaseSec): the lease keeps it off.
    second = await startGateway(config)
    const runner = second.gateway.fineTunes
    const client = new OpenAI({ baseURL: second.baseURL, apiKey: 'k', maxRetries: 0 })
    await new Promise((r) => setTimeout(r, 3_000)) // longer than the lease: the first gateway renews it
    expect(await runner.resume()).toBe(0)
    const held = await client.fineTuning.jobs.retrieve(job.id)
    expect(held.status).toBe('running')
    expect((await allEvents(client, job.id)).map((e) => e.message)).not.toContain('Resuming after a gateway restart')

    // The first gateway dies holding the lease: nobody may take the job until it expires, then the second does.
    const stepsBefore = (await allEvents(client, job.id)).map((e) => e.message).filter((m) => m.startsWith('Step '))
    child.kill('SIGKILL')
    await new Promise((r) => child!.once('exit', r))
    expect(await runner.resume()).toBe(0)
    const done = await waitForJob(client, job.id, ['succeeded', 'failed'], 40_000)
    expect(done.status).toBe('succeeded')
    const after = (await allEvents(client, job.id)).map((e) => e.message)
    expect(after.filter((m) => m === 'Resuming after a gateway restart')).toHaveLength(1)
    expect(after.filter((m) => m === 'The job has successfully completed')).toHaveLength(1)
    expect(after.filter((m) => m.startsWith('New fine-tuned model created'))).toHaveLength(1)
    const steps = after.filter((m) => m.startsWith('Step ')).map((m) => m.split(':')[0])
    expect(new Set(steps)).toEqual(new Set(['Step 1/5', 'Step 2/5', 'Step 3/5', 'Step 4/5', 'Step 5/5']))
    // Steps the first gateway finished were not run again; every step ran once.
    expect(steps).toHaveLength(5)
    for (const s of stepsBefore) expect(after.filter((m) => m === s)).toHaveLength(1)
    expect(await runner.resume()).toBe(0)
  }, 90_000)

  it('a runner that finds its lease taken over stops writing; the job is taken up again once that lease expires', async () => {
    const gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [{ id: 'mock', type: 'mock' }], fineTuning: { maxEvalExamples: 6, heldOutFraction: 0.5, concurrency: 1, leaseSec: 1 } })
    try {
      const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
      const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(`[[mock:delay=150]] ${q}`, a))))
      const job = await client.fineTuning.jobs.create({ model: 'mock-1', training_file: file.id })
      let events: string[] = []
      for (let i = 0; i < 400 && !events.some((m) => m.startsWith('Step ')); i++) {
        events = (await allEvents(client, job.id)).map((e) => e.message)
        await new Promise((r) => setTimeout(r, 25))
      }
      // Another runner's live lease lands in the record (as when this one stalled past its lease).
      const jobs = gw.gateway.storage.mount('jobs')
      const record = (await jobs.getItem<Record<string, unknown>>(`ftjobs:${job.id}`))!
      await jobs.setItem(`ftjobs:${job.id}`, { ...record, lease: { holder: 'ftrunner-other', until: Date.now() + 60_000 } })
      await gw.gateway.fineTunes.settled(job.id)
      const stopped = (await allEvents(client, job.id)).map((e) => e.message)
      await new Promise((r) => setTimeout(r, 1_500))
      expect((await allEvents(client, job.id)).map((e) => e.message)).toEqual(stopped)
      expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('running')
      expect(await gw.gateway.fineTunes.resume()).toBe(0)
      expect(((await jobs.getItem<{ lease: { holder: string } }>(`ftjobs:${job.id}`))!).lease.holder).toBe('ftrunner-other')

      // That runner vanishes: its lease expires and the job is taken up again and finishes.
      await jobs.setItem(`ftjobs:${job.id}`, { ...(await jobs.getItem<Record<string, unknown>>(`ftjobs:${job.id}`))!, lease: { holder: 'ftrunner-other', until: Date.now() - 1 } })
      const done = await waitForJob(client, job.id, ['succeeded', 'failed'], 30_000)
      expect(done.status).toBe('succeeded')
      const after = (await allEvents(client, job.id)).map((e) => e.message)
      expect(after.filter((m) => m === 'Resuming after a gateway restart')).toHaveLength(1)
      expect(after.filter((m) => m === 'The job has successfully completed')).toHaveLength(1)
    } finally {
      await gw.close()
    }
  }, 60_000)
})
