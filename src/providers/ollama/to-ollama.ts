import type { ChatRequest, Message, Part } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * Core request → Ollama's native /api/chat body. Sampling parameters go in
 * `options` (Ollama's names: num_predict, top_k …); the provider config's
 * `options` are the defaults, the request's parameters override them, and
 * `providerOptions.options` overrides both.
 */
export interface OllamaDefaults {
  options?: Record<string, unknown>
  keepAlive?: string | number
}

interface OllamaMessage {
  role: 'system' | 'user' | 'assistant' | 'tool'
  content: string
  images?: string[]
  thinking?: string
  tool_calls?: Array<{ function: { name: string; arguments: Record<string, unknown> } }>
  tool_name?: string
}

export function toOllamaChatBody(req: ChatRequest, defaults: OllamaDefaults): Record<string, unknown> {
  const body: Record<string, unknown> = { model: req.model, messages: toOllamaMessages(req.messages), stream: req.stream }
  const tools = req.toolChoice === 'none' ? [] : (req.tools ?? []).filter((t) => typeof req.toolChoice !== 'object' || t.name === req.toolChoice.name)
  if (tools.length) {
    body.tools = tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters } }))
  }
  const options: Record<string, unknown> = { ...defaults.options }
  if (req.maxTokens !== undefined) options.num_predict = req.maxTokens
  if (req.temperature !== undefined) options.temperature = req.temperature
  if (req.topP !== undefined) options.top_p = req.topP
  if (req.topK !== undefined) options.top_k = req.topK
  if (req.seed !== undefined) options.seed = req.seed
  if (req.stop?.length) options.stop = req.stop
  const { options: extraOptions, ...extra } = req.providerOptions ?? {}
  if (extraOptions && typeof extraOptions === 'object') Object.assign(options, extraOptions)
  if (Object.keys(options).length) body.options = options
  if (defaults.keepAlive !== undefined) body.keep_alive = defaults.keepAlive
  const f = req.responseFormat
  if (f?.type === 'json_object') body.format = 'json'
  else if (f?.type === 'json_schema') body.format = f.schema
  if (req.thinking) body.think = req.thinking.type !== 'disabled'
  else if (req.reasoningEffort) body.think = req.reasoningEffort === 'minimal' ? 'low' : req.reasoningEffort
  // keep_alive, think, format … given per request win over everything above.
  Object.assign(body, extra)
  return body
}

export function toOllamaMessages(messages: Message[]): OllamaMessage[] {
  const toolNames = new Map<string, string>()
  const out: OllamaMessage[] = []
  for (const [i, m] of messages.entries()) {
    if (m.role === 'tool') {
      for (const p of m.content) {
        if (p.type !== 'tool_result') continue
        const msg: OllamaMessage = { role: 'tool', content: '' }
        collect(p.content, msg, `messages[${i}]`)
        if (p.isError) msg.content = `Error: ${msg.content}`
        const name = toolNames.get(p.callId)
        if (name) msg.tool_name = name
        out.push(msg)
      }
      continue
    }
    const msg: OllamaMessage = { role: m.role, content: '' }
    if (m.role === 'assistant') {
      for (const p of m.content) {
        if (p.type === 'text') msg.content += p.text
        else if (p.type === 'thinking' && p.text) msg.thinking = (msg.thinking ?? '') + p.text
        else if (p.type === 'tool_call') {
          toolNames.set(p.id, p.name)
          ;(msg.tool_calls ??= []).push({ function: { name: p.name, arguments: toolArguments(p.arguments, `messages[${i}]`) } })
        }
      }
    } else collect(m.content, msg, `messages[${i}]`)
    out.push(msg)
  }
  return out
}

function collect(parts: Part[], msg: OllamaMessage, at: string): void {
  for (const p of parts) {
    switch (p.type) {
      case 'text':
        msg.content += msg.content && msg.role === 'system' ? `\n${p.text}` : p.text
        break
      case 'image':
        if (!p.data) {
          throw new GatewayError('invalid_request', `${at}: Ollama takes images inline only; send the image as a base64 data: URL instead of a link.`, { param: `${at}.content`, code: 'invalid_image_url' })
        }
        ;(msg.images ??= []).push(p.data)
        break
      case 'document':
        if (p.text === undefined) throw unsupported(at, 'documents other than plain text')
        msg.content += p.text
        break
      case 'tool_result':
        for (const c of p.content) if (c.type === 'text') msg.content += c.text
        break
      case 'audio':
        throw unsupported(at, 'audio')
      case 'video':
        throw unsupported(at, 'video')
      default:
        break
    }
  }
}

function unsupported(at: string, what: string): GatewayError {
  return new GatewayError('invalid_request', `${at}: Ollama's chat API does not take ${what}.`, { param: `${at}.content`, code: 'unsupported_content' })
}

/** Ollama wants tool-call arguments as an object, not JSON text. */
function toolArguments(text: string, at: string): Record<string, unknown> {
  if (!text.trim()) return {}
  try {
    const value = JSON.parse(text) as unknown
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    /* reported below */
  }
  throw new GatewayError('invalid_request', `${at}: tool call arguments must be a JSON object for Ollama.`, { param: `${at}.tool_calls`, code: 'invalid_value' })
}
