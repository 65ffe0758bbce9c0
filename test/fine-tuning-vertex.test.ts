import type { ServerResponse } from 'node:http'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testServiceAccount, verifyTokenRequest, writeJson } from './fakes/google.js'
import * as gx from './fixtures/vertex/gemini.js'
import * as fx from './fixtures/vertex/tuning.js'
import { chatLine, jsonl, SUPPORT, SYSTEM, upload } from './helpers/fine-tuning.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { startUpstream, type FakeUpstream, type RecordedRequest } from './helpers/upstream.js'

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform'
const BUCKET = 'tuning-bucket'
const CREATE_PATH = '/v1/projects/test-project/locations/us-central1/tuningJobs'

/** A support example that calls a tool, then answers; a trailing turn with weight 0 teaches nothing. */
const toolLine = JSON.stringify({
  messages: [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'Is my order 42 shipped?' },
    { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'order_status', arguments: '{"order":42}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'shipped' },
    { role: 'assistant', content: 'Order 42 has shipped. Have a nice day!' },
    { role: 'user', content: 'Thanks' },
    { role: 'assistant', content: 'Bye', weight: 0 },
  ],
  tools: [{ type: 'function', function: { name: 'order_status', description: 'Looks up an order', parameters: { type: 'object', properties: { order: { type: 'integer' } }, required: ['order'], additionalProperties: false } } }],
})

/** The same examples in Vertex AI's Gemini tuning format, written out by hand. */
const geminiLine = (q: string, a: string) => ({ systemInstruction: { role: 'system', parts: [{ text: SYSTEM }] }, contents: [{ role: 'user', parts: [{ text: q }] }, { role: 'model', parts: [{ text: a }] }] })
const geminiToolLine = {
  systemInstruction: { role: 'system', parts: [{ text: SYSTEM }] },
  contents: [
    { role: 'user', parts: [{ text: 'Is my order 42 shipped?' }] },
    { role: 'model', parts: [{ functionCall: { name: 'order_status', args: { order: 42 } } }] },
    { role: 'user', parts: [{ functionResponse: { name: 'order_status', response: { output: 'shipped' } } }] },
    { role: 'model', parts: [{ text: 'Order 42 has shipped. Have a nice day!' }] },
  ],
  tools: [{ functionDeclarations: [{ name: 'order_status', description: 'Looks up an order', parameters: { type: 'object', properties: { order: { type: 'integer' } }, required: ['order'] } }] }],
}

interface FakeGoogle {
  vertex: FakeUpstream
  gcs: FakeUpstream
  key: ReturnType<typeof testServiceAccount>['key']
  /** Tuning jobs by resource name: the create body and the state the next get reports. */
  jobs: Map<string, { create: Record<string, any>; state: fx.JobState }>
  apiRequests(): RecordedRequest[]
}

/**
 * Google's side: the OAuth token endpoint (JWTs verified against the test
 * key), aiplatform's tuningJobs, model deletion and the tuned endpoint's
 * generateContent, and Cloud Storage's media upload, each demanding a token
 * the fake issued.
 */
async function fakeGoogle(): Promise<FakeGoogle> {
  const issued = new Set<string>()
  const jobs = new Map<string, { create: Record<string, any>; state: fx.JobState }>()
  let sa: ReturnType<typeof testServiceAccount>
  let tokens = 0
  const authorised = (req: RecordedRequest, res: ServerResponse) => {
    const auth = String(req.headers.authorization ?? '')
    if (auth.startsWith('Bearer ') && issued.has(auth.slice(7))) return true
    writeJson(res, 401, gx.errors.UNAUTHENTICATED.body)
    return false
  }
  const vertex = await startUpstream((req, res) => {
    if (req.url === '/token') {
      const problem = verifyTokenRequest(req, sa.publicKey, { iss: sa.key.client_email, aud: sa.key.token_uri, scope: SCOPE, kid: sa.key.private_key_id })
      if (problem) return writeJson(res, 400, { error: 'invalid_grant', error_description: `Invalid JWT: ${problem}` })
      const answer = gx.tokenAnswer(++tokens)
      issued.add(answer.access_token)
      return writeJson(res, 200, answer)
    }
    if (!authorised(req, res)) return
    const path = req.url.split('?')[0]
    if (req.method === 'POST' && path === CREATE_PATH) {
      const create = req.json()
      if (create.baseModel === 'gemini-1.0-pro-001') return writeJson(res, 400, fx.unsupportedBaseModel)
      const name = jobs.size === 0 ? fx.JOB_NAME : `${fx.BASE}/tuningJobs/${BigInt(fx.JOB_ID) + BigInt(jobs.size)}`
      jobs.set(name, { create, state: 'JOB_STATE_PENDING' })
      return writeJson(res, 200, fx.tuningJob('JOB_STATE_PENDING', create, name))
    }
    const job = jobs.get(path.slice('/v1/'.length).replace(/:cancel$/, ''))
    if (job && req.method === 'GET') return writeJson(res, 200, fx.tuningJob(job.state, job.create, path.slice(4)))
    if (job && req.method === 'POST' && path.endsWith(':cancel')) {
      job.state = 'JOB_STATE_CANCELLING'
      return writeJson(res, 200, {})
    }
    if (req.method === 'DELETE' && path === `/v1/${fx.TUNED_MODEL.replace(/@1$/, '')}`) return writeJson(res, 200, fx.deleteOperation)
    if (req.method === 'POST' && path === `/v1/${fx.TUNED_ENDPOINT}:generateContent`) return writeJson(res, 200, gx.generateText)
    writeJson(res, 404, { error: { code: 404, message: `The requested URL ${path} was not found on this server.`, status: 'NOT_FOUND' } })
  })
  sa = testServiceAccount(`${vertex.url}/token`)
  const gcs = await startUpstream((req, res) => {
    if (!authorised(req, res)) return
    const url = new URL(req.url, 'http://gcs')
    const bucket = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)?.[1]
    if (req.method !== 'POST' || !bucket || url.searchParams.get('uploadType') !== 'media' || !url.searchParams.get('name')) return writeJson(res, 404, { error: { code: 404, message: 'Not Found', errors: [{ message: 'Not Found', domain: 'global', reason: 'notFound' }] } })
    if (bucket !== BUCKET) return writeJson(res, 403, fx.storageForbidden)
    writeJson(res, 200, fx.storageObject(decodeURIComponent(bucket), url.searchParams.get('name')!, Buffer.byteLength(req.body)))
  })
  return { vertex, gcs, key: sa.key, jobs, apiRequests: () => vertex.requests.filter((r) => r.url !== '/token') }
}

const provider = (g: FakeGoogle, extra: Record<string, unknown> = {}) => ({
  id: 'gcp',
  type: 'vertex',
  credentials: JSON.stringify(g.key),
  location: 'us-central1',
  baseURL: g.vertex.url,
  storageBaseURL: g.gcs.url,
  tuningBucket: `gs://${BUCKET}/gateway/ft`,
  ...extra,
})

describe('fine-tuning passed through to Vertex AI (supervised tuning of Gemini)', () => {
  let g: FakeGoogle
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    g = await fakeGoogle()
    gw = await startGateway({ server: { apiKeys: ['k'] }, providers: [provider(g)], fineTuning: { passThrough: ['gcp'] } })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0 })
  })
  afterAll(async () => {
    await gw.close()
    await g.vertex.close()
    await g.gcs.close()
  })

  it('stages Gemini-format datasets in Cloud Storage, creates the tuningJob, and follows it to a callable tuned model', async () => {
    const training = await upload(client, jsonl([...SUPPORT.map(([q, a]) => chatLine(q, a)), toolLine]))
    const validation = await upload(client, jsonl([JSON.stringify({ prompt: 'Do you ship abroad?', completion: 'Yes, to 40 countries. Have a nice day!' })]), 'valid.jsonl')
    const job = await client.fineTuning.jobs.create({
      model: 'gcp/gemini-2.0-flash-001',
      training_file: training.id,
      validation_file: validation.id,
      suffix: 'support',
      metadata: { team: 'support' },
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, learning_rate_multiplier: 0.5 } } },
    })

    // Both files went to the bucket as Gemini tuning JSONL, with the service account's token.
    const uploads = g.gcs.requests
    expect(uploads).toHaveLength(2)
    for (const u of uploads) {
      expect(u.headers['content-type']).toBe('application/jsonl')
      expect(String(u.headers.authorization)).toMatch(/^Bearer ya29\.c\.test-token-/)
    }
    const [trainUrl, validUrl] = uploads.map((u) => new URL(u.url, 'http://gcs'))
    expect(trainUrl.pathname).toBe(`/upload/storage/v1/b/${BUCKET}/o`)
    expect(Object.fromEntries(trainUrl.searchParams)).toEqual({ uploadType: 'media', name: `gateway/ft/${training.id}.jsonl` })
    expect(uploads[0].url).toContain(`name=gateway%2Fft%2F${training.id}.jsonl`)
    expect(validUrl.searchParams.get('name')).toBe(`gateway/ft/${validation.id}.jsonl`)
    expect(uploads[0].body.endsWith('\n')).toBe(true)
    expect(uploads[0].body.trim().split('\n').map((l) => JSON.parse(l))).toEqual([...SUPPORT.map(([q, a]) => geminiLine(q, a)), geminiToolLine])
    expect(uploads[1].body.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ contents: [{ role: 'user', parts: [{ text: 'Do you ship abroad?' }] }, { role: 'model', parts: [{ text: 'Yes, to 40 countries. Have a nice day!' }] }] }])

    // The tuningJobs.create body, exactly.
    const create = g.apiRequests().find((r) => r.method === 'POST' && r.url === CREATE_PATH)!
    expect(create.headers['content-type']).toBe('application/json')
    expect(create.json()).toEqual({
      baseModel: 'gemini-2.0-flash-001',
      supervisedTuningSpec: {
        trainingDatasetUri: `gs://${BUCKET}/gateway/ft/${training.id}.jsonl`,
        validationDatasetUri: `gs://${BUCKET}/gateway/ft/${validation.id}.jsonl`,
        hyperParameters: { epochCount: '3', learningRateMultiplier: 0.5 },
      },
      tunedModelDisplayName: 'support',
    })

    // The job in OpenAI's shape: our id and files, the gateway's model names.
    const created_at = Math.floor(Date.parse(fx.CREATE_TIME) / 1000)
    expect(job).toMatchObject({
      object: 'fine_tuning.job',
      status: 'validating_files',
      model: 'gcp/gemini-2.0-flash-001',
      training_file: training.id,
      validation_file: validation.id,
      fine_tuned_model: null,
      finished_at: null,
      created_at,
      hyperparameters: { batch_size: 'auto', learning_rate_multiplier: 0.5, n_epochs: 3 },
      metadata: { team: 'support' },
      user_provided_suffix: 'support',
      error: null,
      method: { type: 'supervised' },
    })
    expect(job.id).toMatch(/^ftjob-/)

    const state = g.jobs.get(fx.JOB_NAME)!
    const statuses: string[] = []
    for (const s of ['JOB_STATE_QUEUED', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED'] as const) {
      state.state = s
      statuses.push((await client.fineTuning.jobs.retrieve(job.id)).status)
    }
    expect(statuses).toEqual(['queued', 'running', 'succeeded'])
    // Later reads use the resource name Vertex gave the job (with the project number).
    expect(g.apiRequests().filter((r) => r.method === 'GET').every((r) => r.url === `/v1/${fx.JOB_NAME}`)).toBe(true)

    const done = await client.fineTuning.jobs.retrieve(job.id)
    expect(done).toMatchObject({
      status: 'succeeded',
      fine_tuned_model: `gcp/${fx.TUNED_ENDPOINT}`,
      finished_at: Math.floor(Date.parse(fx.END_TIME) / 1000),
      trained_tokens: 1234,
      training_file: training.id,
      validation_file: validation.id,
      error: null,
    })
    expect((await client.fineTuning.jobs.list()).data.map((j) => j.id)).toContain(job.id)

    const events: OpenAI.FineTuning.Jobs.FineTuningJobEvent[] = []
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 2 })) events.push(e)
    expect(events.map((e) => e.message)).toEqual([
      'The job has successfully completed',
      `New fine-tuned model created: gcp/${fx.TUNED_ENDPOINT}`,
      'Fine-tuning job started',
      `Created Vertex AI tuning job ${fx.JOB_NAME} for gemini-2.0-flash-001`,
    ])
    expect(events[0]).toMatchObject({ object: 'fine_tuning.job.event', level: 'info', created_at: Math.floor(Date.parse(fx.END_TIME) / 1000), type: 'message' })
    expect(new Set(events.map((e) => e.id)).size).toBe(4)

    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id)
    expect(checkpoints.data).toEqual([
      expect.objectContaining({ object: 'fine_tuning.job.checkpoint', fine_tuning_job_id: job.id, fine_tuned_model_checkpoint: `gcp/${fx.CHECKPOINT_ENDPOINTS[1]}`, step_number: 20, metrics: { step: 20, epoch: 2 } }),
      expect.objectContaining({ fine_tuning_job_id: job.id, fine_tuned_model_checkpoint: `gcp/${fx.CHECKPOINT_ENDPOINTS[0]}`, step_number: 10, metrics: { step: 10, epoch: 1 } }),
    ])

    // The tuned model is the endpoint Vertex deployed it to: a chat naming it reaches that endpoint.
    const chat = await client.chat.completions.create({ model: done.fine_tuned_model!, messages: [{ role: 'user', content: 'hi' }] })
    expect(chat.choices[0].message.content).toBe('Hello, world!')
    const generate = g.apiRequests().find((r) => r.url === `/v1/${fx.TUNED_ENDPOINT}:generateContent`)!
    expect(generate.json().contents).toEqual([{ role: 'user', parts: [{ text: 'hi' }] }])

    // Deleting it deletes the model resource (all versions) at Vertex.
    expect(await client.models.delete(done.fine_tuned_model!)).toEqual({ id: done.fine_tuned_model, object: 'model', deleted: true })
    expect(g.apiRequests().some((r) => r.method === 'DELETE' && r.url === `/v1/${fx.BASE}/models/1234567890123456789`)).toBe(true)
  })

  it('cancels a job: Vertex receives :cancel, the job reads cancelled without an error', async () => {
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const job = await client.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: file.id })
    const name = [...g.jobs.keys()].at(-1)!
    expect(g.jobs.get(name)!.create.supervisedTuningSpec).toEqual({ trainingDatasetUri: `gs://${BUCKET}/gateway/ft/${file.id}.jsonl` })
    expect(g.jobs.get(name)!.create.tunedModelDisplayName).toBeUndefined()
    expect(job.hyperparameters).toEqual({ batch_size: 'auto', learning_rate_multiplier: 1, n_epochs: 5 })
    g.jobs.get(name)!.state = 'JOB_STATE_RUNNING'

    const cancelled = await client.fineTuning.jobs.cancel(job.id)
    expect(cancelled).toMatchObject({ id: job.id, status: 'cancelled', error: null })
    const cancel = g.apiRequests().find((r) => r.method === 'POST' && r.url === `/v1/${name}:cancel`)!
    expect(cancel.json()).toEqual({})
    expect((await client.fineTuning.jobs.listEvents(job.id)).data[0].message).toBe('Cancellation requested; Vertex AI is stopping the job')

    g.jobs.get(name)!.state = 'JOB_STATE_CANCELLED'
    const after = await client.fineTuning.jobs.retrieve(job.id)
    expect(after).toMatchObject({ status: 'cancelled', error: null, finished_at: Math.floor(Date.parse(fx.END_TIME) / 1000), fine_tuned_model: null })
    expect((await client.fineTuning.jobs.listEvents(job.id)).data[0].message).toBe('Fine-tuning job cancelled')
    expect((await client.fineTuning.jobs.checkpoints.list(job.id)).data).toEqual([])
  })

  it('reports a job Vertex failed with its reason, as a failed job and an error event', async () => {
    const file = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const job = await client.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: file.id })
    g.jobs.get([...g.jobs.keys()].at(-1)!)!.state = 'JOB_STATE_FAILED'
    const failed = await client.fineTuning.jobs.retrieve(job.id)
    expect(failed).toMatchObject({ status: 'failed', fine_tuned_model: null, error: { code: 'invalid_argument', message: 'Training dataset example 4 exceeds the maximum input token count of 32768.', param: null } })
    expect((await client.fineTuning.jobs.listEvents(job.id)).data[0]).toMatchObject({ level: 'error', message: 'The job failed: Training dataset example 4 exceeds the maximum input token count of 32768.' })
  })

  it('passes Vertex’s own refusal back as a precise OpenAI error', async () => {
    const before = g.jobs.size
    // A model the gateway serves but Vertex cannot tune.
    const gw2 = await startGateway({ server: { apiKeys: ['k'] }, providers: [provider(g, { models: ['gemini-1.0-pro-001'] })], fineTuning: { passThrough: ['gcp'] } })
    try {
      const c = new OpenAI({ baseURL: gw2.baseURL, apiKey: 'k', maxRetries: 0 })
      const f = await upload(c, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
      const err = await c.fineTuning.jobs.create({ model: 'gcp/gemini-1.0-pro-001', training_file: f.id }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.BadRequestError)
      expect(err.error).toEqual({ message: 'Provider "gcp" (Vertex AI) answered 400 INVALID_ARGUMENT: Base model gemini-1.0-pro-001 is not supported for supervised tuning.', type: 'invalid_request_error', param: null, code: 'INVALID_ARGUMENT' })
      expect((await c.fineTuning.jobs.list()).data).toEqual([])
    } finally {
      await gw2.close()
    }
    expect(g.jobs.size).toBe(before)
  })

  it('refuses what Vertex cannot run with the field at fault, before anything is uploaded', async () => {
    const uploadsBefore = g.gcs.requests.length
    const good = await upload(client, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
    const create = (body: Record<string, unknown>) => client.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: good.id, ...body } as OpenAI.FineTuning.JobCreateParams).catch((e) => e)

    const batch = await create({ hyperparameters: { batch_size: 8 } })
    expect(batch).toBeInstanceOf(OpenAI.BadRequestError)
    expect(batch.error).toMatchObject({ param: 'hyperparameters.batch_size', code: 'unsupported_hyperparameter' })
    const epochs = await create({ hyperparameters: { n_epochs: 2.5 } })
    expect(epochs.error).toMatchObject({ param: 'hyperparameters.n_epochs', message: "hyperparameters.n_epochs must be a positive integer (Vertex AI's epochCount); got 2.5." })
    const dpo = await create({ method: { type: 'dpo' } })
    expect(dpo.error).toMatchObject({ param: 'method.type', code: 'unsupported_method' })

    // A weight-0 assistant turn before the answer cannot be expressed in Gemini's format: its line is named.
    const weighted = JSON.stringify({
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello?', weight: 0 },
        { role: 'user', content: 'Reset my password' },
        { role: 'assistant', content: 'Use the Forgot password link. Have a nice day!' },
      ],
    })
    const bad = await upload(client, jsonl([chatLine('a', 'b'), chatLine('c', 'd'), weighted]))
    const err = await client.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: bad.id }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error).toMatchObject({ param: 'training_file', code: 'invalid_training_file' })
    expect(err.error.message).toBe(
      `training_file ${bad.id} cannot be converted to Vertex AI's tuning format: line 3: messages[1] has weight 0, which Vertex AI's tuning format cannot express (it has no per-message weight and trains on every model turn); remove that message or its weight.`,
    )

    const preference = await upload(client, jsonl([JSON.stringify({ input: { messages: [{ role: 'user', content: 'Hi' }] }, preferred_output: [{ role: 'assistant', content: 'Hello!' }], non_preferred_output: [{ role: 'assistant', content: 'What?' }] })]))
    const pref = await client.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: preference.id }).catch((e) => e)
    expect(pref.error).toMatchObject({ param: 'training_file', code: 'invalid_training_file' })
    expect(pref.error.message).toContain('line 1: Preference (DPO) examples need Vertex AI preference tuning')

    expect(g.gcs.requests.length).toBe(uploadsBefore)
  })

  it('surfaces a Cloud Storage refusal (no access to the bucket) with Google’s reason', async () => {
    const gw2 = await startGateway({ server: { apiKeys: ['k'] }, providers: [provider(g, { tuningBucket: 'gs://someone-elses-bucket' })], fineTuning: { passThrough: ['gcp'] } })
    try {
      const c = new OpenAI({ baseURL: gw2.baseURL, apiKey: 'k', maxRetries: 0 })
      const f = await upload(c, jsonl(SUPPORT.map(([q, a]) => chatLine(q, a))))
      const err = await c.fineTuning.jobs.create({ model: 'gcp/gemini-2.0-flash-001', training_file: f.id }).catch((e) => e)
      expect(err.status).toBe(502)
      expect(err.error).toMatchObject({ code: 'provider_auth_error' })
      expect(err.error.message).toContain('Provider "gcp" (Cloud Storage) answered 403')
      expect(err.error.message).toContain("Permission 'storage.objects.create' denied")
      expect(g.gcs.requests.at(-1)!.url).toBe(`/upload/storage/v1/b/someone-elses-bucket/o?uploadType=media&name=${f.id}.jsonl`)
    } finally {
      await gw2.close()
    }
  })
})

describe('Vertex AI pass-through configuration', () => {
  let g: FakeGoogle
  beforeAll(async () => {
    g = await fakeGoogle()
  })
  afterAll(async () => {
    await g.vertex.close()
    await g.gcs.close()
  })

  it('a vertex provider listed in fineTuning.passThrough without tuningBucket is a config error naming the field', async () => {
    const { tuningBucket: _none, ...withoutBucket } = provider(g)
    const err = await startGateway({ providers: [withoutBucket], fineTuning: { passThrough: ['gcp'] } }).catch((e) => e)
    expect(err.name).toBe('ConfigError')
    expect(err.message).toContain('fineTuning.passThrough: provider "gcp" (vertex) has no "tuningBucket"')
    // Without pass-through the provider needs no bucket.
    const plain = await startGateway({ providers: [withoutBucket] })
    await plain.close()
  })

  it('a tuningBucket that is not a gs:// bucket location is refused, naming the field', async () => {
    const err = await startGateway({ providers: [provider(g, { tuningBucket: 'my-bucket/prefix' })], fineTuning: { passThrough: ['gcp'] } }).catch((e) => e)
    expect(err.message).toContain('providers[0] (gcp): tuningBucket: must be gs://<bucket> or gs://<bucket>/<prefix>')
  })
})
