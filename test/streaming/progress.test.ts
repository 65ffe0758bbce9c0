import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { blocks, chatBody, contentOf, parseBlocks, streamWords, words, type Block } from './sse-client.js'

const JSON_HEADERS = { 'content-type': 'application/json' }
const full = words(8)

describe('heartbeats and progress frames', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  beforeAll(async () => {
    // A slow first token (queue, cold model), then a steady generation.
    up = await startUpstream((req, res) => streamWords(res, full, { firstDelayMs: 450, delayMs: 60 }))
    gw = await startGateway({
      providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }],
      streaming: { heartbeatSec: 0.1, progressIntervalMs: 100 },
    })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('sends heartbeat comments while the first token is slow, and the openai SDK parses the stream unchanged', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody() })
    const all = parseBlocks(await res.text())
    const firstData = all.findIndex((b) => b.data !== undefined && b.data.includes('"content":"w0 "'))
    const early = all.slice(0, firstData).filter((b) => b.comment === 'keep-alive')
    expect(early.length).toBeGreaterThanOrEqual(2)
    expect(all.some((b) => b.event === 'progress')).toBe(false)
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const final = await client.chat.completions.stream({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).finalChatCompletion()
    expect(final.choices[0].message.content).toBe(full.join(''))
  })

  it('sends opted-in progress frames (waiting_first_token, then generating with growing token counts) that the openai SDK tolerates', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody({ stream_options: { progress: true, include_usage: true } }) })
    const all: Block[] = []
    for await (const b of blocks(res.body!)) all.push(b)
    const progress = all.filter((b) => b.event === 'progress').map((b) => ({ id: b.id, chunk: JSON.parse(b.data!) }))
    expect(progress.length).toBeGreaterThanOrEqual(3)
    for (const p of progress) {
      expect(p.chunk).toMatchObject({ object: 'chat.completion.chunk', choices: [], progress: { phase: expect.any(String), elapsed_ms: expect.any(Number) } })
      expect(p.chunk.error).toBeUndefined()
    }
    const phases = progress.map((p) => p.chunk.progress.phase)
    expect(phases[0]).toBe('waiting_first_token')
    expect(phases).toContain('generating')
    const tokens = progress.filter((p) => p.chunk.progress.phase === 'generating').map((p) => p.chunk.progress.tokens)
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b))
    expect(tokens[0]).toBeGreaterThan(0)
    // A progress frame carries the id of the event before it, so Last-Event-ID stays exact.
    const ids = all.filter((b) => b.id).map((b) => Number(b.id))
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(contentOf(all)).toBe(full.join(''))

    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    const params = { model: 'up/gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], stream_options: { progress: true, include_usage: true } as never }
    const final = await client.chat.completions.stream(params).finalChatCompletion()
    expect(final.choices[0].message).toMatchObject({ role: 'assistant', content: full.join('') })
    expect(final.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 })
    let text = ''
    let sawProgress = false
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      if ((chunk as { progress?: unknown }).progress) sawProgress = true
      text += chunk.choices[0]?.delta?.content ?? ''
    }
    expect(sawProgress).toBe(true)
    expect(text).toBe(full.join(''))
  })

  it('takes the opt-in from the x-gateway-progress header, on legacy completions too', async () => {
    const res = await fetch(`${gw.baseURL}/completions`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-gateway-progress': '1' }, body: JSON.stringify({ model: 'up/gpt-4o-mini', prompt: 'Say', stream: true }) })
    const progress = parseBlocks(await res.text()).filter((b) => b.event === 'progress')
    expect(progress.length).toBeGreaterThan(0)
    expect(JSON.parse(progress[0].data!)).toMatchObject({ object: 'text_completion', choices: [], progress: { phase: 'waiting_first_token' } })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 })
    let text = ''
    for await (const chunk of await client.completions.create({ model: 'up/gpt-4o-mini', prompt: 'Say', stream: true }, { headers: { 'x-gateway-progress': '1' } })) text += chunk.choices[0]?.text ?? ''
    expect(text).toBe(full.join(''))
  })

  it('gives Anthropic clients heartbeats and `event: progress` frames that messages.stream() ignores; no-ping drops ping', async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: 'x', maxRetries: 0 })
    const stream = client.messages.stream({ model: 'up/gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-gateway-progress': '1', 'x-gateway-events': 'no-ping' } })
    const types: string[] = []
    for await (const ev of stream) types.push(ev.type)
    const message = await stream.finalMessage()
    expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: full.join('') })])
    expect(types).toContain('progress')
    expect(types).not.toContain('ping')
    expect(types.filter((t) => t !== 'progress')[0]).toBe('message_start')
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-gateway-progress': '1' }, body: JSON.stringify({ model: 'up/gpt-4o-mini', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] }) })
    const all = parseBlocks(await res.text())
    expect(all.some((b) => b.comment === 'keep-alive')).toBe(true)
    for (const b of all.filter((x) => x.event === 'progress')) expect(JSON.parse(b.data!)).toMatchObject({ type: 'progress', phase: expect.any(String) })
    expect(all.some((b) => b.event === 'ping')).toBe(true)
  })
})

describe('queued progress', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  beforeAll(async () => {
    up = await startUpstream((req, res) => streamWords(res, full, { delayMs: 60 }))
    gw = await startGateway({
      providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }],
      limits: { providers: { up: { concurrency: 1 } } },
      streaming: { progressIntervalMs: 100 },
    })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  it('reports the queue position while a request waits for a slot, then the later phases', async () => {
    const first = fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody() }).then((r) => r.text())
    await new Promise((r) => setTimeout(r, 50))
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: chatBody({ stream_options: { progress: true } }) })
    const all = parseBlocks(await res.text())
    await first
    const phases = all.filter((b) => b.event === 'progress').map((b) => JSON.parse(b.data!).progress)
    expect(phases[0]).toMatchObject({ phase: 'queued', position: 1 })
    expect(phases.map((p) => p.phase)).toContain('generating')
    expect(contentOf(all)).toBe(full.join(''))
  })
})
