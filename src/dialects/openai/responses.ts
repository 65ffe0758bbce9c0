import { newId, nowSeconds } from '../../core/ids.js'
import { isHttpUrl, mimeFromName, parseDataUrl } from '../../core/media.js'
import { fileData, filePart } from './chat.js'
import type { ChatEvent, ChatRequest, ChatResult, ContentPart, FinishReason, Message, Part, ToolDefinition, Usage } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { SseFrame } from '../../streaming/sse.js'
import { openAIErrorBody } from './errors.js'
import type { FunctionTool, InputItem, ResponsesRequest } from './responses-schemas.js'

export interface DecodeOptions {
  allowRemoteMedia: boolean
}

/** A tool inside a `namespace` tool is offered to the model under one flat name; answers are mapped back. */
export type NamespaceMap = Map<string, { namespace: string; name: string }>

export interface DecodedResponses {
  req: ChatRequest
  /** For each core message, the `input` index it came from (-1 for instructions). */
  wireIndex: number[]
  namespaces: NamespaceMap
}

export function flatName(namespace: string, name: string): string {
  return `${namespace}__${name}`
}

function unsupported(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param, code: 'unsupported_parameter' })
}

/**
 * Responses request → core request. The gateway keeps no conversation state:
 * the client sends the whole history in `input`, including the items this
 * gateway answered before (function_call, assistant output_text messages).
 */
export function decodeResponses(body: ResponsesRequest, opts: DecodeOptions): DecodedResponses {
  if (body.previous_response_id) {
    throw unsupported(
      'previous_response_id',
      'previous_response_id is not supported: this gateway keeps no conversation state (responses are not stored). Send the whole conversation in `input`, with store: false.',
    )
  }
  if (body.conversation != null) throw unsupported('conversation', 'conversation is not supported: this gateway keeps no conversation state. Send the whole conversation in `input`.')
  if (body.background) throw unsupported('background', 'background responses are not supported: this gateway stores no responses to poll. Use stream: true for long answers.')

  const namespaces: NamespaceMap = new Map()
  const tools: ToolDefinition[] = []
  for (const t of body.tools ?? []) {
    if (t.type === 'function') tools.push(functionTool(t as FunctionTool))
    else if (t.type === 'namespace' && t.name) {
      for (const inner of t.tools ?? []) {
        if (inner.type !== 'function') continue
        const f = inner as FunctionTool
        const flat = flatName(t.name, f.name)
        namespaces.set(flat, { namespace: t.name, name: f.name })
        tools.push(functionTool({ ...f, name: flat }))
      }
    }
    // web_search, file_search, custom … : nothing here could run them; ignored so that such clients keep working.
  }

  const messages: Message[] = []
  const wireIndex: number[] = []
  if (body.instructions) {
    messages.push({ role: 'system', content: [{ type: 'text', text: body.instructions }] })
    wireIndex.push(-1)
  }
  if (typeof body.input === 'string') {
    messages.push({ role: 'user', content: [{ type: 'text', text: body.input }] })
    wireIndex.push(0)
  } else {
    body.input.forEach((item, i) => decodeItem(item, `input[${i}]`, i, messages, wireIndex, opts))
  }

  const req: ChatRequest = { model: body.model, messages, stream: body.stream === true }
  if (tools.length) req.tools = tools
  const tc = body.tool_choice
  if (tc !== undefined) {
    if (typeof tc === 'string') {
      if (tc === 'required' && !tools.length) throw new GatewayError('invalid_request', "tool_choice 'required' needs at least one function tool in 'tools'.", { param: 'tool_choice' })
      req.toolChoice = tc
    } else if (tc.type === 'function' && typeof tc.name === 'string') {
      const name = tc.name
      if (!tools.some((t) => t.name === name)) throw new GatewayError('invalid_request', `tool_choice names the function "${name}", which is not in 'tools'.`, { param: 'tool_choice.name' })
      req.toolChoice = { name }
    }
    // Other objects (allowed_tools, hosted tools) leave the choice to the model.
  }
  if (body.parallel_tool_calls != null) req.parallelToolCalls = body.parallel_tool_calls
  if (body.max_output_tokens != null) req.maxTokens = body.max_output_tokens
  if (body.temperature != null) req.temperature = body.temperature
  if (body.top_p != null) req.topP = body.top_p
  const effort = body.reasoning?.effort
  if (effort === 'minimal' || effort === 'low' || effort === 'medium' || effort === 'high') req.reasoningEffort = effort
  else if (effort === 'xhigh') req.reasoningEffort = 'high'
  if (body.prompt_cache_key !== undefined) req.promptCacheKey = body.prompt_cache_key
  if (body.metadata) req.metadata = body.metadata
  if (body.user !== undefined) req.user = body.user
  const f = body.text?.format
  if (f) {
    req.responseFormat =
      f.type === 'json_schema'
        ? { type: 'json_schema', name: f.name, schema: f.schema, ...(f.strict != null ? { strict: f.strict } : {}), ...(f.description ? { description: f.description } : {}) }
        : { type: f.type }
  }
  return { req, wireIndex, namespaces }
}

function functionTool(t: FunctionTool): ToolDefinition {
  return {
    name: t.name,
    ...(t.description ? { description: t.description } : {}),
    parameters: t.parameters ?? { type: 'object', properties: {} },
    ...(t.strict != null ? { strict: t.strict } : {}),
  }
}

/** Appends an item; an assistant turn's text and calls, and consecutive outputs, become one core message each. */
function decodeItem(item: InputItem, at: string, index: number, messages: Message[], wireIndex: number[], opts: DecodeOptions): void {
  const last = messages[messages.length - 1]
  const add = (m: Message) => {
    messages.push(m)
    wireIndex.push(index)
  }
  switch (item.type) {
    case undefined:
    case 'message': {
      const content = messageContent(item.content, `${at}.content`, opts)
      if (item.role === 'system' || item.role === 'developer') add({ role: 'system', content })
      else if (item.role === 'assistant') {
        if (last?.role === 'assistant' && !last.content.some((p) => p.type === 'tool_call')) last.content.push(...content)
        else add({ role: 'assistant', content })
      } else add({ role: 'user', content })
      return
    }
    case 'function_call': {
      const name = item.namespace ? flatName(item.namespace, item.name) : item.name
      const part: Part = { type: 'tool_call', id: item.call_id, name, arguments: item.arguments }
      if (last?.role === 'assistant') last.content.push(part)
      else add({ role: 'assistant', content: [part] })
      return
    }
    case 'function_call_output': {
      const content = typeof item.output === 'string' ? [{ type: 'text' as const, text: item.output }] : messageContent(item.output, `${at}.output`, opts)
      const part: Part = { type: 'tool_result', callId: item.call_id, content: content.filter((p) => p.type === 'text' || p.type === 'image' || p.type === 'document') }
      if (last?.role === 'tool') last.content.push(part)
      else add({ role: 'tool', content: [part] })
      return
    }
    case 'reasoning':
      return
    case 'item_reference':
      throw unsupported(`${at}.id`, `${at}: item_reference "${item.id}" cannot be resolved: this gateway keeps no conversation state. Send the item itself.`)
  }
}

type WireContent = Extract<InputItem, { role: string }>['content']

function messageContent(content: WireContent, param: string, opts: DecodeOptions): ContentPart[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  return content.map((p, i): ContentPart => {
    const at = `${param}[${i}]`
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        return { type: 'text', text: p.text }
      case 'refusal':
        return { type: 'text', text: p.refusal }
      case 'input_image': {
        const detail = p.detail ? { detail: p.detail } : {}
        // A Files API upload, resolved for the caller's key by the media stage; its type comes from its bytes.
        if (!p.image_url && p.file_id) return { type: 'image', mimeType: 'image/png', fileId: p.file_id, ...detail }
        if (!p.image_url) throw new GatewayError('invalid_request', `${at}: send image_url (a data: URL or an http(s) URL) or file_id.`, { param: `${at}.image_url`, code: 'missing_required_parameter' })
        const data = parseDataUrl(p.image_url)
        if (data) return { type: 'image', ...data, ...detail }
        if (isHttpUrl(p.image_url) && opts.allowRemoteMedia) return { type: 'image', mimeType: mimeFromName(p.image_url) ?? 'image/jpeg', url: p.image_url, ...detail }
        throw new GatewayError('invalid_request', `${at}.image_url: expected a data: URL with base64 data${opts.allowRemoteMedia ? ' or an http(s) URL' : ' (remote URLs are disabled on this gateway)'}.`, {
          param: `${at}.image_url`,
          code: 'invalid_image_url',
        })
      }
      case 'input_file': {
        const title = p.filename ? { title: p.filename } : {}
        if (p.file_data) return filePart(fileData(p.file_data, p.filename), title)
        if (p.file_id) return { type: 'document', mimeType: mimeFromName(p.filename ?? '') ?? 'application/pdf', fileId: p.file_id, ...title }
        if (p.file_url) {
          if (!isHttpUrl(p.file_url)) throw new GatewayError('invalid_request', `${at}.file_url: expected an http(s) URL.`, { param: `${at}.file_url`, code: 'invalid_media_url' })
          if (!opts.allowRemoteMedia) {
            throw new GatewayError('invalid_request', `${at}.file_url: remote files are disabled on this gateway; send file_data (base64) or file_id, or enable server.allowRemoteMedia.`, { param: `${at}.file_url`, code: 'invalid_media_url' })
          }
          return { type: 'document', mimeType: mimeFromName(p.file_url) ?? mimeFromName(p.filename ?? '') ?? 'application/pdf', url: p.file_url, ...title }
        }
        throw new GatewayError('invalid_request', `${at}: send file_data, file_id or file_url.`, { param: `${at}.file_data`, code: 'missing_required_parameter' })
      }
    }
  })
}

// ---------------------------------------------------------------------------
// Encoding

export interface EncodeMeta {
  /** What the client asked for. */
  model: string
  /** The prompt's token count when the provider reports none. */
  inputTokens: number
  body: ResponsesRequest
  namespaces: NamespaceMap
}

export function responsesUsage(u: Usage): Record<string, unknown> {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cacheReadTokens ?? 0, cache_write_tokens: u.cacheWriteTokens ?? 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.inputTokens + u.outputTokens,
  }
}

function incomplete(reason: FinishReason | undefined): { reason: string } | null {
  if (reason === 'length') return { reason: 'max_output_tokens' }
  if (reason === 'content_filter') return { reason: 'content_filter' }
  return null
}

/** The fields every Response object echoes from the request. */
function envelope(id: string, createdAt: number, meta: EncodeMeta): Record<string, unknown> {
  const b = meta.body
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: meta.model,
    output: [] as unknown[],
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: null },
    service_tier: 'default',
    store: false,
    temperature: b.temperature ?? 1,
    text: { format: b.text?.format ?? { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    ...(b.user ? { user: b.user } : {}),
    metadata: b.metadata ?? {},
  }
}

function functionCallItem(id: string, callId: string, name: string, args: string, status: string, meta: EncodeMeta): Record<string, unknown> {
  const ns = meta.namespaces.get(name)
  return { id, type: 'function_call', status, arguments: args, call_id: callId, name: ns ? ns.name : name, ...(ns ? { namespace: ns.namespace } : {}) }
}

function messageItem(id: string, text: string, status: string): Record<string, unknown> {
  return { id, type: 'message', status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] }
}

function estimatedUsage(inputTokens: number, chars: number): Usage {
  return { inputTokens, outputTokens: chars ? Math.max(1, Math.ceil(chars / 4)) : 0, estimated: true }
}

export function encodeResponse(result: ChatResult, meta: EncodeMeta): Record<string, unknown> {
  const output: Array<Record<string, unknown>> = []
  let text: string | undefined
  let chars = 0
  const flush = () => {
    if (text !== undefined) output.push(messageItem(newId('msg_'), text, 'completed'))
    text = undefined
  }
  for (const p of result.content) {
    if (p.type === 'text') {
      if (!p.text) continue
      chars += p.text.length
      text = (text ?? '') + p.text
    } else if (p.type === 'tool_call') {
      flush()
      chars += p.arguments.length
      output.push(functionCallItem(newId('fc_'), p.id, p.name, p.arguments, 'completed', meta))
    }
  }
  flush()
  const out = envelope(newId('resp_'), nowSeconds(), meta)
  const inc = incomplete(result.finishReason)
  out.status = inc ? 'incomplete' : 'completed'
  out.incomplete_details = inc
  out.output = output
  out.usage = responsesUsage(result.usage ?? estimatedUsage(meta.inputTokens, chars))
  return out
}

type OpenItem = { kind: 'message'; id: string; outputIndex: number; text: string } | { kind: 'function_call'; id: string; outputIndex: number; core: number }

/**
 * Encodes core events as Responses stream events, each with `event:` and a
 * rising `sequence_number`: response.created first, items opened with
 * output_item.added (and content_part.added for text), deltas, the matching
 * .done events, then response.completed (or response.incomplete) carrying
 * the whole response.
 */
export class ResponseStreamEncoder {
  private seq = 0
  private readonly id = newId('resp_')
  private readonly createdAt = nowSeconds()
  private readonly output: Array<Record<string, unknown>> = []
  private open: OpenItem | undefined
  private readonly calls = new Map<number, { id: string; outputIndex: number; callId: string; name: string; args: string }>()
  private usage: Usage | undefined
  private finish: FinishReason | undefined
  private chars = 0

  constructor(readonly meta: EncodeMeta) {}

  private frame(type: string, fields: Record<string, unknown>): SseFrame {
    return { event: type, data: JSON.stringify({ type, ...fields, sequence_number: this.seq++ }) }
  }

  private snapshot(status: string): Record<string, unknown> {
    const r = envelope(this.id, this.createdAt, this.meta)
    r.status = status
    r.output = this.output
    return r
  }

  start(): SseFrame[] {
    const r = this.snapshot('in_progress')
    return [this.frame('response.created', { response: r }), this.frame('response.in_progress', { response: r })]
  }

  private close(out: SseFrame[]): void {
    const o = this.open
    if (!o) return
    this.open = undefined
    if (o.kind === 'message') {
      const part = { type: 'output_text', text: o.text, annotations: [], logprobs: [] }
      out.push(
        this.frame('response.output_text.done', { item_id: o.id, output_index: o.outputIndex, content_index: 0, text: o.text, logprobs: [] }),
        this.frame('response.content_part.done', { item_id: o.id, output_index: o.outputIndex, content_index: 0, part }),
      )
      const item = messageItem(o.id, o.text, 'completed')
      this.output[o.outputIndex] = item
      out.push(this.frame('response.output_item.done', { output_index: o.outputIndex, item }))
    } else {
      const call = this.calls.get(o.core)!
      out.push(this.frame('response.function_call_arguments.done', { item_id: call.id, output_index: call.outputIndex, arguments: call.args }))
      const item = functionCallItem(call.id, call.callId, call.name, call.args, 'completed', this.meta)
      this.output[call.outputIndex] = item
      out.push(this.frame('response.output_item.done', { output_index: call.outputIndex, item }))
    }
  }

  push(event: ChatEvent): SseFrame[] {
    const out: SseFrame[] = []
    switch (event.type) {
      case 'text': {
        if (!event.text) break
        this.chars += event.text.length
        let o = this.open
        if (o?.kind !== 'message') {
          this.close(out)
          o = { kind: 'message', id: newId('msg_'), outputIndex: this.output.length, text: '' }
          this.open = o
          const item = { id: o.id, type: 'message', status: 'in_progress', role: 'assistant', content: [] }
          this.output.push(item)
          out.push(
            this.frame('response.output_item.added', { output_index: o.outputIndex, item }),
            this.frame('response.content_part.added', { item_id: o.id, output_index: o.outputIndex, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }),
          )
        }
        o.text += event.text
        out.push(this.frame('response.output_text.delta', { item_id: o.id, output_index: o.outputIndex, content_index: 0, delta: event.text, logprobs: [] }))
        break
      }
      case 'tool_call_start': {
        this.close(out)
        const call = { id: newId('fc_'), outputIndex: this.output.length, callId: event.id, name: event.name, args: '' }
        this.calls.set(event.index, call)
        this.open = { kind: 'function_call', id: call.id, outputIndex: call.outputIndex, core: event.index }
        const item = functionCallItem(call.id, call.callId, call.name, '', 'in_progress', this.meta)
        this.output.push(item)
        out.push(this.frame('response.output_item.added', { output_index: call.outputIndex, item }))
        break
      }
      case 'tool_call_delta': {
        const call = this.calls.get(event.index)
        if (!call || !event.arguments) break
        this.chars += event.arguments.length
        call.args += event.arguments
        out.push(this.frame('response.function_call_arguments.delta', { item_id: call.id, output_index: call.outputIndex, delta: event.arguments }))
        break
      }
      case 'usage':
        this.usage = { ...this.usage, ...event.usage }
        break
      case 'finish':
        this.finish = event.reason
        break
      default:
        break
    }
    return out
  }

  end(): SseFrame[] {
    const out: SseFrame[] = []
    this.close(out)
    const inc = incomplete(this.finish)
    const r = this.snapshot(inc ? 'incomplete' : 'completed')
    r.incomplete_details = inc
    r.usage = responsesUsage(this.usage ?? estimatedUsage(this.meta.inputTokens, this.chars))
    out.push(this.frame(inc ? 'response.incomplete' : 'response.completed', { response: r }))
    return out
  }

  error(err: GatewayError): SseFrame[] {
    const e = openAIErrorBody(err).error
    const r = this.snapshot('failed')
    r.error = { code: e.code ?? e.type, message: e.message }
    return [this.frame('error', { code: e.code ?? e.type, message: e.message, param: e.param }), this.frame('response.failed', { response: r })]
  }
}
