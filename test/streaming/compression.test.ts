import { request } from 'node:http'
import { createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as fx from '../fixtures/openai/chat.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { startUpstream, type FakeUpstream } from '../helpers/upstream.js'
import { chatBody, contentOf, parseBlocks } from './sse-client.js'

/** An upstream that sends one delta each time the test opens the gate. */
function gatedUpstream() {
  let open: (() => void) | undefined
  const gate = () => new Promise<void>((r) => (open = r))
  return {
    release: () => open?.(),
    handler: async (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`data: ${JSON.stringify(fx.streamText[0])}\n\n`)
      for (let i = 0; i < 5; i++) {
        res.write(`data: ${JSON.stringify({ ...fx.streamText[1], choices: [{ index: 0, delta: { content: `part${i} ` }, logprobs: null, finish_reason: null }] })}\n\n`)
        if (i < 4) await gate()
      }
      res.end(`data: ${JSON.stringify(fx.streamText[3])}\n\ndata: [DONE]\n\n`)
    },
  }
}

describe('compression', () => {
  let up: FakeUpstream
  let gw: RunningGateway
  const gated = gatedUpstream()
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const body = req.json()
      if (body.messages[0].content === 'gated') return gated.handler(req, res)
      const content = body.messages[0].content === 'long' ? 'lorem ipsum '.repeat(400) : 'ok'
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...fx.completionText, choices: [{ ...fx.completionText.choices[0], message: { role: 'assistant', content } }] }))
    })
    gw = await startGateway({ providers: [{ id: 'up', type: 'openai-compatible', baseURL: `${up.url}/v1`, models: ['gpt-4o-mini'] }] })
  })
  afterAll(async () => {
    await gw.close()
    await up.close()
  })

  for (const encoding of ['gzip', 'br'] as const) {
    it(`${encoding}: a stream is decodable event by event as it arrives (flushed per event)`, async () => {
      const url = new URL(`${gw.baseURL}/chat/completions`)
      const decoded: string[] = []
      let headers: import('node:http').IncomingHttpHeaders = {}
      const done = new Promise<void>((resolve, reject) => {
        const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'accept-encoding': encoding } }, (res) => {
          headers = res.headers
          const inflate = encoding === 'gzip' ? createGunzip() : createBrotliDecompress()
          res.pipe(inflate)
          inflate.on('data', (d: Buffer) => decoded.push(d.toString()))
          inflate.on('end', resolve)
          inflate.on('error', reject)
        })
        req.on('error', reject)
        req.end(chatBody({ messages: [{ role: 'user', content: 'gated' }] }))
      })
      // The upstream sends part k+1 only after the client has decoded part k: a compressor that waited for more bytes would stall here.
      for (let i = 0; i < 4; i++) {
        await expect.poll(() => decoded.join('').includes(`part${i} `), { timeout: 3000, interval: 5 }).toBe(true)
        expect(decoded.join('')).not.toContain(`part${i + 1} `)
        gated.release()
      }
      await done
      expect(headers['content-encoding']).toBe(encoding)
      expect(headers['vary']).toMatch(/accept-encoding/i)
      const blocks = parseBlocks(decoded.join(''))
      expect(contentOf(blocks)).toBe('part0 part1 part2 part3 part4 ')
      expect(blocks.at(-1)!.data).toBe('[DONE]')
    })
  }

  it('compresses large JSON answers, not small ones, and never without Accept-Encoding', async () => {
    const post = (content: string, headers: Record<string, string>) =>
      fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: chatBody({ stream: false, messages: [{ role: 'user', content }] }) })
    // undici's fetch would decode transparently; read the raw bytes with node:http instead.
    const raw = (content: string, accept?: string) =>
      new Promise<{ headers: import('node:http').IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = request(new URL(`${gw.baseURL}/chat/completions`), { method: 'POST', headers: { 'content-type': 'application/json', ...(accept ? { 'accept-encoding': accept } : {}) } }, (res) => {
          const parts: Buffer[] = []
          res.on('data', (d: Buffer) => parts.push(d))
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }))
        })
        req.on('error', reject)
        req.end(chatBody({ stream: false, messages: [{ role: 'user', content }] }))
      })
    const big = await raw('long', 'gzip, deflate')
    expect(big.headers['content-encoding']).toBe('gzip')
    const json = JSON.parse(gunzipSync(big.body).toString())
    expect(json.choices[0].message.content).toBe('lorem ipsum '.repeat(400))
    expect(big.body.length).toBeLessThan(1000)
    const small = await raw('short', 'gzip')
    expect(small.headers['content-encoding']).toBeUndefined()
    expect(JSON.parse(small.body.toString()).choices[0].message.content).toBe('ok')
    const plain = await raw('long')
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(JSON.parse(plain.body.toString()).choices[0].message.content).toBe('lorem ipsum '.repeat(400))
    const refused = await raw('long', 'gzip;q=0, identity')
    expect(refused.headers['content-encoding']).toBeUndefined()
    expect((await post('long', {})).status).toBe(200)
  })

  it('the openai SDK reads compressed answers and streams transparently', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0, defaultHeaders: { 'accept-encoding': 'gzip' } })
    const res = await client.chat.completions.create({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'long' }] }).withResponse()
    expect(res.response.headers.get('content-encoding')).toBe('gzip')
    expect(res.data.choices[0].message.content).toBe('lorem ipsum '.repeat(400))
    const stream = client.chat.completions.stream({ model: 'up/gpt-4o-mini', messages: [{ role: 'user', content: 'gated' }] })
    const releaser = setInterval(() => gated.release(), 10)
    const final = await stream.finalChatCompletion()
    clearInterval(releaser)
    expect(final.choices[0].message.content).toBe('part0 part1 part2 part3 part4 ')
  })
})
