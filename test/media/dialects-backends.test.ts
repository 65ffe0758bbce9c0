import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as anthropicFx from '../fixtures/anthropic/messages.js'
import * as bedrockFx from '../fixtures/bedrock/converse.js'
import * as ollamaFx from '../fixtures/ollama/api.js'
import * as openaiFx from '../fixtures/openai/chat.js'
import * as geminiFx from '../fixtures/vertex/gemini.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'
import { b64, dataUrl, MP4, PDF, PNG, WAV } from '../helpers/media-samples.js'
import { startUpstream, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { startBridge, type RunningBridge } from '../helpers/vscode-bridge.js'
import type { FakeChatModel } from '../fakes/vscode.js'

/**
 * Images, PDFs, audio and video sent by the real openai and Anthropic clients
 * through each dialect, arriving at each backend in that backend's own wire
 * format (asserted on what the fake upstream received).
 */

type Kind = 'image' | 'pdf' | 'audio' | 'video'
type Dialect = 'chat' | 'responses' | 'messages'

const json = (res: import('node:http').ServerResponse, value: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value))

let gw: RunningGateway
let bridge: RunningBridge
let vscodeModel: FakeChatModel
let vscodeDocs: FakeChatModel
const up: Record<string, FakeUpstream> = {}
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  up.oai = await startUpstream((_req, res) => json(res, openaiFx.completionText))
  up.az = await startUpstream((_req, res) => json(res, openaiFx.completionText))
  up.ant = await startUpstream((req, res) => json(res, req.method === 'GET' ? anthropicFx.models : anthropicFx.messageText))
  up.aws = await startUpstream((req, res) => json(res, req.method === 'GET' ? bedrockFx.foundationModels : bedrockFx.converseText))
  up.gem = await startUpstream((req, res) => json(res, req.method === 'GET' ? geminiFx.modelList : geminiFx.generateText))
  up.olla = await startUpstream((req, res) => json(res, req.url === '/api/tags' ? ollamaFx.tags : { ...ollamaFx.completionText, model: 'llava' }))
  bridge = await startBridge('bridge-token')
  vscodeModel = bridge.vscode.fake.addModel({ id: 'gpt-4o', vendor: 'copilot', capabilities: { supportsImageToText: true, supportsToolCalling: true } })
  vscodeDocs = bridge.vscode.fake.addModel({ id: 'claude-sonnet-4', vendor: 'copilot', capabilities: { supportsImageToText: true, supportsToolCalling: true } })
  gw = await startGateway({
    server: { apiKeys: ['sk-gw'] },
    providers: [
      { id: 'oai', type: 'openai-compatible', baseURL: `${up.oai.url}/v1`, apiKey: 'sk-up', models: ['gpt-4o', 'gpt-4o-audio-preview'] },
      { id: 'az', type: 'azure-openai', endpoint: up.az.url, apiKey: 'azure-key', deployments: { 'gpt-4o': 'prod-gpt4o' } },
      { id: 'ant', type: 'anthropic', baseURL: up.ant.url, apiKey: 'sk-ant' },
      { id: 'aws', type: 'bedrock', region: 'us-east-1', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'secret', endpoint: up.aws.url, controlEndpoint: up.aws.url, models: [bedrockFx.MODEL, 'amazon.nova-pro-v1:0'] },
      { id: 'gem', type: 'gemini', apiKey: 'AIza-test', baseURL: up.gem.url },
      { id: 'olla', type: 'ollama', baseURL: up.olla.url, models: ['llava'] },
      { id: 'vscode', type: 'vscode-bridge', url: bridge.url, token: 'bridge-token' },
    ],
    // vscode.lm says nothing about documents: this model is declared to read them.
    routing: { models: { 'vscode/claude-sonnet-4': { documents: true } } },
  })
  openai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-gw', maxRetries: 0 })
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'sk-gw', maxRetries: 0 })
})

afterAll(async () => {
  await gw?.close()
  await bridge?.close()
  for (const u of Object.values(up)) await u.close()
})

/** Sends a question with the given media through one dialect and returns the answer's text. */
async function send(dialect: Dialect, model: string, kinds: Kind[]): Promise<string> {
  if (dialect === 'chat') {
    const parts: OpenAI.ChatCompletionContentPart[] = [{ type: 'text', text: 'What is in these?' }]
    for (const k of kinds) {
      if (k === 'image') parts.push({ type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } })
      if (k === 'pdf') parts.push({ type: 'file', file: { filename: 'report.pdf', file_data: dataUrl('application/pdf', PDF) } })
      if (k === 'audio') parts.push({ type: 'input_audio', input_audio: { data: b64(WAV), format: 'wav' } })
      if (k === 'video') parts.push({ type: 'file', file: { filename: 'clip.mp4', file_data: dataUrl('video/mp4', MP4) } })
    }
    const r = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: parts }] })
    return r.choices[0].message.content ?? ''
  }
  if (dialect === 'responses') {
    const parts: OpenAI.Responses.ResponseInputContent[] = [{ type: 'input_text', text: 'What is in these?' }]
    for (const k of kinds) {
      if (k === 'image') parts.push({ type: 'input_image', image_url: dataUrl('image/png', PNG), detail: 'auto' })
      if (k === 'pdf') parts.push({ type: 'input_file', filename: 'report.pdf', file_data: dataUrl('application/pdf', PDF) })
      if (k === 'video') parts.push({ type: 'input_file', filename: 'clip.mp4', file_data: dataUrl('video/mp4', MP4) })
      if (k === 'audio') throw new Error('the Responses API has no audio input part')
    }
    const r = await openai.responses.create({ model, input: [{ role: 'user', content: parts }], store: false })
    return r.output_text
  }
  const blocks: Anthropic.ContentBlockParam[] = [{ type: 'text', text: 'What is in these?' }]
  for (const k of kinds) {
    if (k === 'image') blocks.push({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64(PNG) } })
    if (k === 'pdf') blocks.push({ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: b64(PDF) }, title: 'report.pdf', citations: { enabled: true } })
    if (k === 'audio' || k === 'video') throw new Error('the Messages API has no audio or video block')
  }
  const r = await anthropic.messages.create({ model, max_tokens: 100, messages: [{ role: 'user', content: blocks }] })
  return r.content.map((b) => (b.type === 'text' ? b.text : '')).join('')
}

/** The last generation call (the Messages route may also have counted tokens upstream). */
const last = (u: FakeUpstream): RecordedRequest => u.requests.filter((r) => r.method === 'POST' && !/count[-_]?tokens|countTokens/i.test(r.url)).at(-1)!

/** The parts of the last user message, as each backend received them. */
const userContent: Record<string, (r: RecordedRequest) => unknown[]> = {
  openai: (r) => r.json().messages.at(-1).content,
  anthropic: (r) => r.json().messages.at(-1).content,
  bedrock: (r) => r.json().messages.at(-1).content,
  gemini: (r) => r.json().contents.at(-1).parts,
}

const expected = {
  openai: {
    image: { type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } },
    pdf: { type: 'file', file: { filename: 'report.pdf', file_data: dataUrl('application/pdf', PDF) } },
    audio: { type: 'input_audio', input_audio: { data: b64(WAV), format: 'wav' } },
  },
  anthropic: {
    image: { type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64(PNG) } },
    pdf: { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: b64(PDF) }, title: 'report.pdf' },
  },
  bedrock: {
    image: { image: { format: 'png', source: { bytes: b64(PNG) } } },
    pdf: { document: { format: 'pdf', name: 'report pdf', source: { bytes: b64(PDF) } } },
    video: { video: { format: 'mp4', source: { bytes: b64(MP4) } } },
  },
  gemini: {
    image: { inlineData: { mimeType: 'image/png', data: b64(PNG) } },
    pdf: { inlineData: { mimeType: 'application/pdf', data: b64(PDF) } },
    audio: { inlineData: { mimeType: 'audio/wav', data: b64(WAV) } },
    video: { inlineData: { mimeType: 'video/mp4', data: b64(MP4) } },
  },
} as const

const DIALECTS: Dialect[] = ['chat', 'responses', 'messages']

describe.each(DIALECTS)('%s dialect', (dialect) => {
  // The Responses client sends detail: 'auto', which is passed on.
  const image = dialect === 'responses' ? { type: 'image_url', image_url: { url: dataUrl('image/png', PNG), detail: 'auto' } } : expected.openai.image

  it('openai-compatible: image_url and file (file_data) parts', async () => {
    expect(await send(dialect, 'oai/gpt-4o', ['image', 'pdf'])).toBe('Hello, world!')
    const content = userContent.openai(last(up.oai))
    expect(content).toContainEqual(image)
    expect(content).toContainEqual(expected.openai.pdf)
  })

  it('azure-openai: the same native parts on the deployment path', async () => {
    expect(await send(dialect, 'az/gpt-4o', ['image', 'pdf'])).toBe('Hello, world!')
    const r = last(up.az)
    expect(r.url).toMatch(/^\/openai\/deployments\/prod-gpt4o\/chat\/completions\?api-version=/)
    expect(userContent.openai(r)).toContainEqual(image)
    expect(userContent.openai(r)).toContainEqual(expected.openai.pdf)
  })

  it('anthropic: image and document blocks with base64 sources', async () => {
    expect(await send(dialect, 'ant/claude-sonnet-4-5', ['image', 'pdf'])).toBe('Hello, world!')
    const content = userContent.anthropic(last(up.ant))
    expect(content).toContainEqual(expected.anthropic.image)
    expect(content).toContainEqual(dialect === 'messages' ? { ...expected.anthropic.pdf, citations: { enabled: true } } : expected.anthropic.pdf)
  })

  it('bedrock: Converse image and document blocks with bytes', async () => {
    expect(await send(dialect, `aws/${bedrockFx.MODEL}`, ['image', 'pdf'])).toBe('Hello, world!')
    const content = userContent.bedrock(last(up.aws))
    expect(content).toContainEqual(expected.bedrock.image)
    expect(content).toContainEqual(expected.bedrock.pdf)
  })

  it('gemini: inlineData for the image and the PDF', async () => {
    expect(await send(dialect, `gem/${geminiFx.MODEL}`, ['image', 'pdf'])).toBe('Hello, world!')
    const parts = userContent.gemini(last(up.gem))
    expect(parts).toContainEqual(expected.gemini.image)
    expect(parts).toContainEqual(expected.gemini.pdf)
  })

  it('ollama: the image in the message images array', async () => {
    expect(await send(dialect, 'olla/llava', ['image'])).toBe('Hello, world!')
    expect(last(up.olla).json().messages.at(-1)).toMatchObject({ role: 'user', content: 'What is in these?', images: [b64(PNG)] })
  })

  it('vscode-bridge: the image as a LanguageModelDataPart', async () => {
    const before = vscodeModel.requests.length
    await send(dialect, 'vscode/gpt-4o', ['image'])
    expect(vscodeModel.requests.length).toBe(before + 1)
    const parts = vscodeModel.lastRequest!.messages.at(-1)!.content as Array<{ mimeType?: string; data?: Uint8Array }>
    const image = parts.find((p) => p.mimeType === 'image/png')
    expect(Buffer.from(image!.data!)).toEqual(PNG)
  })

  it('vscode-bridge: a PDF as a LanguageModelDataPart for a model configured to read documents', async () => {
    await send(dialect, 'vscode/claude-sonnet-4', ['pdf'])
    const parts = vscodeDocs.lastRequest!.messages.at(-1)!.content as Array<{ mimeType?: string; data?: Uint8Array }>
    const doc = parts.find((p) => p.mimeType === 'application/pdf')
    expect(Buffer.from(doc!.data!)).toEqual(PDF)
  })
})

describe('audio and video', () => {
  it('chat input_audio → openai-compatible input_audio (wav) on an audio model', async () => {
    await send('chat', 'oai/gpt-4o-audio-preview', ['audio'])
    expect(userContent.openai(last(up.oai))).toContainEqual(expected.openai.audio)
  })

  it('chat input_audio and a video file → gemini inlineData audio/wav and video/mp4', async () => {
    await send('chat', `gem/${geminiFx.MODEL}`, ['audio', 'video'])
    const parts = userContent.gemini(last(up.gem))
    expect(parts).toContainEqual(expected.gemini.audio)
    expect(parts).toContainEqual(expected.gemini.video)
  })

  it('Responses input_file holding a video → gemini inlineData video/mp4', async () => {
    await send('responses', `gem/${geminiFx.MODEL}`, ['video'])
    expect(userContent.gemini(last(up.gem))).toContainEqual(expected.gemini.video)
  })

  it('a video file → a Bedrock Converse video block', async () => {
    await send('chat', 'aws/amazon.nova-pro-v1:0', ['video'])
    expect(userContent.bedrock(last(up.aws))).toContainEqual(expected.bedrock.video)
  })
})
