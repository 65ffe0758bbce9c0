import { newId, nowSeconds } from '../../core/ids.js'
import { base64Head, isHttpUrl, mimeFromName, parseDataUrl, sniffMime } from '../../core/media.js'
import type { ChatEvent, ChatRequest, ChatResult, ContentPart, FinishReason, Message, Part, ToolChoice, Usage } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { Progress } from '../../streaming/progress.js'
import type { SseFrame } from '../../streaming/sse.js'
import type { ChatCompletionRequest } from './schemas.js'

export interface DecodeOptions {
  /** Accept http(s) media URLs (otherwise only data: URLs). */
  allowRemoteMedia: boolean
}

type WireContent = ChatCompletionRequest['messages'][number]['content']

export function decodeChat(body: ChatCompletionRequest, opts: DecodeOptions): ChatRequest {
  if (body.n != null && body.n > 1) {
    throw new GatewayError('invalid_request', 'n > 1 is not supported by this gateway: request one choice at a time.', { param: 'n', code: 'unsupported_value' })
  }
  const messages: Message[] = body.messages.map((m, i): Message => {
    const at = `messages[${i}]`
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: decodeContent(m.content, `${at}.content`, opts) }
      case 'user':
        return withName({ role: 'user', content: decodeContent(m.content, `${at}.content`, opts) }, m.name)
      case 'assistant': {
        const content: Part[] = m.content == null ? [] : decodeContent(m.content, `${at}.content`, opts)
        for (const tc of m.tool_calls ?? []) content.push({ type: 'tool_call', id: tc.id, name: tc.function.name, arguments: tc.function.arguments })
        return withName({ role: 'assistant', content }, m.name)
      }
      case 'tool': {
        const content = decodeContent(m.content, `${at}.content`, opts).filter((p) => p.type === 'text' || p.type === 'image')
        return { role: 'tool', content: [{ type: 'tool_result', callId: m.tool_call_id, content: content as Array<{ type: 'text'; text: string }> }] }
      }
    }
  })
  const req: ChatRequest = { model: body.model, messages, stream: body.stream === true }
  if (body.tools?.length) {
    req.tools = body.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      parameters: t.function.parameters ?? { type: 'object', properties: {} },
      ...(t.function.strict != null ? { strict: t.function.strict } : {}),
    }))
  }
  if (body.tool_choice !== undefined) req.toolChoice = decodeToolChoice(body.tool_choice, req)
  if (body.parallel_tool_calls !== undefined) req.parallelToolCalls = body.parallel_tool_calls
  const max = body.max_completion_tokens ?? body.max_tokens
  if (max != null) req.maxTokens = max
  if (body.temperature != null) req.temperature = body.temperature
  if (body.top_p != null) req.topP = body.top_p
  if (body.stop != null) req.stop = typeof body.stop === 'string' ? [body.stop] : body.stop
  if (body.seed != null) req.seed = body.seed
  if (body.user !== undefined) req.user = body.user
  if (body.reasoning_effort != null) req.reasoningEffort = body.reasoning_effort
  if (body.prompt_cache_key !== undefined) req.promptCacheKey = body.prompt_cache_key
  if (body.metadata) req.metadata = body.metadata
  const rf = body.response_format
  if (rf) {
    if (rf.type === 'json_schema') {
      req.responseFormat = {
        type: 'json_schema',
        name: rf.json_schema.name,
        schema: rf.json_schema.schema ?? {},
        ...(rf.json_schema.strict != null ? { strict: rf.json_schema.strict } : {}),
        ...(rf.json_schema.description ? { description: rf.json_schema.description } : {}),
      }
    } else req.responseFormat = { type: rf.type }
  }
  return req
}

function withName(m: Message, name: string | undefined): Message {
  if (name) m.name = name
  return m
}

function decodeToolChoice(choice: NonNullable<ChatCompletionRequest['tool_choice']>, req: ChatRequest): ToolChoice {
  if (typeof choice === 'string') {
    if (choice === 'required' && !req.tools?.length) throw new GatewayError('invalid_request', "tool_choice 'required' needs at least one tool in 'tools'.", { param: 'tool_choice' })
    return choice
  }
  const name = choice.function.name
  if (!req.tools?.some((t) => t.name === name)) {
    throw new GatewayError('invalid_request', `tool_choice names the function "${name}", which is not in 'tools'.`, { param: 'tool_choice' })
  }
  return { name }
}

export function decodeContent(content: WireContent, param: string, opts: DecodeOptions): Part[] {
  if (content == null) return []
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  return content.map((p, i): ContentPart => {
    const at = `${param}[${i}]`
    switch (p.type) {
      case 'text':
        return { type: 'text', text: p.text }
      case 'refusal':
        return { type: 'text', text: p.refusal }
      case 'image_url':
        return { type: 'image', ...mediaFromUrl(p.image_url.url, `${at}.image_url.url`, opts), ...(p.image_url.detail ? { detail: p.image_url.detail } : {}) }
      case 'input_audio':
        return { type: 'audio', mimeType: AUDIO_FORMATS[p.input_audio.format.toLowerCase()] ?? `audio/${p.input_audio.format.toLowerCase()}`, data: p.input_audio.data }
      case 'file': {
        const title = p.file.filename ? { title: p.file.filename } : {}
        if (p.file.file_data) return filePart(fileData(p.file.file_data, p.file.filename), title)
        // Resolved from the Files API, for the caller's key, by the media stage (src/pipeline/media.ts).
        if (p.file.file_id) return { type: 'document', mimeType: mimeFromName(p.file.filename ?? '') ?? 'application/pdf', fileId: p.file.file_id, ...title }
        throw new GatewayError('invalid_request', `${at}.file: send file_data (base64, or a data: URL) or file_id (an upload from POST /v1/files).`, { param: `${at}.file`, code: 'missing_required_parameter' })
      }
    }
  })
}

const AUDIO_FORMATS: Record<string, string> = { wav: 'audio/wav', mp3: 'audio/mpeg', flac: 'audio/flac', ogg: 'audio/ogg', aac: 'audio/aac', m4a: 'audio/mp4', webm: 'audio/webm', pcm16: 'audio/pcm' }

/**
 * A file part by what it holds: clients send audio and video (for Gemini) as
 * files too, so `video/*` becomes a video part, `audio/*` audio, `image/*` an
 * image; anything else is a document.
 */
export function filePart(media: { mimeType: string; data: string }, title: { title?: string }): ContentPart {
  const kind = media.mimeType.split('/')[0].toLowerCase()
  if (kind === 'video' || kind === 'audio' || kind === 'image') return { type: kind, ...media }
  return { type: 'document', ...media, ...title }
}

/** `file_data` is a data: URL or bare base64; bare data gets its type from its bytes, then its name. */
export function fileData(fileData: string, filename: string | undefined): { mimeType: string; data: string } {
  const parsed = parseDataUrl(fileData)
  if (parsed) return parsed
  const sniffed = sniffMime(base64Head(fileData) ?? new Uint8Array())
  return { mimeType: sniffed ?? mimeFromName(filename ?? '') ?? 'application/pdf', data: fileData }
}

function mediaFromUrl(url: string, param: string, opts: DecodeOptions): { mimeType: string; data?: string; url?: string } {
  const data = parseDataUrl(url)
  if (data) return data
  if (isHttpUrl(url)) {
    if (!opts.allowRemoteMedia) {
      throw new GatewayError('invalid_request', `${param}: remote image URLs are disabled on this gateway; send the image as a data: URL (base64), or enable server.allowRemoteMedia.`, { param, code: 'invalid_image_url' })
    }
    return { mimeType: guessMime(url), url }
  }
  throw new GatewayError('invalid_request', `${param}: expected a data: URL with base64 data or an http(s) URL.`, { param, code: 'invalid_image_url' })
}

function guessMime(url: string): string {
  const path = url.split(/[?#]/)[0].toLowerCase()
  if (path.endsWith('.png')) return 'image/png'
  if (path.endsWith('.gif')) return 'image/gif'
  if (path.endsWith('.webp')) return 'image/webp'
  return 'image/jpeg'
}

export function openAIFinishReason(reason: FinishReason): 'stop' | 'length' | 'tool_calls' | 'content_filter' {
  switch (reason) {
    case 'length':
      return 'length'
    case 'tool_calls':
      return 'tool_calls'
    case 'content_filter':
      return 'content_filter'
    default:
      return 'stop'
  }
}

export function openAIUsage(u: Usage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cacheReadTokens ?? 0 },
  }
  if (u.reasoningTokens !== undefined) out.completion_tokens_details = { reasoning_tokens: u.reasoningTokens }
  return out
}

export interface EncodeMeta {
  /** The model name to report: what the client asked for. */
  model: string
}

export function encodeChatResult(result: ChatResult, meta: EncodeMeta): Record<string, unknown> {
  let text = ''
  let reasoning = ''
  const calls: Array<Record<string, unknown>> = []
  for (const p of result.content) {
    if (p.type === 'text') text += p.text
    else if (p.type === 'thinking') reasoning += p.text
    else calls.push({ id: p.id, type: 'function', function: { name: p.name, arguments: p.arguments } })
  }
  const message: Record<string, unknown> = { role: 'assistant', content: calls.length && !text ? null : text, refusal: null }
  if (calls.length) message.tool_calls = calls
  if (reasoning) message.reasoning_content = reasoning
  const out: Record<string, unknown> = {
    id: newId('chatcmpl-'),
    object: 'chat.completion',
    created: nowSeconds(),
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: openAIFinishReason(result.finishReason) }],
  }
  if (result.usage) out.usage = openAIUsage(result.usage)
  return out
}

/**
 * Encodes events as chat.completion.chunk frames. The first chunk carries the
 * role; tool calls arrive as `tool_calls` deltas with index, id and type once,
 * then argument fragments; the finish chunk has an empty delta; with
 * include_usage a last chunk has `choices: []` and the usage.
 */
export class ChatChunkEncoder {
  private readonly id = newId('chatcmpl-')
  private readonly created = nowSeconds()
  private prefixText: string | undefined
  private usage: Usage | undefined
  private finish: FinishReason | undefined
  /** With `no-empty` the role-only first chunk is left out and the role rides on the first real chunk (the SDK needs it). */
  private roleSent = false
  private roleless = false

  constructor(
    private readonly meta: EncodeMeta,
    private readonly includeUsage: boolean,
  ) {}

  /** Every chunk shares this prefix; built once, at the first chunk, when the served model is known (for `auto`). */
  private get prefix(): string {
    if (this.prefixText) return this.prefixText
    const text = `{"id":"${this.id}","object":"chat.completion.chunk","created":${this.created},"model":${JSON.stringify(this.meta.model)},"choices":`
    // A progress frame may come before `auto` is resolved: only cache the final name.
    if (this.meta.model !== 'auto') this.prefixText = text
    return text
  }

  private chunk(delta: Record<string, unknown>, finish: string | null = null): SseFrame {
    if (!this.roleSent) {
      this.roleSent = true
      if (this.roleless) delta = { role: 'assistant', ...delta }
    }
    const usage = this.includeUsage ? ',"usage":null' : ''
    return { data: `${this.prefix}[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${usage}}` }
  }

  start(): SseFrame[] {
    if (this.roleless) return []
    return [this.chunk({ role: 'assistant', content: '', refusal: null })]
  }

  omitEmpty(): void {
    this.roleless = true
  }

  /** A chunk with no choices (SDKs handle it like the usage chunk) carrying the gateway's `progress`. */
  progress(p: Progress): SseFrame[] {
    return [{ event: 'progress', data: `${this.prefix}[],"progress":${JSON.stringify(p)}}` }]
  }

  push(event: ChatEvent): SseFrame[] {
    switch (event.type) {
      case 'text':
        return event.text ? [this.chunk({ content: event.text })] : []
      case 'thinking':
        return event.text ? [this.chunk({ reasoning_content: event.text })] : []
      case 'tool_call_start':
        return [this.chunk({ tool_calls: [{ index: event.index, id: event.id, type: 'function', function: { name: event.name, arguments: '' } }] })]
      case 'tool_call_delta':
        return event.arguments ? [this.chunk({ tool_calls: [{ index: event.index, function: { arguments: event.arguments } }] })] : []
      case 'usage':
        this.usage = { ...this.usage, ...event.usage }
        return []
      case 'finish':
        this.finish = event.reason
        return []
      default:
        return []
    }
  }

  end(): SseFrame[] {
    const frames = [this.chunk({}, openAIFinishReason(this.finish ?? 'stop'))]
    if (this.includeUsage) {
      const usage = this.usage ?? { inputTokens: 0, outputTokens: 0 }
      frames.push({ data: `${this.prefix}[],"usage":${JSON.stringify(openAIUsage(usage))}}` })
    }
    frames.push({ data: '[DONE]' })
    return frames
  }
}
