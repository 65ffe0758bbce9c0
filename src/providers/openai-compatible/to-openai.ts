import type { ChatRequest, Message, Part, ToolResultPart } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/** Core request → OpenAI /v1/chat/completions body. Shared by every OpenAI-wire provider. */
export function toOpenAIChatBody(req: ChatRequest, model: string, stream: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = { model, messages: toOpenAIMessages(req.messages) }
  if (stream) {
    body.stream = true
    body.stream_options = { include_usage: true }
  }
  if (req.tools?.length) {
    body.tools = req.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters, ...(t.strict !== undefined ? { strict: t.strict } : {}) },
    }))
    if (req.toolChoice !== undefined) {
      body.tool_choice = typeof req.toolChoice === 'object' ? { type: 'function', function: { name: req.toolChoice.name } } : req.toolChoice
    }
    if (req.parallelToolCalls !== undefined) body.parallel_tool_calls = req.parallelToolCalls
  }
  if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens
  if (req.temperature !== undefined) body.temperature = req.temperature
  if (req.topP !== undefined) body.top_p = req.topP
  if (req.stop?.length) body.stop = req.stop
  if (req.seed !== undefined) body.seed = req.seed
  if (req.n !== undefined && req.n !== 1) body.n = req.n
  if (req.user !== undefined) body.user = req.user
  if (req.reasoningEffort !== undefined) body.reasoning_effort = req.reasoningEffort
  if (req.promptCacheKey !== undefined) body.prompt_cache_key = req.promptCacheKey
  if (req.responseFormat) {
    const f = req.responseFormat
    body.response_format =
      f.type === 'json_schema'
        ? { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, ...(f.strict !== undefined ? { strict: f.strict } : {}), ...(f.description ? { description: f.description } : {}) } }
        : { type: f.type }
  }
  if (req.providerOptions) Object.assign(body, req.providerOptions)
  return body
}

export function toOpenAIMessages(messages: Message[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const [i, m] of messages.entries()) {
    if (m.role === 'tool') {
      for (const p of m.content) if (p.type === 'tool_result') out.push(toolMessage(p))
      continue
    }
    if (m.role === 'assistant') {
      const calls = m.content.filter((p) => p.type === 'tool_call')
      const text = m.content.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('')
      const msg: Record<string, unknown> = { role: 'assistant', content: calls.length && !text ? null : text }
      if (calls.length) msg.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments || '{}' } }))
      if (m.name) msg.name = m.name
      out.push(msg)
      continue
    }
    const parts = m.content.map((p, j) => contentPart(p, `messages[${i}].content[${j}]`)).filter((p): p is Record<string, unknown> => p !== null)
    const allText = parts.every((p) => p.type === 'text')
    const msg: Record<string, unknown> = {
      role: m.role,
      content: allText ? parts.map((p) => p.text as string).join(m.role === 'system' ? '\n' : '') : parts,
    }
    if (m.name) msg.name = m.name
    out.push(msg)
  }
  return out
}

function toolMessage(p: ToolResultPart): Record<string, unknown> {
  const text = p.content.map((c) => (c.type === 'text' ? c.text : '')).join('')
  return { role: 'tool', tool_call_id: p.callId, content: p.isError ? `Error: ${text}` : text }
}

const AUDIO_FORMATS: Record<string, string> = { 'audio/wav': 'wav', 'audio/x-wav': 'wav', 'audio/wave': 'wav', 'audio/mpeg': 'mp3', 'audio/mp3': 'mp3' }

function contentPart(p: Part, param: string): Record<string, unknown> | null {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: p.text }
    case 'image':
      return { type: 'image_url', image_url: { url: p.url ?? `data:${p.mimeType};base64,${p.data}`, ...(p.detail ? { detail: p.detail } : {}) } }
    case 'audio': {
      if (!p.data) throw unsupported('audio by link: the OpenAI chat API takes input_audio as base64 data only', param)
      const mime = p.mimeType.toLowerCase()
      return { type: 'input_audio', input_audio: { data: p.data, format: AUDIO_FORMATS[mime] ?? mime.replace(/^audio\//, '') } }
    }
    case 'document':
      if (p.text !== undefined) return { type: 'text', text: p.text }
      if (!p.data) throw unsupported('documents by link: the OpenAI chat API takes file parts as file_data (base64) only', param)
      return { type: 'file', file: { filename: p.title ?? defaultName(p.mimeType), file_data: `data:${p.mimeType};base64,${p.data}` } }
    case 'video':
      throw unsupported('video input: the OpenAI chat API has no video content part', param)
    default:
      return null
  }
}

function unsupported(what: string, param: string): GatewayError {
  return new GatewayError('invalid_request', `${param}: this provider cannot take ${what}.`, { param, code: 'unsupported_content' })
}

/** OpenAI reads the file type from its name's extension. */
function defaultName(mime: string): string {
  const ext: Record<string, string> = { 'application/pdf': 'pdf', 'text/plain': 'txt', 'text/markdown': 'md', 'text/csv': 'csv', 'application/json': 'json' }
  return `document.${ext[mime.toLowerCase()] ?? 'pdf'}`
}
