import { crc32 } from 'node:zlib'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aggregate } from '../../src/core/aggregate.js'
import type { ChatEvent, ChatRequest } from '../../src/core/types.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { GatewayError } from '../../src/errors.js'
import { bedrockProvider, type BedrockOptions } from '../../src/providers/bedrock/index.js'
import { sigV4Signer } from '../../src/providers/bedrock/sigv4.js'
import { fetchClient } from '../../src/providers/shared/http.js'
import type { CallContext } from '../../src/providers/types.js'
import { encodeMessage, eventFrame, exceptionFrame, verifySigV4, writeAwsError, writeEventStream, type AwsKeys } from '../fakes/bedrock.js'
import * as fx from '../fixtures/bedrock/converse.js'
import { startGateway } from '../helpers/gateway.js'
import { sleep, startUpstream, type FakeUpstream, type RecordedRequest } from '../helpers/upstream.js'
import { providerContract, type Scenario } from '../provider-contract.js'

const KEYS: AwsKeys = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'FwoGZXIvYXdzEBYaDEXAMPLESESSIONTOKEN//////////wEaDPq' }
const REGION = 'us-east-1'

const ctx = (signal = new AbortController().signal): CallContext => ({ signal, requestId: 'req_bedrock', meta: {} })
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: fx.MODEL, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text }] }], ...extra })

async function collect(stream: ReadableStream<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = []
  const reader = stream.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return out
    out.push(value)
  }
}

type Handler = (req: RecordedRequest, res: import('node:http').ServerResponse) => void | Promise<void>

/**
 * A fake Bedrock: every request must carry a valid SigV4 signature for KEYS
 * (otherwise it answers InvalidSignatureException, as AWS does); `route`
 * answers the rest.
 */
async function fakeBedrock(route: Handler): Promise<FakeUpstream & { signatureProblems: string[] }> {
  const signatureProblems: string[] = []
  const up = await startUpstream(async (req, res) => {
    const problem = verifySigV4(req, KEYS, REGION, 'bedrock')
    if (problem) {
      signatureProblems.push(problem)
      return writeAwsError(res, fx.errors.InvalidSignatureException)
    }
    await route(req, res)
  })
  return Object.assign(up, { signatureProblems })
}

function provider(up: FakeUpstream, extra: Partial<BedrockOptions> = {}, client = undiciClient()) {
  return bedrockProvider({ id: 'aws', region: REGION, ...KEYS, endpoint: up.url, controlEndpoint: up.url, models: [fx.MODEL], ...extra }, client, {})
}

function harness(client: 'undici' | 'fetch') {
  return async () => {
    let scenario: Scenario = 'text'
    let abortedBefore = 0
    const up = await fakeBedrock(async (req, res) => {
      const stream = req.url.endsWith('/converse-stream')
      const json = (value: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value))
      switch (scenario) {
        case 'error_500':
          return writeAwsError(res, fx.errors.InternalServerException)
        case 'error_401':
          return writeAwsError(res, fx.errors.UnrecognizedClientException)
        case 'error_429':
          return writeAwsError(res, fx.errors.ThrottlingException, { 'retry-after': '7' })
        case 'error_400':
          return writeAwsError(res, fx.errors.ValidationException)
        case 'tool_call':
          return stream ? writeEventStream(res, fx.streamToolUse.map(([t, p]) => eventFrame(t, p))) : json(fx.converseToolUse)
        case 'slow': {
          res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' })
          res.write(eventFrame('messageStart', { role: 'assistant', p: 'abc' }))
          for (let i = 0; i < 200 && !res.destroyed; i++) {
            res.write(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: `w${i} ` }, p: 'abcdef' }))
            await sleep(20)
          }
          return void res.end()
        }
        default:
          return stream ? writeEventStream(res, fx.streamText.map(([t, p]) => eventFrame(t, p))) : json(fx.converseText)
      }
    })
    return {
      provider: provider(up, {}, client === 'undici' ? undiciClient() : fetchClient()),
      model: fx.MODEL,
      supports: { tools: true, images: true, streaming: true },
      exactUsage: true,
      arrange(s: Scenario) {
        scenario = s
        abortedBefore = up.aborted
      },
      sawImage() {
        const body = up.requests[up.requests.length - 1].json()
        return body.messages[0].content.some((b: any) => b.image?.format === 'png' && typeof b.image.source?.bytes === 'string' && b.image.source.bytes.startsWith('iVBOR'))
      },
      upstreamAborted: () => up.aborted > abortedBefore,
      async teardown() {
        expect(up.signatureProblems).toEqual([])
        await up.close()
      },
    }
  }
}

providerContract('bedrock (undici)', harness('undici'))
providerContract('bedrock (fetch)', harness('fetch'))

describe('bedrock SigV4 signer', () => {
  // Vectors from AWS's Signature Version 4 test suite (aws-sig-v4-test-suite) and the IAM example of the SigV4 docs.
  const suite = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
  const now = new Date('2015-08-30T12:36:00Z')

  it('signs get-vanilla as the AWS test suite expects', async () => {
    const h = await sigV4Signer(suite).sign({ method: 'GET', url: 'https://example.amazonaws.com/', headers: {}, body: '', region: 'us-east-1', service: 'service', now, contentHashHeader: false })
    expect(h.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    )
    expect(h['x-amz-date']).toBe('20150830T123600Z')
  })

  it('signs post-vanilla as the AWS test suite expects', async () => {
    const h = await sigV4Signer(suite).sign({ method: 'POST', url: 'https://example.amazonaws.com/', headers: {}, body: '', region: 'us-east-1', service: 'service', now, contentHashHeader: false })
    expect(h.authorization).toContain('Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b')
  })

  it('signs the IAM ListUsers example of the SigV4 documentation', async () => {
    const h = await sigV4Signer(suite).sign({
      method: 'GET',
      url: 'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: '',
      region: 'us-east-1',
      service: 'iam',
      now,
      contentHashHeader: false,
    })
    expect(h.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    )
  })

  it('signs a path whose model id needs encoding (double-encoded canonical URI), verified by the fake', async () => {
    const up = await fakeBedrock((req, res) => writeEventStream(res, fx.streamText.map(([t, p]) => eventFrame(t, p))))
    const p = provider(up, { models: ['arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0'] })
    const result = await aggregate(p.chat(ask('hi', { model: 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0' }), ctx()))
    expect(result.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    expect(up.requests[0].url).toBe('/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream')
    expect(up.signatureProblems).toEqual([])
    await up.close()
  })

  it('is rejected by the fake when the secret is wrong (the fake really verifies)', async () => {
    const up = await fakeBedrock(() => {
      throw new Error('unreachable')
    })
    const p = provider(up, { secretAccessKey: 'not-the-secret' })
    await expect(aggregate(p.chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'auth', status: 502, retryable: false, message: expect.stringContaining('InvalidSignatureException') })
    expect(up.signatureProblems).toEqual(['signature mismatch'])
    await up.close()
  })

  it('sends and signs the session token, from config or from the environment', async () => {
    const up = await fakeBedrock((req, res) => writeEventStream(res, fx.streamText.map(([t, p]) => eventFrame(t, p))))
    const fromEnv = bedrockProvider({ id: 'aws', endpoint: up.url, models: [fx.MODEL] }, undiciClient(), {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: KEYS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: KEYS.secretAccessKey,
      AWS_SESSION_TOKEN: KEYS.sessionToken,
    })
    await aggregate(fromEnv.chat(ask('hi'), ctx()))
    expect(up.requests[0].headers['x-amz-security-token']).toBe(KEYS.sessionToken)
    expect(String(up.requests[0].headers.authorization)).toContain('x-amz-security-token')
    expect(up.signatureProblems).toEqual([])
    await up.close()
  })

  it('refuses to start without region or credentials, naming the settings', () => {
    expect(() => bedrockProvider({ id: 'aws', accessKeyId: 'a', secretAccessKey: 'b' }, undiciClient(), {})).toThrow(/AWS_REGION/)
    expect(() => bedrockProvider({ id: 'aws', region: 'us-east-1' }, undiciClient(), {})).toThrow(/AWS_ACCESS_KEY_ID/)
  })
})

describe('bedrock event-stream decoding', () => {
  it('decodes frames split at every byte boundary', async () => {
    const bytes = Buffer.concat(fx.streamToolUse.map(([t, p]) => eventFrame(t, p)))
    const up = await fakeBedrock(async (req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' })
      // Uneven pieces: 1, 2, 3 … bytes, so preludes, headers and CRCs straddle chunks.
      for (let i = 0, n = 1; i < bytes.length; i += n, n = (n % 17) + 1) {
        res.write(bytes.subarray(i, i + n))
        if (n % 5 === 0) await sleep(1)
      }
      res.end()
    })
    const result = await aggregate(provider(up).chat(ask('weather'), ctx()))
    expect(result.content).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_call', id: 'tooluse_Sv8PtqCFSc6yVFPEVzFUWg', name: 'get_weather', arguments: '{"city": "Paris"}' },
    ])
    expect(result.finishReason).toBe('tool_calls')
    expect(result.usage).toEqual({ inputTokens: 402, outputTokens: 54 })
    await up.close()
  })

  it('fails with a clear upstream error on a message CRC mismatch', async () => {
    const up = await fakeBedrock((req, res) => {
      const good = eventFrame('messageStart', { role: 'assistant' })
      const bad = eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hello' } })
      bad[bad.length - 10] ^= 0xff // flip payload bits; the message CRC no longer matches
      writeEventStream(res, [good, bad])
    })
    await expect(aggregate(provider(up).chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('message CRC mismatch') })
    await up.close()
  })

  it('fails on a prelude CRC mismatch and on a stream cut inside a frame', async () => {
    let mode: 'prelude' | 'cut' = 'prelude'
    const up = await fakeBedrock((req, res) => {
      const frame = eventFrame('messageStart', { role: 'assistant' })
      if (mode === 'prelude') frame[9] ^= 0x01
      writeEventStream(res, [mode === 'prelude' ? frame : frame.subarray(0, frame.length - 3)])
    })
    await expect(aggregate(provider(up).chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('prelude CRC mismatch') })
    mode = 'cut'
    await expect(aggregate(provider(up).chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'upstream', message: expect.stringContaining('ended inside a frame') })
    await up.close()
  })

  it('turns exception events into GatewayErrors after the text already sent', async () => {
    const cases: Array<[string, string, boolean]> = [
      ['throttlingException', 'rate_limit', true],
      ['validationException', 'invalid_request', false],
      ['modelStreamErrorException', 'upstream', true],
      ['internalServerException', 'upstream', true],
      ['serviceUnavailableException', 'unavailable', true],
    ]
    let current = cases[0]
    const up = await fakeBedrock((req, res) =>
      writeEventStream(res, [
        eventFrame('messageStart', { role: 'assistant' }),
        eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } }),
        exceptionFrame(current[0], `${current[0]} happened`),
      ]),
    )
    for (const c of cases) {
      current = c
      const events: ChatEvent[] = []
      const reader = provider(up).chat(ask('hi'), ctx()).getReader()
      let error: unknown
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          events.push(value)
        }
      } catch (err) {
        error = err
      }
      expect(events.filter((e) => e.type === 'text')).toEqual([{ type: 'text', text: 'Hel' }])
      expect(error).toBeInstanceOf(GatewayError)
      expect(error).toMatchObject({ kind: c[1], retryable: c[2], message: expect.stringContaining(`${c[0]} happened`) })
    }
    await up.close()
  })

  it('decodes non-string header types (AWS encodes :date-like headers as timestamps)', async () => {
    // A frame with a bool, an int32 and a timestamp header in front of the usual string ones.
    const headers = Buffer.concat([
      Buffer.from([4, ...Buffer.from('flag'), 0]),
      Buffer.from([3, ...Buffer.from('num'), 4, 0, 0, 1, 0]),
      Buffer.from([5, ...Buffer.from(':date'), 8, 0, 0, 1, 0x7a, 0x5e, 0x1c, 0x8f, 0x00]),
    ])
    const up = await fakeBedrock((req, res) => {
      const frames = fx.streamText.map(([t, p]) => eventFrame(t, p))
      // Rebuild the first frame with extra headers by hand, CRCs included.
      const base = encodeMessage([[':event-type', 'messageStart'], [':content-type', 'application/json'], [':message-type', 'event']], Buffer.from('{"role":"assistant"}'))
      const hlen = base.readUInt32BE(4)
      const payload = base.subarray(12 + hlen, base.length - 4)
      const allHeaders = Buffer.concat([headers, base.subarray(12, 12 + hlen)])
      const total = 12 + allHeaders.length + payload.length + 4
      const out = Buffer.alloc(total)
      out.writeUInt32BE(total, 0)
      out.writeUInt32BE(allHeaders.length, 4)
      out.writeUInt32BE(crc32(out.subarray(0, 8)), 8)
      allHeaders.copy(out, 12)
      payload.copy(out, 12 + allHeaders.length)
      out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4)
      writeEventStream(res, [out, ...frames.slice(1)])
    })
    const result = await aggregate(provider(up).chat(ask('hi'), ctx()))
    expect(result.content).toEqual([{ type: 'text', text: 'Hello, world!' }])
    await up.close()
  })
})

describe('bedrock request mapping', () => {
  let up: Awaited<ReturnType<typeof fakeBedrock>>
  beforeAll(async () => {
    up = await fakeBedrock((req, res) => {
      if (req.url.endsWith('/converse-stream')) return writeEventStream(res, fx.streamCached.map(([t, p]) => eventFrame(t, p)))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.converseText))
    })
  })
  afterAll(async () => {
    expect(up.signatureProblems).toEqual([])
    await up.close()
  })

  it('sends system prompts, tools, tool history, images and cache points in Converse form', async () => {
    const req: ChatRequest = {
      model: fx.MODEL,
      stream: true,
      maxTokens: 300,
      temperature: 0.2,
      topP: 0.9,
      stop: ['END'],
      toolChoice: 'required',
      tools: [{ name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } } }, cacheControl: { type: 'ephemeral' } }],
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You are terse.', cacheControl: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'A long document…', cacheControl: { type: 'ephemeral' } }, { type: 'image', mimeType: 'image/jpeg', data: '/9j/4AAQ' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_call', id: 'tooluse_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', content: [{ type: 'tool_result', callId: 'tooluse_1', content: [{ type: 'text', text: '18°C' }] }] },
        { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }] },
      ],
    }
    const result = await aggregate(provider(up).chat(req, ctx()))
    expect(result.content).toEqual([{ type: 'text', text: 'Cached answer.' }])
    expect(result.usage).toEqual({ inputTokens: 2060, outputTokens: 3, cacheReadTokens: 2048 })
    const sent = up.requests[up.requests.length - 1]
    expect(sent.headers['content-type']).toBe('application/json')
    expect(sent.json()).toEqual({
      system: [{ text: 'You are terse.' }, { cachePoint: { type: 'default' } }],
      messages: [
        { role: 'user', content: [{ text: 'A long document…' }, { cachePoint: { type: 'default' } }, { image: { format: 'jpeg', source: { bytes: '/9j/4AAQ' } } }] },
        { role: 'assistant', content: [{ text: 'Checking.' }, { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: { city: 'Paris' } } }] },
        // The tool result and the next user turn merge: Converse needs alternating roles.
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_1', content: [{ text: '18°C' }] } }, { text: 'And tomorrow?' }] },
      ],
      inferenceConfig: { maxTokens: 300, temperature: 0.2, topP: 0.9, stopSequences: ['END'] },
      toolConfig: {
        tools: [{ toolSpec: { name: 'get_weather', description: 'Weather for a city', inputSchema: { json: { type: 'object', properties: { city: { type: 'string' } } } } } }, { cachePoint: { type: 'default' } }],
        toolChoice: { any: {} },
      },
    })
  })

  it('uses Converse (not the stream) for non-streamed requests', async () => {
    const result = await aggregate(provider(up).chat(ask('hi', { stream: false }), ctx()))
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'Hello, world!' }], finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 5 } })
    expect(up.requests[up.requests.length - 1].url).toBe(`/model/${encodeURIComponent(fx.MODEL)}/converse`)
    expect(up.requests[up.requests.length - 1].headers.accept).toBe('application/json')
  })

  it('rejects input Bedrock cannot take with a 400 naming the field', async () => {
    const url = ask('x', { messages: [{ role: 'user', content: [{ type: 'image', mimeType: 'image/png', url: 'https://example.com/a.png' }] }] })
    await expect(aggregate(provider(up).chat(url, ctx()))).rejects.toMatchObject({ kind: 'invalid_request', status: 400, param: 'messages[0].content[0]' })
    const tiff = ask('x', { messages: [{ role: 'user', content: [{ type: 'image', mimeType: 'image/tiff', data: 'AAAA' }] }] })
    await expect(aggregate(provider(up).chat(tiff, ctx()))).rejects.toMatchObject({ kind: 'invalid_request', message: expect.stringContaining('image/tiff') })
  })
})

describe('bedrock thinking and token counting', () => {
  it('maps reasoningContent deltas to thinking with its signature, and sends budget_tokens', async () => {
    const up = await fakeBedrock((req, res) => writeEventStream(res, fx.streamReasoning.map(([t, p]) => eventFrame(t, p))))
    const result = await aggregate(provider(up).chat(ask('hi', { thinking: { type: 'enabled', budgetTokens: 2048 } }), ctx()))
    expect(result.content).toEqual([
      { type: 'thinking', text: 'The user says hi. Greet back.', signature: 'EqoBCkgIARABGAIiQL2Ut4yEXAMPLESIG' },
      { type: 'text', text: 'Hi!' },
    ])
    expect(up.requests[0].json().additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 2048 } })
    await up.close()
  })

  it('replays its own signed thinking in later turns and drops other providers\' thinking', async () => {
    const up = await fakeBedrock((req, res) => writeEventStream(res, fx.streamText.map(([t, p]) => eventFrame(t, p))))
    const messages: ChatRequest['messages'] = [
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content: [{ type: 'thinking', text: 'mine', signature: 'SIG', provider: 'aws' }, { type: 'thinking', text: 'theirs', signature: 'X', provider: 'other' }, { type: 'text', text: 'Hi!' }] },
      { role: 'user', content: [{ type: 'text', text: 'again' }] },
    ]
    await aggregate(provider(up).chat(ask('x', { messages }), ctx()))
    expect(up.requests[0].json().messages[1].content).toEqual([{ reasoningContent: { reasoningText: { text: 'mine', signature: 'SIG' } } }, { text: 'Hi!' }])
    await up.close()
  })

  it('counts tokens with CountTokens', async () => {
    const up = await fakeBedrock((req, res) => {
      expect(req.url).toBe(`/model/${encodeURIComponent(fx.MODEL)}/count-tokens`)
      expect(req.json()).toEqual({ input: { converse: { messages: [{ role: 'user', content: [{ text: 'hi' }] }], system: [{ text: 'sys' }] } } })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.countTokens))
    })
    const req = ask('x', { messages: [{ role: 'system', content: [{ type: 'text', text: 'sys' }] }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }] })
    expect(await provider(up).countTokens!(req, ctx())).toBe(21)
    expect(up.signatureProblems).toEqual([])
    await up.close()
  })
})

describe('bedrock error mapping', () => {
  const table: Array<[keyof typeof fx.errors, string, number, boolean]> = [
    ['ThrottlingException', 'rate_limit', 429, true],
    ['ModelNotReadyException', 'unavailable', 503, true],
    ['ServiceUnavailableException', 'unavailable', 503, true],
    ['AccessDeniedException', 'auth', 502, false],
    ['UnrecognizedClientException', 'auth', 502, false],
    ['ExpiredTokenException', 'auth', 502, false],
    ['ValidationException', 'invalid_request', 400, false],
    ['ResourceNotFoundException', 'not_found', 404, false],
    ['InternalServerException', 'upstream', 502, true],
    ['ModelTimeoutException', 'timeout', 504, true],
    ['ModelErrorException', 'upstream', 502, true],
  ]
  let up: Awaited<ReturnType<typeof fakeBedrock>>
  let current: keyof typeof fx.errors = 'ThrottlingException'
  beforeAll(async () => {
    up = await fakeBedrock((req, res) => writeAwsError(res, fx.errors[current]))
  })
  afterAll(() => up.close())

  it.each(table)('%s → %s %i (retryable %s)', async (type, kind, status, retryable) => {
    current = type
    const err = await aggregate(provider(up).chat(ask('hi'), ctx())).catch((e) => e)
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({ kind, status, retryable })
    expect(err.message).toContain('"aws"')
    expect(err.message).toContain(type)
    if (kind === 'auth') expect(err.code).toBe('provider_auth_error')
  })

  it('classifies by the __type field when the header is missing', async () => {
    const u = await fakeBedrock((req, res) => void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ __type: 'com.amazon.coral.validate#ValidationException', message: 'bad' })))
    await expect(aggregate(provider(u).chat(ask('hi'), ctx()))).rejects.toMatchObject({ kind: 'invalid_request', status: 400 })
    await u.close()
  })
})

describe('bedrock models and embeddings', () => {
  it('lists models with ListFoundationModels when none are configured', async () => {
    const up = await fakeBedrock((req, res) => {
      expect(req.method).toBe('GET')
      expect(req.url).toBe('/foundation-models')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.foundationModels))
    })
    const models = await provider(up, { models: undefined }).models()
    expect(models).toEqual([
      { id: fx.MODEL, name: 'Claude 3 Haiku', ownedBy: 'Anthropic', capabilities: { vision: true, streaming: true, embeddings: false } },
      { id: 'amazon.titan-embed-text-v2:0', name: 'Titan Text Embeddings V2', ownedBy: 'Amazon', capabilities: { vision: false, streaming: undefined, embeddings: true } },
    ])
    expect(up.signatureProblems).toEqual([])
    expect(await provider(up).models()).toEqual([{ id: fx.MODEL, ownedBy: 'aws' }])
    expect(up.requests).toHaveLength(1)
    await up.close()
  })

  it('embeds with Titan v2: one InvokeModel per text, in order, with dimensions and token counts', async () => {
    const up = await fakeBedrock(async (req, res) => {
      const body = req.json()
      expect(req.url).toBe('/model/amazon.titan-embed-text-v2%3A0/invoke')
      const n = Number(body.inputText.slice(5))
      await sleep((7 - (n % 7)) * 3) // answer out of order
      const vector = Array.from({ length: body.dimensions }, (_, i) => n + i / 1000)
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-bedrock-input-token-count': '3', 'x-amzn-bedrock-invocation-latency': '25' })
      res.end(JSON.stringify({ embedding: vector, embeddingsByType: { float: vector }, inputTextTokenCount: 3 }))
    })
    const input = Array.from({ length: 20 }, (_, i) => `text ${i}`)
    const result = await provider(up).embed!({ model: 'amazon.titan-embed-text-v2:0', input, dimensions: 256 }, ctx())
    expect(result.embeddings).toHaveLength(20)
    result.embeddings.forEach((v, i) => {
      expect(v).toHaveLength(256)
      expect(v[0]).toBe(i)
    })
    expect(result.usage).toEqual({ inputTokens: 60 })
    expect(up.requests[0].json()).toEqual({ inputText: expect.any(String), normalize: true, dimensions: 256 })
    expect(up.signatureProblems).toEqual([])
    await up.close()
  })

  it('embeds with Cohere in batches of at most 96 texts, reassembled in order', async () => {
    const up = await fakeBedrock((req, res) => {
      const body = req.json()
      expect(body).toMatchObject({ input_type: 'search_document', truncate: 'END', embedding_types: ['float'] })
      expect(body.texts.length).toBeLessThanOrEqual(96)
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-bedrock-input-token-count': String(body.texts.length * 2) })
      res.end(JSON.stringify({ id: 'emb-1', texts: body.texts, embeddings: { float: body.texts.map((t: string) => [Number(t.slice(2)), 0.5]) }, response_type: 'embeddings_by_type' }))
    })
    const input = Array.from({ length: 200 }, (_, i) => `t ${i}`)
    const result = await provider(up).embed!({ model: 'cohere.embed-english-v3', input }, ctx())
    // Batches go out concurrently: their arrival order is not the contract, their sizes and the reassembly are.
    expect(up.requests.map((r) => r.json().texts.length).sort((a: number, b: number) => b - a)).toEqual([96, 96, 8])
    expect(result.embeddings.map((v) => v[0])).toEqual(input.map((_, i) => i))
    expect(result.usage).toEqual({ inputTokens: 400 })
    await up.close()
  })

  it('refuses embeddings for other models, and a failed batch fails the request', async () => {
    const up = await fakeBedrock((req, res) => writeAwsError(res, fx.errors.ThrottlingException))
    await expect(provider(up).embed!({ model: fx.MODEL, input: ['x'] }, ctx())).rejects.toMatchObject({ kind: 'invalid_request', param: 'model' })
    await expect(provider(up).embed!({ model: 'amazon.titan-embed-text-v2:0', input: ['a', 'b', 'c'] }, ctx())).rejects.toMatchObject({ kind: 'rate_limit', retryable: true })
    await up.close()
  })
})

describe('bedrock through the gateway with the openai client', () => {
  it('streams and answers chat completions from a `type: "bedrock"` provider', async () => {
    const up = await fakeBedrock((req, res) => {
      if (req.url.endsWith('/converse-stream')) return writeEventStream(res, fx.streamText.map(([t, p]) => eventFrame(t, p)))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.converseToolUse))
    })
    const gw = await startGateway({ providers: [{ id: 'aws', type: 'bedrock', region: REGION, ...KEYS, endpoint: up.url, models: [fx.MODEL] }] })
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 })
    const stream = await client.chat.completions.create({ model: `aws/${fx.MODEL}`, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
    let text = ''
    let usage: OpenAI.CompletionUsage | undefined | null
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      if (chunk.usage) usage = chunk.usage
    }
    expect(text).toBe('Hello, world!')
    expect(usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 })
    const done = await client.chat.completions.create({
      model: `aws/${fx.MODEL}`,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    })
    expect(done.choices[0].finish_reason).toBe('tool_calls')
    expect(done.choices[0].message.tool_calls?.[0]).toMatchObject({ id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } })
    expect(up.signatureProblems).toEqual([])
    await gw.close()
    await up.close()
  })
})
