import Anthropic from '@anthropic-ai/sdk'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as geminiFx from '../fixtures/vertex/gemini.js'
import * as ollamaFx from '../fixtures/ollama/api.js'
import * as openaiFx from '../fixtures/openai/chat.js'
import { hostname } from 'node:os'
import { guardedLookup } from '../../src/entry/node-dns.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { b64, dataUrl, JPEG, PDF, PNG, WAV } from '../helpers/media-samples.js'
import { sleep, startUpstream, type FakeUpstream } from '../helpers/upstream.js'

/**
 * The media policy as clients meet it: routing by input kind and the 400
 * naming the part and the models that take it, the opt-in PDF → text
 * conversion and its header, size caps (413), type checks, Files API
 * references, and the SSRF-guarded fetch of linked media.
 */

const json = (res: import('node:http').ServerResponse, value: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value))

/** Public-looking names the test resolver answers for; every fetch of them really goes to the loopback media server. */
const PUBLIC = '93.184.216.34'
const NAMES: Record<string, string[]> = { 'media.test': [PUBLIC], 'other.test': [PUBLIC], 'internal.test': ['10.0.0.7'], 'rebind.test': [PUBLIC, '127.0.0.1'] }

let oai: FakeUpstream
let gem: FakeUpstream
let olla: FakeUpstream
let media: FakeUpstream
let gw: RunningGateway
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  oai = await startUpstream((_req, res) => json(res, openaiFx.completionText))
  gem = await startUpstream((req, res) => json(res, req.method === 'GET' ? geminiFx.modelList : geminiFx.generateText))
  olla = await startUpstream((req, res) => json(res, req.url === '/api/tags' ? ollamaFx.tags : ollamaFx.completionText))
  media = await startUpstream(async (req, res) => {
    if (req.url === '/cat.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG)
    if (req.url === '/report.pdf') return void res.writeHead(200, { 'content-type': 'application/pdf' }).end(PDF)
    if (req.url === '/fake.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image</html>')
    if (req.url === '/big.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.concat([PNG, Buffer.alloc(5000)]))
    if (req.url === '/slow.png') {
      await sleep(2000)
      return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG)
    }
    const to = new URL(req.url, 'http://x').searchParams.get('to')
    if (req.url.startsWith('/redirect') && to) return void res.writeHead(302, { location: to }).end()
    res.writeHead(404).end()
  })
  const mediaPort = new URL(media.url).port
  // What the gateway's fetcher calls: names of the test resolver go to the loopback media server (only after the guard passed them).
  const loop = fetchClient((url, init) => {
    const u = new URL(url)
    if (u.hostname in NAMES) {
      u.hostname = '127.0.0.1'
      u.port = mediaPort
    }
    return fetch(u.href, init)
  })
  gw = await startGateway(
    {
      server: { apiKeys: ['sk-gw', 'sk-other'] },
      providers: [
        { id: 'oai', type: 'openai-compatible', baseURL: `${oai.url}/v1`, apiKey: 'sk-up', models: ['gpt-4o', 'gpt-3.5-turbo'] },
        { id: 'gem', type: 'gemini', apiKey: 'AIza-test', baseURL: gem.url },
        { id: 'olla', type: 'ollama', baseURL: olla.url, models: ['llava', 'llama3.2'] },
      ],
      models: { vision: { strategy: 'fallback', targets: ['olla/llama3.2', 'oai/gpt-3.5-turbo', `gem/${geminiFx.MODEL}`] } },
      media: {
        maxPartBytes: 4096,
        maxRequestBytes: 6000,
        remote: { enabled: true, allowHosts: ['media.test', 'internal.test', 'rebind.test', '127.0.0.1', '169.254.169.254', '::1', 'localhost'], timeoutMs: 300, maxBytes: 2048 },
      },
    },
    { resolveHost: async (host) => NAMES[host] ?? [], mediaHttp: loop },
  )
  openai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw', maxRetries: 0 })
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'sk-gw', maxRetries: 0 })
})

afterAll(async () => {
  await gw?.close()
  for (const u of [oai, gem, olla, media]) await u?.close()
})

const pdfPart = { type: 'file' as const, file: { filename: 'report.pdf', file_data: dataUrl('application/pdf', PDF) } }
const ask = (model: string, ...parts: OpenAI.ChatCompletionContentPart[]) => openai.chat.completions.create({ model, messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise.' }, ...parts] }] })
const fail = (p: Promise<unknown>) => p.then(() => expect.unreachable('the request should have failed'), (e: unknown) => e as InstanceType<typeof OpenAI.APIError>)

describe('routing by input kind', () => {
  it('skips fallback targets that cannot take the image and answers from one that can', async () => {
    const before = olla.requests.length
    const r = await ask('vision', { type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } })
    expect(r.choices[0].message.content).toBe('Hello, world!')
    expect(gem.requests.at(-1)!.json().contents[0].parts).toContainEqual({ inlineData: { mimeType: 'image/png', data: b64(PNG) } })
    expect(olla.requests.length).toBe(before)
  })

  it('a PDF for a model that cannot read documents: 400 naming the part and the models that can', async () => {
    const err = await fail(ask('olla/llava', pdfPart))
    expect(err.status).toBe(400)
    expect(err.error).toMatchObject({ code: 'unsupported_capability', param: 'messages' })
    expect(err.message).toContain('document input')
    expect(err.message).toMatch(/a document part/)
    expect(err.message).toContain(`Models that take document input: `)
    expect(err.message).toContain('oai/gpt-4o')
    expect(err.message).toContain(`gem/${geminiFx.MODEL}`)
    expect(err.message).not.toContain('olla/llava,')
  })

  it('audio for a text model: 400 in the Anthropic shape for the Messages API too', async () => {
    const err = await fail(ask('oai/gpt-4o', { type: 'input_audio', input_audio: { data: b64(WAV), format: 'wav' } }))
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/lacks audio input.*an audio part.*Models that take audio input: .*gem\//)
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-gw', 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'olla/llama3.2', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64(PNG) } }] }] }),
    })
    expect(res.status).toBe(400)
    const body = await res.json()
    expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })
    expect(body.error.message).toMatch(/lacks image input \(vision\).*an image part.*Models that take image input: .*olla\/llava/)
  })
})

describe('PDF → text for text-only models (opt-in)', () => {
  it('is off by default: the 400 above', async () => {
    expect((await fail(ask('olla/llama3.2', pdfPart))).status).toBe(400)
  })

  it('converts the PDF to its text and says so in x-gateway-conversions', async () => {
    const g = await startGateway({ providers: [{ id: 'olla', type: 'ollama', baseURL: olla.url, models: ['llama3.2'] }], media: { conversions: { pdfToText: true } } })
    try {
      const client = new OpenAI({ baseURL: g.baseURL, apiKey: 'none', maxRetries: 0 })
      const { data, response } = await client.chat.completions.create({ model: 'olla/llama3.2', messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise. ' }, pdfPart] }] }).withResponse()
      expect(data.choices[0].message.content).toBe('Hello, world!')
      expect(response.headers.get('x-gateway-conversions')).toBe('pdf-to-text messages[0].content[1]')
      const sent = olla.requests.at(-1)!.json().messages[0]
      expect(sent.content).toContain('Quarterly report')
      expect(sent.content).toContain('Revenue grew 12 percent.')
      expect(sent.images).toBeUndefined()
      // Streaming: the same header on the SSE answer.
      const stream = await client.chat.completions.create({ model: 'olla/llama3.2', stream: true, messages: [{ role: 'user', content: [pdfPart] }] }).withResponse()
      expect(stream.response.headers.get('x-gateway-conversions')).toBe('pdf-to-text messages[0].content[0]')
      for await (const _ of stream.data) void _
      // A model that reads PDFs gets the PDF itself, and no header.
      const broken = { type: 'file' as const, file: { filename: 'x.pdf', file_data: dataUrl('application/pdf', Buffer.from('%PDF-1.4\ngarbage')) } }
      const err = await fail(client.chat.completions.create({ model: 'olla/llama3.2', messages: [{ role: 'user', content: [broken] }] }))
      expect(err.status).toBe(400)
      expect(err.error).toMatchObject({ code: 'pdf_unreadable' })
    } finally {
      await g.close()
    }
  })
})

describe('limits and type checks', () => {
  const bigPng = Buffer.concat([PNG, Buffer.alloc(5000)])

  it('a part over media.maxPartBytes: 413 in the OpenAI shape', async () => {
    const err = await fail(ask('oai/gpt-4o', { type: 'image_url', image_url: { url: dataUrl('image/png', bigPng) } }))
    expect(err.status).toBe(413)
    expect(err.error).toMatchObject({ code: 'media_too_large', param: 'messages[0].content[1]' })
    expect(err.message).toContain('limit of 4096 bytes per part')
  })

  it('parts together over media.maxRequestBytes: 413 in the Anthropic shape', async () => {
    const part = Buffer.concat([PNG, Buffer.alloc(3000)])
    const err = (await anthropic.messages
      .create({ model: 'oai/gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: [1, 2].map(() => ({ type: 'image' as const, source: { type: 'base64' as const, media_type: 'image/png' as const, data: b64(part) } })) }] })
      .catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>
    expect(err.status).toBe(413)
    expect(err.error).toMatchObject({ type: 'error', error: { type: 'request_too_large' } })
    expect(err.message).toContain('6000 bytes of media')
  })

  it('a declared image/png whose bytes are a JPEG: 400 naming both', async () => {
    const err = await fail(ask('oai/gpt-4o', { type: 'image_url', image_url: { url: dataUrl('image/png', JPEG) } }))
    expect(err.status).toBe(400)
    expect(err.error).toMatchObject({ code: 'media_type_mismatch', param: 'messages[0].content[1]' })
    expect(err.message).toContain('declared as image/png, but its data is not image/png (it looks like image/jpeg)')
  })

  it('a "PDF" that is not one, an image part of a non-image type, and broken base64: 400s', async () => {
    const notPdf = await fail(ask('oai/gpt-4o', { type: 'file', file: { filename: 'a.pdf', file_data: dataUrl('application/pdf', PNG) } }))
    expect(notPdf.error).toMatchObject({ code: 'media_type_mismatch' })
    const wrongKind = await fail(ask('oai/gpt-4o', { type: 'image_url', image_url: { url: dataUrl('application/pdf', PDF) } }))
    expect(wrongKind.error).toMatchObject({ code: 'unsupported_media_type' })
    const broken = await fail(ask('oai/gpt-4o', { type: 'image_url', image_url: { url: 'data:image/png;base64,not*base64!' } }))
    expect(broken.error).toMatchObject({ code: 'invalid_base64' })
    expect(oai.requests.filter((r) => r.method === 'POST' && r.body.includes('not*base64')).length).toBe(0)
  })
})

describe('Files API references', () => {
  it('resolves a file_id for the key that uploaded it, and for no other key', async () => {
    const file = await openai.files.create({ file: await toFile(PDF, 'report.pdf', { type: 'application/pdf' }), purpose: 'user_data' })
    await ask('oai/gpt-4o', { type: 'file', file: { file_id: file.id } })
    expect(oai.requests.at(-1)!.json().messages[0].content).toContainEqual({ type: 'file', file: { filename: 'report.pdf', file_data: dataUrl('application/pdf', PDF) } })
    // The upload is kept byte for byte.
    expect(Buffer.from(await (await openai.files.content(file.id)).arrayBuffer())).toEqual(PDF)
    const other = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-other', maxRetries: 0 })
    const err = await fail(other.chat.completions.create({ model: 'oai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: file.id } }] }] }))
    expect(err.status).toBe(400)
    expect(err.error).toMatchObject({ code: 'invalid_file_id' })
  })
})

describe('linked media (media.remote)', () => {
  const link = (url: string) => ask('oai/gpt-4o', { type: 'image_url', image_url: { url } })

  it('downloads an allowed link and sends the bytes inline', async () => {
    await link('http://media.test/cat.png')
    expect(oai.requests.at(-1)!.json().messages[0].content).toContainEqual({ type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } })
    // Responses file_url and Anthropic url sources go the same way.
    await openai.responses.create({ model: 'oai/gpt-4o', store: false, input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'http://media.test/report.pdf' }] }] })
    expect(oai.requests.at(-1)!.json().messages[0].content).toContainEqual({ type: 'file', file: { filename: 'document.pdf', file_data: dataUrl('application/pdf', PDF) } })
    await anthropic.messages.create({ model: 'oai/gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'http://media.test/cat.png' } }] }] })
    expect(oai.requests.at(-1)!.json().messages[0].content).toContainEqual({ type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } })
  })

  const refused: Array<[string, string, RegExp]> = [
    ['loopback IPv4', 'http://127.0.0.1:9/cat.png', /127\.0\.0\.1 is a private, loopback or link-local address/],
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a private/],
    ['loopback IPv6', 'http://[::1]:9/cat.png', /::1 is a private/],
    ['localhost', 'http://localhost:9/cat.png', /localhost is a loopback name/],
    ['a name resolving to a private range', 'http://internal.test/cat.png', /internal\.test resolves to 10\.0\.0\.7/],
    ['a name with one private address among public ones', 'http://rebind.test/cat.png', /rebind\.test resolves to 127\.0\.0\.1/],
    ['a redirect to loopback', 'http://media.test/redirect?to=http://127.0.0.1:9/cat.png', /127\.0\.0\.1 is a private/],
    ['a redirect to cloud metadata', 'http://media.test/redirect?to=http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a private/],
    ['a redirect to [::1]', 'http://media.test/redirect?to=http://[::1]/x', /::1 is a private/],
    ['a host off the allowlist', 'http://other.test/cat.png', /other\.test is not in this gateway's media\.remote\.allowHosts/],
    ['credentials in the URL', 'http://user:pw@media.test/cat.png', /credentials/],
    ['not an image', 'http://media.test/fake.png', /declared as image\/png, but its data is not image\/png/],
  ]
  it.each(refused)('refuses %s with a clear 400', async (_name, url, why) => {
    const before = oai.requests.length
    const err = await fail(link(url))
    expect(err.status).toBe(400)
    expect(err.message).toMatch(why)
    expect(oai.requests.length).toBe(before)
  })

  it('refuses a download over media.remote.maxBytes (413) and one slower than timeoutMs (504)', async () => {
    const big = await fail(link('http://media.test/big.png'))
    expect(big.status).toBe(413)
    expect(big.message).toContain('larger than 2048 bytes')
    const slow = await fail(link('http://media.test/slow.png'))
    expect(slow.status).toBe(504)
    expect(slow.message).toContain('longer than 300 ms')
  })

  it('with remote media off (the default), links are a 400 before anything is fetched', async () => {
    const g = await startGateway({ providers: [{ id: 'oai', type: 'openai-compatible', baseURL: `${oai.url}/v1`, models: ['gpt-4o'] }] })
    try {
      const before = media.requests.length
      const client = new OpenAI({ baseURL: g.baseURL, apiKey: 'none', maxRetries: 0 })
      const err = await fail(client.chat.completions.create({ model: 'oai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${media.url}/cat.png` } }] }] }))
      expect(err.status).toBe(400)
      expect(err.message).toContain('remote image URLs are disabled')
      expect(media.requests.length).toBe(before)
    } finally {
      await g.close()
    }
  })

  it('the real Node resolver refuses a name resolving to loopback; the guarded socket lookup refuses it at connect time too', async () => {
    const host = hostname()
    const g = await startGateway({ providers: [{ id: 'oai', type: 'openai-compatible', baseURL: `${oai.url}/v1`, models: ['gpt-4o'] }], server: { allowRemoteMedia: true } })
    try {
      const client = new OpenAI({ baseURL: g.baseURL, apiKey: 'none', maxRetries: 0 })
      const port = new URL(media.url).port
      for (const name of [host, 'localhost.']) {
        const err = await fail(client.chat.completions.create({ model: 'oai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `http://${name}:${port}/cat.png` } }] }] }))
        expect(err.status).toBe(400)
        expect(err.message).toMatch(/resolves to (127\.|::1|10\.|172\.|192\.168\.)|is a loopback name/)
      }
    } finally {
      await g.close()
    }
    // Past the name check (DNS rebinding: public when checked, private when connecting), the socket's own lookup refuses.
    const before = media.requests.length
    const err = await undiciClient({ lookup: guardedLookup })(`http://${host}:${new URL(media.url).port}/cat.png`, { method: 'GET', headers: {} }).catch((e: unknown) => e)
    expect(String((err as Error).message) + String(((err as Error).cause as Error | undefined)?.message)).toMatch(/which linked media may not come from/)
    expect(media.requests.length).toBe(before)
  })
})
