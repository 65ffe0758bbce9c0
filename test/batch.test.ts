import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeSse } from '../src/streaming/decode.js'
import { completionText } from './fixtures/openai/chat.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { sleep, startUpstream } from './helpers/upstream.js'
import { freePort, nodeGatewayLauncher } from './runtimes/spawn.js'

const line = (id: string, text: string, url = '/v1/chat/completions') => JSON.stringify({ custom_id: id, method: 'POST', url, body: { model: 'mock-1', messages: [{ role: 'user', content: text }] } })

async function waitFor(client: OpenAI, id: string, statuses: string[], timeoutMs = 20_000): Promise<OpenAI.Batch> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const b = await client.batches.retrieve(id)
    if (statuses.includes(b.status)) return b
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function parseJsonl(text: string): any[] {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

describe('OpenAI Files + Batches APIs with the official client', () => {
  let gw: RunningGateway
  let client: OpenAI
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k-a', 'k-b'] } })
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k-a', maxRetries: 0 })
  })
  afterAll(() => gw.close())

  it('uploads a JSONL file, runs the batch, and returns OpenAI-format results', async () => {
    const jsonl = [line('a', 'first'), line('b', 'second'), line('c', 'third [[mock:error=invalid_request]]')].join('\n')
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'input.jsonl'), purpose: 'batch' })
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'input.jsonl', bytes: Buffer.byteLength(jsonl), status: 'processed' })
    expect((await client.files.retrieve(file.id)).id).toBe(file.id)
    expect(await (await client.files.content(file.id)).text()).toBe(jsonl)

    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'one' } })
    expect(batch).toMatchObject({ object: 'batch', status: 'validating', endpoint: '/v1/chat/completions', input_file_id: file.id, metadata: { run: 'one' } })
    const done = await waitFor(client, batch.id, ['completed', 'failed'])
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 })
    expect(done.in_progress_at).toBeTypeOf('number')
    expect(done.completed_at).toBeTypeOf('number')

    const out = parseJsonl(await (await client.files.content(done.output_file_id!)).text())
    expect(out.map((r) => r.custom_id).sort()).toEqual(['a', 'b'])
    const a = out.find((r) => r.custom_id === 'a')
    expect(a).toMatchObject({ id: expect.stringMatching(/^batch_req_/), error: null, response: { status_code: 200, body: { object: 'chat.completion', choices: [{ message: { content: 'first' } }] } } })
    expect(a.response.request_id).toMatch(/^req_/)
    const errs = parseJsonl(await (await client.files.content(done.error_file_id!)).text())
    expect(errs).toHaveLength(1)
    expect(errs[0]).toMatchObject({ custom_id: 'c', response: { status_code: 400, body: { error: { type: 'invalid_request_error' } } } })

    const list = await client.batches.list({ limit: 10 })
    expect(list.data.map((b) => b.id)).toContain(batch.id)
  })

  it('keeps each key’s files and batches private', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(line('x', 'mine')), 'private.jsonl'), purpose: 'batch' })
    const other = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k-b', maxRetries: 0 })
    expect(await other.files.retrieve(file.id).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
    expect((await other.files.list()).data.map((f) => f.id)).not.toContain(file.id)
    const err = await other.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
  })

  it('rejects malformed JSONL with line numbers', async () => {
    const bad = ['{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"mock-1"}}', 'not json', '{"custom_id":"1","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}'].join('\n')
    const err = await client.files.create({ file: await toFile(Buffer.from(bad), 'bad.jsonl'), purpose: 'batch' }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error.code).toBe('invalid_jsonl')
    expect(err.error.message).toContain('line 2: This line is not valid JSON')
    expect(err.error.message).toContain('line 3: custom_id "1" is also used on line 1')
    expect(err.error.message).toContain('line 3: Field \'method\' must be "POST"')
  })

  it('rejects a line with an endpoint that cannot be batched', async () => {
    const err = await client.files.create({ file: await toFile(Buffer.from(line('x', 'y', '/v1/images/generations')), 'x.jsonl'), purpose: 'batch' }).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.error.message).toContain("line 1: Field 'url' must be one of")
  })

  it('deletes files and paginates the list', async () => {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await client.files.create({ file: await toFile(Buffer.from(line(`p${i}`, 'x')), `p${i}.jsonl`), purpose: 'batch' })).id)
    const first = await client.files.list({ limit: 2 })
    expect(first.data).toHaveLength(2)
    expect(first.has_more).toBe(true)
    const all: string[] = []
    for await (const f of client.files.list({ limit: 2 })) all.push(f.id)
    expect(new Set(all).size).toBe(all.length)
    expect(all).toEqual(expect.arrayContaining(ids))
    expect(await client.files.delete(ids[0])).toMatchObject({ id: ids[0], deleted: true })
    expect(await client.files.retrieve(ids[0]).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
  })

  it('cancels a running batch: finished items keep their results, the rest never run', async () => {
    const jsonl = Array.from({ length: 40 }, (_, i) => line(`s${i}`, `slow ${i} [[mock:delay=40]] a b c`)).join('\n')
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'slow.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    for (let i = 0; i < 200; i++) {
      const b = await client.batches.retrieve(batch.id)
      if (b.request_counts && b.request_counts.completed >= 2) break
      await new Promise((r) => setTimeout(r, 25))
    }
    const cancelling = await client.batches.cancel(batch.id)
    expect(['cancelling', 'cancelled']).toContain(cancelling.status)
    const done = await waitFor(client, batch.id, ['cancelled'])
    expect(done.cancelled_at).toBeTypeOf('number')
    const out = parseJsonl(await (await client.files.content(done.output_file_id!)).text())
    expect(out.length).toBeGreaterThanOrEqual(2)
    expect(out.length).toBeLessThan(40)
    expect(await client.batches.cancel(batch.id).catch((e) => e)).toMatchObject({ status: 409 })
  })
})

describe('batches survive a gateway restart', () => {
  let child: ChildProcess | undefined
  afterAll(() => child?.kill('SIGKILL'))

  it('after a crash mid-batch, every line gets exactly one result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-batch-'))
    const configFile = join(dir, 'gateway.config.json')
    writeFileSync(configFile, JSON.stringify({ server: { apiKeys: ['k'] }, storage: { files: { driver: 'fs', base: join(dir, 'files') }, jobs: { driver: 'fs', base: join(dir, 'jobs') } }, batch: { concurrency: 2, leaseSec: 2 } }))
    const port = await freePort()
    const launcher = nodeGatewayLauncher(configFile, port)
    const start = () => launcher.start()
    child = await start()
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'k', maxRetries: 0 })
    const n = 30
    const jsonl = Array.from({ length: n }, (_, i) => line(`r${i}`, `item ${i} [[mock:delay=30]] x y`)).join('\n')
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'restart.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    for (let i = 0; i < 400; i++) {
      const b = await client.batches.retrieve(batch.id)
      if (b.request_counts && b.request_counts.completed >= 5) break
      await new Promise((r) => setTimeout(r, 25))
    }
    const before = await client.batches.retrieve(batch.id)
    expect(before.status).toBe('in_progress')
    expect(before.request_counts!.completed).toBeLessThan(n)
    child.kill('SIGKILL')
    await new Promise((r) => child!.once('exit', r))

    // The killed process keeps its lease: the restarted one takes the batch over once it expires (it looks every leaseSec).
    child = await start()
    const done = await waitFor(client, batch.id, ['completed'], 30_000).catch((e) => {
      throw new Error(`${e.message}\n${launcher.logs}`)
    })
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 })
    const out = parseJsonl(await (await client.files.content(done.output_file_id!)).text())
    expect(out).toHaveLength(n)
    expect(new Set(out.map((r) => r.custom_id)).size).toBe(n)
    for (const r of out) expect(r.response.body.choices[0].message.content).toBe(`item ${r.custom_id.slice(1)} x y`)
    child.kill('SIGTERM')
  }, 90_000)
})

/**
 * A fake OpenAI upstream that answers each chat completion after `delayMs`
 * with the prompt echoed, and counts the calls per prompt and per gateway
 * (each gateway's provider sends its own `x-gateway` header).
 */
async function countingUpstream(delayMs: number) {
  const calls = new Map<string, string[]>()
  const upstream = await startUpstream(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return void res.writeHead(404).end()
    const prompt = String(req.json().messages[0].content)
    calls.set(prompt, [...(calls.get(prompt) ?? []), String(req.headers['x-gateway'])])
    await sleep(delayMs)
    const body = { ...completionText, choices: [{ ...completionText.choices[0], message: { ...completionText.choices[0].message, content: prompt } }] }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  return { upstream, calls }
}

describe('two gateways sharing one fs store', () => {
  let child: ChildProcess | undefined
  const closers: Array<() => Promise<void>> = []
  afterAll(async () => {
    child?.kill('SIGKILL')
    for (const close of closers) await close().catch(() => {})
  })

  const shared = (dir: string, upstream: string, gateway: string) => ({
    server: { apiKeys: ['k'] },
    providers: [{ id: 'oai', type: 'openai-compatible', baseURL: `${upstream}/v1`, apiKey: 'sk-up', headers: { 'x-gateway': gateway } }],
    storage: { files: { driver: 'fs', base: join(dir, 'files') }, jobs: { driver: 'fs', base: join(dir, 'jobs') } },
    batch: { concurrency: 2, leaseSec: 2 },
  })
  const oaiLine = (i: number) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'oai/gpt-4o-mini', messages: [{ role: 'user', content: `item ${i}` }] } })
  const clientOf = (baseURL: string) => new OpenAI({ baseURL, apiKey: 'k', maxRetries: 0 })
  /** Uploads n lines through `client` and creates their batch there. */
  async function createBatch(client: OpenAI, n: number): Promise<OpenAI.Batch> {
    const file = await client.files.create({ file: await toFile(Buffer.from(Array.from({ length: n }, (_, i) => oaiLine(i)).join('\n')), 'shared.jsonl'), purpose: 'batch' })
    return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
  }
  /** Polls until the batch has at least two items done; returns what was last seen. */
  async function untilProgress(client: OpenAI, id: string): Promise<OpenAI.Batch> {
    let seen = await client.batches.retrieve(id)
    for (let i = 0; i < 400 && !(seen.status === 'in_progress' && seen.request_counts!.completed >= 2); i++) {
      await sleep(20)
      seen = await client.batches.retrieve(id)
    }
    return seen
  }
  /** Two in-process gateways, A and B, on one fresh fs store and one counting upstream. */
  async function twoGateways(delayMs: number, bDeps: { backgroundJobs?: boolean } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-batch-shared-'))
    const { upstream, calls } = await countingUpstream(delayMs)
    closers.push(() => upstream.close())
    const a = await startGateway(shared(dir, upstream.url, 'a'))
    closers.push(() => a.close())
    const b = await startGateway(shared(dir, upstream.url, 'b'), bDeps)
    closers.push(() => b.close())
    return { a, b, calls, clientA: clientOf(a.baseURL), clientB: clientOf(b.baseURL) }
  }

  it('a batch created in one gateway and run by the other shows its progress and `completed` where it was created, in GET and in the list', async () => {
    // B runs no batches itself, as a Workers isolate: it writes the record, A runs it.
    const { a, b, calls, clientA, clientB } = await twoGateways(150, { backgroundJobs: false })
    const n = 10
    const batch = await createBatch(clientB, n)
    expect((await clientB.batches.retrieve(batch.id)).status).toBe('validating')
    expect(await a.gateway.batches.resume()).toBe(1)

    // B sees A's progress as A writes it, and never takes the batch while A holds it.
    const seen = await untilProgress(clientB, batch.id)
    expect(seen.status).toBe('in_progress')
    expect(seen.request_counts!.completed).toBeLessThan(n)
    expect(await b.gateway.batches.resume()).toBe(0)

    const done = await waitFor(clientB, batch.id, ['completed', 'failed', 'expired'])
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 })
    expect(done.completed_at).toBeTypeOf('number')
    expect(done).not.toHaveProperty('lease')
    const listed = (await clientB.batches.list({ limit: 10 })).data.find((x) => x.id === batch.id)
    expect(listed).toMatchObject({ status: 'completed', request_counts: { total: n, completed: n, failed: 0 }, output_file_id: done.output_file_id })
    expect(await clientA.batches.retrieve(batch.id)).toMatchObject({ status: 'completed', output_file_id: done.output_file_id })
    const out = parseJsonl(await (await clientB.files.content(done.output_file_id!)).text())
    expect(out.map((r) => r.custom_id).sort()).toEqual(Array.from({ length: n }, (_, i) => `r${i}`).sort())
    // Every item ran once, all in A.
    expect([...calls.values()].flat()).toEqual(Array(n).fill('a'))
  }, 60_000)

  it('a cancel through the other gateway reaches the runner: the batch ends cancelled, with the items done before it', async () => {
    const { a, clientA, clientB } = await twoGateways(200)
    const n = 40
    const batch = await createBatch(clientA, n)
    expect((await untilProgress(clientB, batch.id)).status).toBe('in_progress')
    expect((await clientB.batches.cancel(batch.id)).status).toBe('cancelling')
    const done = await waitFor(clientB, batch.id, ['cancelled', 'completed'], 10_000)
    expect(done.status).toBe('cancelled')
    expect(done.cancelled_at).toBeTypeOf('number')
    const out = parseJsonl(await (await clientB.files.content(done.output_file_id!)).text())
    expect(out.length).toBeGreaterThanOrEqual(2)
    expect(out.length).toBeLessThan(n)
    expect(done.request_counts!.completed).toBe(out.length)
    expect(await clientA.batches.cancel(batch.id).catch((e) => e)).toMatchObject({ status: 409 })
    await a.gateway.batches.idle()
    expect(await a.gateway.storage.mount('jobs').getItem(`batchcancel:${batch.id}`)).toBeNull()
  }, 60_000)

  it('a batch leased by a live gateway is not taken by the other; once its runner dies and the lease expires it is, every item answered exactly once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-batch-lease-'))
    const { upstream, calls } = await countingUpstream(400)
    closers.push(() => upstream.close())
    const configFile = join(dir, 'gateway.config.json')
    writeFileSync(configFile, JSON.stringify(shared(dir, upstream.url, 'a')))
    const port = await freePort()
    const launcher = nodeGatewayLauncher(configFile, port)
    child = await launcher.start()
    const n = 30
    const batch = await createBatch(clientOf(`http://127.0.0.1:${port}/v1`), n)

    // B starts on the same storage (it resumes at start and sweeps every leaseSec): A's lease keeps it off.
    const b = await startGateway(shared(dir, upstream.url, 'b'))
    closers.push(() => b.close())
    const clientB = clientOf(b.baseURL)
    await sleep(3_000) // longer than the lease: A renews it
    expect(await b.gateway.batches.resume()).toBe(0)
    const midway = await clientB.batches.retrieve(batch.id)
    expect(midway.status).toBe('in_progress')
    expect(midway.request_counts!.completed).toBeGreaterThan(0)
    expect(midway.request_counts!.completed).toBeLessThan(n)
    expect([...calls.values()].flat().filter((g) => g !== 'a')).toEqual([])

    // A dies holding the lease: B may not take the batch until it expires, then its sweep does.
    child.kill('SIGKILL')
    await new Promise((r) => child!.once('exit', r))
    const byA = [...calls.values()].flat().length
    expect(await b.gateway.batches.resume()).toBe(0)
    const done = await waitFor(clientB, batch.id, ['completed', 'failed', 'expired'], 30_000)
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 })
    const out = parseJsonl(await (await clientB.files.content(done.output_file_id!)).text())
    expect(out).toHaveLength(n)
    expect(new Set(out.map((r) => r.custom_id)).size).toBe(n)
    for (const r of out) expect(r.response.body.choices[0].message.content).toBe(`item ${r.custom_id.slice(1)}`)
    // B ran what A had not finished: at most the items A had in flight (concurrency 2) were sent twice.
    const all = [...calls.values()].flat()
    expect(all.filter((g) => g === 'b').length).toBeGreaterThan(0)
    expect(all.length).toBeLessThanOrEqual(n + 2)
    expect(byA).toBeLessThan(n)
    expect(await b.gateway.batches.resume()).toBe(0)
  }, 90_000)
})

describe('POST /v1/batch (synchronous)', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k'] }, batch: { maxItems: 5 } })
  })
  afterAll(() => gw.close())
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k', ...headers }, body: JSON.stringify(body) })
  const items = (n: number, delay: number) =>
    Array.from({ length: n }, (_, i) => ({ custom_id: `q${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: `n${i} [[mock:delay=${delay}]] a b c d` }] } }))

  it('runs in parallel or serially, answering in request order with a summary', async () => {
    const t0 = performance.now()
    const par = await (await post({ requests: items(4, 80), mode: 'parallel', concurrency: 4 })).json()
    const parallelMs = performance.now() - t0
    const t1 = performance.now()
    const ser = await (await post({ requests: items(4, 80), mode: 'serial' })).json()
    const serialMs = performance.now() - t1
    for (const res of [par, ser]) {
      expect(res.results.map((r: { custom_id: string }) => r.custom_id)).toEqual(['q0', 'q1', 'q2', 'q3'])
      expect(res.results[2]).toMatchObject({ status: 200, body: { choices: [{ message: { content: 'n2 a b c d' } }] } })
      expect(res.summary).toMatchObject({ total: 4, succeeded: 4, failed: 0, skipped: 0 })
      expect(res.summary.tokens).toBeGreaterThan(0)
    }
    // Each item streams 4 words 80 ms apart (>= 320 ms): serial takes at least 4 of those back to back, parallel overlaps them.
    expect(serialMs).toBeGreaterThanOrEqual(1270)
    expect(parallelMs).toBeLessThan(serialMs * 0.75)
  })

  it('mixes endpoints and dialects, and reports failures per item', async () => {
    const res = await (
      await post({
        requests: [
          { custom_id: 'chat', url: '/v1/chat/completions', body: { model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] } },
          { custom_id: 'emb', url: '/v1/embeddings', body: { model: 'mock-1', input: 'vector me', encoding_format: 'float' } },
          { custom_id: 'bad', url: '/v1/chat/completions', body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } },
        ],
      })
    ).json()
    expect(res.results[0].status).toBe(200)
    expect(res.results[1]).toMatchObject({ status: 200, body: { object: 'list' } })
    expect(res.results[2]).toMatchObject({ custom_id: 'bad', status: 404, error: { type: 'invalid_request_error', message: expect.stringContaining('nope') } })
    expect(res.summary).toMatchObject({ succeeded: 2, failed: 1 })
  })

  it('stops on the first error when asked, skipping what had not started', async () => {
    const reqs = items(4, 0)
    reqs[1].body.messages[0].content = '[[mock:error=invalid_request]]'
    const res = await (await post({ requests: reqs, mode: 'serial', stop_on_error: true })).json()
    expect(res.results.map((r: { status: number | null }) => r.status)).toEqual([200, 400, null, null])
    expect(res.results[2].error.type).toBe('skipped')
    expect(res.summary).toMatchObject({ succeeded: 1, failed: 1, skipped: 2 })
  })

  it('streams progress, result and summary events', async () => {
    const res = await post({ requests: items(3, 10), stream: true })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const events: Array<{ event?: string; data: any }> = []
    for await (const ev of decodeSse(res.body as unknown as AsyncIterable<Uint8Array>)) events.push({ event: ev.event, data: JSON.parse(ev.data) })
    expect(events.filter((e) => e.event === 'result')).toHaveLength(3)
    expect(events.filter((e) => e.event === 'progress').map((e) => e.data.done)).toEqual([1, 2, 3])
    expect(events[events.length - 1]).toMatchObject({ event: 'summary', data: { total: 3, succeeded: 3 } })
    const viaAccept = await post({ requests: items(1, 0) }, { accept: 'text/event-stream' })
    expect(viaAccept.headers.get('content-type')).toContain('text/event-stream')
  })

  it('answers clear errors for bad batches', async () => {
    const tooMany = await post({ requests: items(6, 0) })
    expect(tooMany.status).toBe(413)
    expect((await tooMany.json()).error.code).toBe('too_many_items')
    const badUrl = await post({ requests: [{ custom_id: 'x', url: '/v1/files', body: {} }] })
    expect(badUrl.status).toBe(400)
    expect((await badUrl.json()).error.param).toBe('requests[0].url')
    const dup = await post({ requests: [items(1, 0)[0], items(1, 0)[0]] })
    expect((await dup.json()).error.code).toBe('duplicate_custom_id')
    const empty = await post({ requests: [] })
    expect(empty.status).toBe(400)
  })
})
