import { parseDataUrl } from '../../core/media.js'
import type { ChatRequest, Message, Part, TextPart } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { WireChatBody, WireMessage, WirePart } from './wire.js'

type ResultContent = Extract<WirePart, { type: 'tool_result' }>['content'][number]

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param, code: 'unsupported_content' })
}

function image(part: { mimeType: string; data?: string; url?: string }, param: string): { type: 'image'; mimeType: string; data: string } {
  if (part.data) return { type: 'image', mimeType: part.mimeType, data: part.data }
  const parsed = part.url ? parseDataUrl(part.url) : null
  if (parsed) return { type: 'image', mimeType: parsed.mimeType, data: parsed.data }
  throw invalid('VS Code language models take images as data only: send the image as a base64 data: URL.', param)
}

/**
 * Routing only sends a binary document to a VS Code model configured to read
 * documents (routing.models: documents: true); others get its text when
 * media.conversions.pdfToText is on, or a 400 before this point.
 */
function document(part: { mimeType: string; data?: string }, param: string): { type: 'data'; mimeType: string; data: string } {
  if (part.data) return { type: 'data', mimeType: part.mimeType, data: part.data }
  throw invalid('VS Code language models take documents as data only: send the document as base64.', param)
}

function toolInput(args: string, param: string): Record<string, unknown> {
  if (args.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(args)
  } catch {
    throw new GatewayError('invalid_request', 'Tool call arguments must be a JSON object; these are not valid JSON.', { param })
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('invalid_request', 'Tool call arguments must be a JSON object.', { param })
  }
  return value as Record<string, unknown>
}

function resultContent(part: Extract<Part, { type: 'tool_result' }>, param: string): ResultContent[] {
  const out: ResultContent[] = []
  // vscode.lm has no error flag on tool results; the model still needs to know.
  if (part.isError) out.push({ type: 'text', text: 'Error:' })
  part.content.forEach((c, i) => {
    if (c.type === 'text') out.push({ type: 'text', text: c.text })
    else if (c.type === 'image') out.push(image(c, `${param}.content[${i}]`))
    else if (c.text !== undefined) out.push({ type: 'text', text: c.text })
    else out.push(document(c, `${param}.content[${i}]`))
  })
  return out
}

function part(p: Part, param: string): WirePart | undefined {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: p.text }
    case 'image':
      return image(p, param)
    case 'document':
      if (p.text !== undefined) return { type: 'text', text: p.title ? `${p.title}\n\n${p.text}` : p.text }
      return document(p, param)
    case 'audio':
    case 'video':
      throw invalid(`VS Code language models cannot take ${p.type} input.`, param)
    case 'tool_call':
      return { type: 'tool_call', callId: p.id, name: p.name, input: toolInput(p.arguments, `${param}.arguments`) }
    case 'tool_result':
      return { type: 'tool_result', callId: p.callId, content: resultContent(p, param) }
    case 'thinking':
      // vscode.lm takes no thinking input; the model's earlier reasoning is not replayed.
      return undefined
  }
}

/**
 * vscode.lm knows only User and Assistant. System prompts become the first
 * User message; tool results go in the User message right after the
 * Assistant's tool calls (several results, and text sent along with them,
 * merge into that one message), as VS Code requires.
 */
export function toWireMessages(messages: Message[]): WireMessage[] {
  const system: TextPart[] = []
  const out: WireMessage[] = []
  messages.forEach((m, i) => {
    const param = `messages[${i}].content`
    if (m.role === 'system') {
      m.content.forEach((p, j) => {
        if (p.type === 'text') system.push(p)
        else if (p.type === 'document' && p.text !== undefined) system.push({ type: 'text', text: p.text })
        else throw invalid('System messages sent to a VS Code model may contain text only.', `${param}[${j}]`)
      })
      return
    }
    const content: WirePart[] = []
    m.content.forEach((p, j) => {
      const w = part(p, `${param}[${j}]`)
      if (w) content.push(w)
    })
    const role = m.role === 'assistant' ? 'assistant' : 'user'
    const last = out[out.length - 1]
    if (role === 'user' && last?.role === 'user' && last.content.some((p) => p.type === 'tool_result')) {
      // Results stay first, right after the calls, as VS Code checks; text sent along follows them.
      const results = content.filter((p) => p.type === 'tool_result')
      let at = 0
      while (at < last.content.length && last.content[at].type === 'tool_result') at++
      last.content.splice(at, 0, ...results)
      last.content.push(...content.filter((p) => p.type !== 'tool_result'))
    } else if (content.length) {
      out.push({ role, content })
    }
  })
  if (system.length) out.unshift({ role: 'user', content: [{ type: 'text', text: system.map((p) => p.text).join('\n\n') }] })
  return out
}

/** OpenAI-style sampling options, which Copilot forwards to its endpoint; other vendors ignore what they do not know. */
function modelOptions(req: ChatRequest): Record<string, unknown> | undefined {
  const o: Record<string, unknown> = {}
  if (req.temperature !== undefined) o.temperature = req.temperature
  if (req.topP !== undefined) o.top_p = req.topP
  if (req.maxTokens !== undefined) o.max_tokens = req.maxTokens
  if (req.stop?.length) o.stop = req.stop
  if (req.seed !== undefined) o.seed = req.seed
  const extra = req.providerOptions?.modelOptions
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) Object.assign(o, extra)
  return Object.keys(o).length ? o : undefined
}

export function toWireChat(req: ChatRequest, justification: string | undefined): WireChatBody {
  const body: WireChatBody = { model: req.model, messages: toWireMessages(req.messages) }
  if (body.messages.length === 0) throw new GatewayError('invalid_request', 'The conversation has no message a VS Code model can read.', { param: 'messages' })
  const choice = req.toolChoice
  if (req.tools?.length && choice !== 'none') {
    const named = typeof choice === 'object' ? choice.name : undefined
    const tools = named ? req.tools.filter((t) => t.name === named) : req.tools
    if (named && tools.length === 0) throw new GatewayError('invalid_request', `tool_choice names "${named}", which is not among the tools.`, { param: 'tool_choice' })
    body.tools = tools.map((t) => ({ name: t.name, description: t.description ?? '', inputSchema: t.parameters }))
    // vscode.lm cannot name a tool: "required" with only that tool offered is the same thing.
    if (choice === 'required' || named) body.toolMode = 'required'
  }
  const options = modelOptions(req)
  if (options) body.modelOptions = options
  const j = typeof req.providerOptions?.justification === 'string' ? req.providerOptions.justification : justification
  if (j) body.justification = j
  return body
}
