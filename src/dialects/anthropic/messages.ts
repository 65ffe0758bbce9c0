import { newId } from '../../core/ids.js'
import { isHttpUrl, mimeFromName } from '../../core/media.js'
import { readSignature } from '../../core/thinking-signature.js'
import type { CacheControl, ChatEvent, ChatRequest, ChatResult, FinishReason, ImagePart, DocumentPart, Message, Part, TextPart, ToolChoice, Usage } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { SseFrame } from '../../streaming/sse.js'
import { anthropicErrorBody } from './errors.js'
import type { ContentBlock, CountTokensRequest, MessagesRequest } from './schemas.js'

export interface DecodeOptions {
  /** Accept http(s) media URLs (otherwise only base64 sources). */
  allowRemoteMedia: boolean
}

export interface Decoded {
  req: ChatRequest
  /** For each core message, the index of the wire message it came from (errors name the client's index). */
  wireIndex: number[]
}

/** Anthropic Messages request (or count_tokens request) → core request. */
/** A count_tokens body is a Messages body without the generation fields. */
export type DecodableBody = CountTokensRequest & Partial<Pick<MessagesRequest, 'max_tokens' | 'stream' | 'stop_sequences' | 'temperature' | 'top_p' | 'top_k'>>

export function decodeMessages(body: DecodableBody, opts: DecodeOptions): Decoded {
  const messages: Message[] = []
  const wireIndex: number[] = []
  const push = (m: Message, i: number) => {
    messages.push(m)
    wireIndex.push(i)
  }
  if (body.system !== undefined) {
    const content = typeof body.system === 'string' ? (body.system ? [{ type: 'text' as const, text: body.system }] : []) : body.system.map(textPart)
    if (content.length) push({ role: 'system', content }, -1)
  }
  body.messages.forEach((m, i) => {
    const at = `messages[${i}].content`
    const blocks: ContentBlock[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content
    if (m.role === 'system') {
      const content: Part[] = blocks.map((b, j) => {
        if (b.type !== 'text') throw new GatewayError('invalid_request', `${at}[${j}]: a system message may only contain text blocks, got "${b.type}".`, { param: `${at}[${j}].type` })
        return textPart(b)
      })
      push({ role: 'system', content }, i)
      return
    }
    if (m.role === 'assistant') {
      push({ role: 'assistant', content: blocks.map((b, j) => assistantPart(b, `${at}[${j}]`, opts)) }, i)
      return
    }
    // Tool results lead a user turn (Anthropic requires it); in core they are a tool message.
    const results: Part[] = []
    const rest: Part[] = []
    blocks.forEach((b, j) => {
      if (b.type === 'tool_result') results.push(toolResult(b, `${at}[${j}]`, opts))
      else rest.push(userPart(b, `${at}[${j}]`, opts))
    })
    if (results.length) push({ role: 'tool', content: results }, i)
    if (rest.length || !results.length) push({ role: 'user', content: rest }, i)
  })

  const req: ChatRequest = { model: body.model, messages, stream: body.stream === true }
  if (body.max_tokens !== undefined) req.maxTokens = body.max_tokens
  if (body.temperature !== undefined) req.temperature = body.temperature
  if (body.top_p !== undefined) req.topP = body.top_p
  if (body.top_k !== undefined) req.topK = body.top_k
  if (body.stop_sequences?.length) req.stop = body.stop_sequences
  const tools = (body.tools ?? []).filter((t) => t.input_schema !== undefined || t.type == null || t.type === 'custom')
  if (tools.length) {
    // Server tools (web_search_…, bash_…) have no schema here: nothing could run them, so they are left out.
    req.tools = tools.map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parameters: t.input_schema ?? { type: 'object', properties: {} },
      ...(t.cache_control ? { cacheControl: cache(t.cache_control) } : {}),
    }))
  }
  const tc = body.tool_choice
  if (tc) {
    req.toolChoice = toolChoice(tc, req)
    if ('disable_parallel_tool_use' in tc && tc.disable_parallel_tool_use) req.parallelToolCalls = false
  }
  const th = body.thinking
  if (th) {
    if (th.type === 'enabled') req.thinking = th.budget_tokens ? { type: 'enabled', budgetTokens: th.budget_tokens } : { type: 'enabled' }
    else if (th.type === 'disabled') req.thinking = { type: 'disabled' }
    else if (th.type === 'adaptive') req.thinking = { type: 'adaptive' }
  }
  const effort = body.output_config?.effort
  if (effort === 'low' || effort === 'medium' || effort === 'high' || effort === 'minimal') req.reasoningEffort = effort
  else if (effort === 'max') req.reasoningEffort = 'high'
  const format = body.output_config?.format
  if (format?.type === 'json_schema' && format.schema) req.responseFormat = { type: 'json_schema', name: 'output', schema: format.schema }
  const userId = body.metadata?.user_id
  if (userId) req.metadata = { user_id: userId }
  return { req, wireIndex }
}

function cache(c: { type: 'ephemeral'; ttl?: string } | null | undefined): CacheControl | undefined {
  if (!c) return undefined
  return c.ttl ? { type: 'ephemeral', ttl: c.ttl } : { type: 'ephemeral' }
}

function textPart(b: { text: string; cache_control?: { type: 'ephemeral'; ttl?: string } | null }): TextPart {
  const p: TextPart = { type: 'text', text: b.text }
  const cc = cache(b.cache_control)
  if (cc) p.cacheControl = cc
  return p
}

function toolChoice(tc: NonNullable<MessagesRequest['tool_choice']>, req: ChatRequest): ToolChoice {
  switch (tc.type) {
    case 'auto':
      return 'auto'
    case 'none':
      return 'none'
    case 'any':
      if (!req.tools?.length) throw new GatewayError('invalid_request', 'tool_choice.type "any" needs at least one tool in `tools`.', { param: 'tool_choice' })
      return 'required'
    case 'tool':
      if (!req.tools?.some((t) => t.name === tc.name)) throw new GatewayError('invalid_request', `tool_choice names the tool "${tc.name}", which is not in \`tools\`.`, { param: 'tool_choice.name' })
      return { name: tc.name }
  }
}

type Block<T extends ContentBlock['type']> = Extract<ContentBlock, { type: T }>

function media(b: Block<'image'> | Block<'document'>, at: string, opts: DecodeOptions): ImagePart | DocumentPart {
  const cc = cache(b.cache_control)
  const extra = cc ? { cacheControl: cc } : {}
  if (b.type === 'image') {
    const src = b.source
    if (src.type === 'base64') return { type: 'image', mimeType: src.media_type, data: src.data, ...extra }
    // Files API uploads are resolved for the caller's key by the media stage; the type comes from the bytes.
    if (src.type === 'file') return { type: 'image', mimeType: 'image/png', fileId: src.file_id, ...extra }
    return { type: 'image', mimeType: mimeFromName(src.url) ?? 'image/jpeg', url: remote(src.url, `${at}.source.url`, opts), ...extra }
  }
  const doc: DocumentPart = { type: 'document', mimeType: 'application/pdf', ...extra }
  if (b.title) doc.title = b.title
  if (b.context) doc.context = b.context
  if (b.citations?.enabled) doc.citations = true
  const s = b.source
  switch (s.type) {
    case 'base64':
      return { ...doc, mimeType: s.media_type, data: s.data }
    case 'text':
      return { ...doc, mimeType: s.media_type ?? 'text/plain', text: s.data }
    case 'url':
      return { ...doc, mimeType: mimeFromName(s.url) ?? 'application/pdf', url: remote(s.url, `${at}.source.url`, opts) }
    case 'file':
      return { ...doc, fileId: s.file_id }
    case 'content': {
      const text = typeof s.content === 'string' ? s.content : s.content.map((c) => c.text ?? '').join('\n')
      return { ...doc, mimeType: 'text/plain', text }
    }
  }
}

function remote(url: string, param: string, opts: DecodeOptions): string {
  if (!isHttpUrl(url)) throw new GatewayError('invalid_request', `${param}: expected an http(s) URL.`, { param })
  if (!opts.allowRemoteMedia) {
    throw new GatewayError('invalid_request', `${param}: URL sources are disabled on this gateway; send the data as a base64 source, or enable server.allowRemoteMedia.`, { param })
  }
  return url
}

function userPart(b: ContentBlock, at: string, opts: DecodeOptions): Part {
  switch (b.type) {
    case 'text':
      return textPart(b)
    case 'image':
    case 'document':
      return media(b, at, opts)
    default:
      throw new GatewayError('invalid_request', `${at}: "${b.type}" blocks may only appear in assistant messages.`, { param: `${at}.type` })
  }
}

function assistantPart(b: ContentBlock, at: string, opts: DecodeOptions): Part {
  switch (b.type) {
    case 'text':
      return textPart(b)
    case 'tool_use':
      return { type: 'tool_call', id: b.id, name: b.name, arguments: JSON.stringify(b.input) }
    case 'thinking': {
      const sig = b.signature ? readSignature(b.signature) : undefined
      return { type: 'thinking', text: b.thinking, ...(sig?.signature ? { signature: sig.signature } : {}), ...(sig?.provider ? { provider: sig.provider } : {}) }
    }
    case 'redacted_thinking': {
      const sig = readSignature(b.data)
      return { type: 'thinking', text: '', redacted: sig.signature, ...(sig.provider ? { provider: sig.provider } : {}) }
    }
    case 'image':
    case 'document':
      return media(b, at, opts)
    case 'tool_result':
      throw new GatewayError('invalid_request', `${at}: "tool_result" blocks may only appear in user messages.`, { param: `${at}.type` })
  }
}

function toolResult(b: Block<'tool_result'>, at: string, opts: DecodeOptions): Part {
  const content: Array<TextPart | ImagePart | DocumentPart> =
    b.content === undefined ? [] : typeof b.content === 'string' ? [{ type: 'text', text: b.content }] : b.content.map((c, k) => (c.type === 'text' ? textPart(c) : media(c, `${at}.content[${k}]`, opts)))
  const cc = cache(b.cache_control)
  return { type: 'tool_result', callId: b.tool_use_id, content, ...(b.is_error ? { isError: true } : {}), ...(cc ? { cacheControl: cc } : {}) }
}

// ---------------------------------------------------------------------------
// Encoding

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal'

export function stopReason(reason: FinishReason): StopReason {
  switch (reason) {
    case 'length':
      return 'max_tokens'
    case 'tool_calls':
      return 'tool_use'
    case 'stop_sequence':
      return 'stop_sequence'
    case 'content_filter':
      return 'refusal'
    default:
      return 'end_turn'
  }
}

/**
 * Anthropic counts cache reads and writes apart from `input_tokens`; core
 * `inputTokens` is the whole prompt (as OpenAI's prompt_tokens), so they are
 * taken out here.
 */
export function anthropicUsage(u: Usage): { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number } {
  const read = u.cacheReadTokens ?? 0
  const write = u.cacheWriteTokens ?? 0
  return { input_tokens: Math.max(0, u.inputTokens - read - write), output_tokens: u.outputTokens, cache_creation_input_tokens: write, cache_read_input_tokens: read }
}

/** A provider's estimated prompt count gives way to the gateway's count (exact where the provider has a tokenizer). */
function settled(usage: Usage | undefined, meta: EncodeMeta, outputChars: number): Usage {
  if (!usage) return { inputTokens: meta.inputTokens, outputTokens: estimateOutput(outputChars), estimated: true }
  return usage.estimated && meta.inputTokens > 0 ? { ...usage, inputTokens: meta.inputTokens } : usage
}

/** The documented estimate (core/tokens.ts: ~4 characters a token) for providers that report no usage. */
function estimateOutput(chars: number): number {
  return chars ? Math.max(1, Math.ceil(chars / 4)) : 0
}

export interface EncodeMeta {
  /** The model name to report: what the client asked for. */
  model: string
  /** The prompt's token count (the provider's, or the estimate) when the provider reports none. */
  inputTokens: number
}

function toolInput(args: string): Record<string, unknown> {
  if (!args) return {}
  try {
    const v = JSON.parse(args) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v }
  } catch {
    // The model produced broken JSON; the client still gets the text rather than nothing.
    return { _raw_arguments: args }
  }
}

export function encodeMessage(result: ChatResult, meta: EncodeMeta): Record<string, unknown> {
  const content: Array<Record<string, unknown>> = []
  let chars = 0
  for (const p of result.content) {
    if (p.type === 'text') {
      if (!p.text) continue
      chars += p.text.length
      content.push({ type: 'text', text: p.text })
    } else if (p.type === 'thinking') {
      chars += p.text.length
      content.push(p.redacted ? { type: 'redacted_thinking', data: p.redacted } : { type: 'thinking', thinking: p.text, signature: p.signature ?? '' })
    } else {
      chars += p.arguments.length
      content.push({ type: 'tool_use', id: p.id, name: p.name, input: toolInput(p.arguments) })
    }
  }
  const usage = settled(result.usage, meta, chars)
  return {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model: meta.model,
    content,
    stop_reason: stopReason(result.finishReason),
    stop_sequence: result.stopSequence ?? null,
    usage: anthropicUsage(usage),
  }
}

type OpenBlock = { kind: 'text' | 'thinking' | 'tool_use'; index: number } | undefined

/**
 * Encodes core events as Anthropic's stream: message_start (deferred to the
 * first real event, so that a provider's own prompt count can fill it), ping,
 * content blocks opened and closed one after another (text, thinking and tool
 * calls of one turn in one message), message_delta with the stop reason and
 * usage, message_stop. Every frame has its `event:` line.
 */
export class MessageStreamEncoder {
  private readonly id = newId('msg_')
  private started = false
  private open: OpenBlock
  private next = 0
  private readonly toolBlocks = new Map<number, number>()
  private usage: Usage | undefined
  private finish: FinishReason | undefined
  private stopSequence: string | undefined
  private chars = 0

  constructor(readonly meta: EncodeMeta) {}

  private frame(event: string, data: string): SseFrame {
    return { event, data }
  }

  private begin(out: SseFrame[]): void {
    if (this.started) return
    this.started = true
    const usage = anthropicUsage(settled(this.usage, this.meta, 0))
    usage.output_tokens = 0
    const message = { id: this.id, type: 'message', role: 'assistant', model: this.meta.model, content: [], stop_reason: null, stop_sequence: null, usage }
    out.push(this.frame('message_start', JSON.stringify({ type: 'message_start', message })), this.frame('ping', '{"type":"ping"}'))
  }

  private close(out: SseFrame[]): void {
    if (!this.open) return
    out.push(this.frame('content_block_stop', `{"type":"content_block_stop","index":${this.open.index}}`))
    this.open = undefined
  }

  private openBlock(out: SseFrame[], kind: 'text' | 'thinking' | 'tool_use', block: Record<string, unknown>): number {
    this.close(out)
    const index = this.next++
    this.open = { kind, index }
    out.push(this.frame('content_block_start', JSON.stringify({ type: 'content_block_start', index, content_block: block })))
    return index
  }

  private delta(index: number, delta: string): SseFrame {
    return this.frame('content_block_delta', `{"type":"content_block_delta","index":${index},"delta":${delta}}`)
  }

  start(): SseFrame[] {
    return []
  }

  push(event: ChatEvent): SseFrame[] {
    if (event.type === 'start') return []
    const out: SseFrame[] = []
    if (event.type === 'usage') {
      this.usage = { ...this.usage, ...event.usage }
      this.begin(out)
      return out
    }
    this.begin(out)
    switch (event.type) {
      case 'text': {
        if (!event.text) break
        this.chars += event.text.length
        const index = this.open?.kind === 'text' ? this.open.index : this.openBlock(out, 'text', { type: 'text', text: '' })
        out.push(this.delta(index, `{"type":"text_delta","text":${JSON.stringify(event.text)}}`))
        break
      }
      case 'thinking': {
        if (event.redacted) {
          this.openBlock(out, 'thinking', { type: 'redacted_thinking', data: event.redacted })
          this.close(out)
          break
        }
        this.chars += event.text.length
        const index = this.open?.kind === 'thinking' ? this.open.index : this.openBlock(out, 'thinking', { type: 'thinking', thinking: '', signature: '' })
        if (event.text) out.push(this.delta(index, `{"type":"thinking_delta","thinking":${JSON.stringify(event.text)}}`))
        if (event.signature) out.push(this.delta(index, `{"type":"signature_delta","signature":${JSON.stringify(event.signature)}}`))
        break
      }
      case 'tool_call_start': {
        const index = this.openBlock(out, 'tool_use', { type: 'tool_use', id: event.id, name: event.name, input: {} })
        this.toolBlocks.set(event.index, index)
        break
      }
      case 'tool_call_delta': {
        if (!event.arguments) break
        this.chars += event.arguments.length
        const index = this.toolBlocks.get(event.index)
        // Deltas of a call whose block is already closed still go to its index: the SDK applies them by index.
        if (index !== undefined) out.push(this.delta(index, `{"type":"input_json_delta","partial_json":${JSON.stringify(event.arguments)}}`))
        break
      }
      case 'finish':
        this.finish = event.reason
        this.stopSequence = event.stopSequence
        break
    }
    return out
  }

  end(): SseFrame[] {
    const out: SseFrame[] = []
    this.begin(out)
    this.close(out)
    const usage = anthropicUsage(settled(this.usage, this.meta, this.chars))
    const delta = { type: 'message_delta', delta: { stop_reason: stopReason(this.finish ?? (this.toolBlocks.size ? 'tool_calls' : 'stop')), stop_sequence: this.stopSequence ?? null }, usage }
    out.push(this.frame('message_delta', JSON.stringify(delta)), this.frame('message_stop', '{"type":"message_stop"}'))
    return out
  }

  error(err: GatewayError): SseFrame[] {
    const body = anthropicErrorBody(err)
    return [this.frame('error', JSON.stringify({ type: body.type, error: body.error }))]
  }
}
