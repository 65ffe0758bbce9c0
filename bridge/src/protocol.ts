/**
 * Bridge protocol v1: the JSON shapes exchanged with the gateway, and the
 * validation that turns an untrusted body into them. The gateway is the only
 * intended client, but the bridge listens on a socket, so every body is checked.
 */
import { BridgeError } from './errors.js'

export const PROTOCOL_VERSION = '1'

export type WirePart =
  | { type: 'text'; text: string }
  | { type: 'image'; mimeType: string; data: string }
  /** Other binary input (PDF …) for models that read it: a LanguageModelDataPart of that type. */
  | { type: 'data'; mimeType: string; data: string }
  | { type: 'tool_call'; callId: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; callId: string; content: WirePart[] }

export interface WireMessage {
  /** `system` is accepted defensively: vscode.lm has no system role, it becomes a User message. */
  role: 'user' | 'assistant' | 'system'
  content: WirePart[]
}

export interface WireTool {
  name: string
  description: string
  inputSchema?: Record<string, unknown>
}

export interface ChatBody {
  model: string
  messages: WireMessage[]
  tools?: WireTool[]
  toolMode?: 'auto' | 'required'
  modelOptions?: Record<string, unknown>
  justification?: string
}

export type CountTokensBody = { model: string; text: string } | { model: string; messages: WireMessage[] }

export interface EmbeddingsBody {
  model: string
  input: string[]
}

export type LmErrorCode = 'NoPermissions' | 'Blocked' | 'NotFound' | 'Unknown'

/** One NDJSON line of a /v1/chat answer. A stream ends with exactly one `end` or `error`. */
export type WireEvent =
  | { type: 'text'; text: string }
  | { type: 'tool_call'; callId: string; name: string; input: unknown }
  | { type: 'thinking'; text: string }
  | { type: 'error'; code: LmErrorCode; message: string }
  | { type: 'end' }

export interface WireModel {
  id: string
  name: string
  vendor: string
  family: string
  version: string
  maxInputTokens: number
  capabilities: { imageInput: boolean; toolCalling: boolean }
}

type Json = Record<string, unknown>

function invalid(message: string): BridgeError {
  return new BridgeError(400, 'invalid_request', message)
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function requireString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw invalid(`${where} must be a string`)
  return value
}

function requireModel(body: Json): string {
  const model = requireString(body.model, 'model')
  if (model.length === 0) throw invalid('model must not be empty')
  return model
}

/** Tool inputs are objects on the wire; a JSON string is tolerated because some clients double-encode. */
function parseToolInput(value: unknown, where: string): Record<string, unknown> {
  if (value === undefined || value === null) return {}
  if (typeof value === 'string') {
    try {
      const parsed: unknown = JSON.parse(value)
      if (isObject(parsed)) return parsed
    } catch {
      // fall through to the error below
    }
    throw invalid(`${where}.input must be a JSON object`)
  }
  if (!isObject(value)) throw invalid(`${where}.input must be an object`)
  return value
}

function parsePart(value: unknown, where: string, nested: boolean): WirePart {
  if (!isObject(value)) throw invalid(`${where} must be an object`)
  switch (value.type) {
    case 'text':
      return { type: 'text', text: requireString(value.text, `${where}.text`) }
    case 'image': {
      const mimeType = requireString(value.mimeType, `${where}.mimeType`)
      if (!mimeType.startsWith('image/')) throw invalid(`${where}.mimeType must be an image/* type`)
      return { type: 'image', mimeType, data: requireString(value.data, `${where}.data`) }
    }
    case 'data': {
      const mimeType = requireString(value.mimeType, `${where}.mimeType`)
      if (!/^[\w.+-]+\/[\w.+-]+$/.test(mimeType)) throw invalid(`${where}.mimeType must be a media type such as application/pdf`)
      return { type: 'data', mimeType, data: requireString(value.data, `${where}.data`) }
    }
    case 'tool_call':
      if (nested) throw invalid(`${where}: a tool result cannot contain a tool call`)
      return {
        type: 'tool_call',
        callId: requireString(value.callId, `${where}.callId`),
        name: requireString(value.name, `${where}.name`),
        input: parseToolInput(value.input, where),
      }
    case 'tool_result': {
      if (nested) throw invalid(`${where}: tool results cannot be nested`)
      const content = typeof value.content === 'string' ? [{ type: 'text', text: value.content }] : value.content
      if (!Array.isArray(content)) throw invalid(`${where}.content must be an array of parts`)
      return {
        type: 'tool_result',
        callId: requireString(value.callId, `${where}.callId`),
        content: content.map((p, i) => parsePart(p, `${where}.content[${i}]`, true)),
      }
    }
    default:
      throw invalid(`${where}.type must be one of text, image, data, tool_call, tool_result`)
  }
}

function parseMessage(value: unknown, where: string): WireMessage {
  if (!isObject(value)) throw invalid(`${where} must be an object`)
  const role = value.role
  if (role !== 'user' && role !== 'assistant' && role !== 'system') {
    throw invalid(`${where}.role must be user, assistant or system`)
  }
  // A bare string is the common shorthand for one text part.
  const content = typeof value.content === 'string' ? [{ type: 'text', text: value.content }] : value.content
  if (!Array.isArray(content)) throw invalid(`${where}.content must be an array of parts`)
  return { role, content: content.map((p, i) => parsePart(p, `${where}.content[${i}]`, false)) }
}

function parseMessages(value: unknown): WireMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('messages must be a non-empty array')
  return value.map((m, i) => parseMessage(m, `messages[${i}]`))
}

function parseTools(value: unknown): WireTool[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) throw invalid('tools must be an array')
  return value.map((t, i) => {
    if (!isObject(t)) throw invalid(`tools[${i}] must be an object`)
    const tool: WireTool = {
      name: requireString(t.name, `tools[${i}].name`),
      description: t.description === undefined ? '' : requireString(t.description, `tools[${i}].description`),
    }
    if (t.inputSchema !== undefined) {
      if (!isObject(t.inputSchema)) throw invalid(`tools[${i}].inputSchema must be an object`)
      tool.inputSchema = t.inputSchema
    }
    return tool
  })
}

export function parseChatBody(body: unknown): ChatBody {
  if (!isObject(body)) throw invalid('body must be a JSON object')
  const chat: ChatBody = { model: requireModel(body), messages: parseMessages(body.messages) }
  const tools = parseTools(body.tools)
  if (tools) chat.tools = tools
  if (body.toolMode !== undefined) {
    if (body.toolMode !== 'auto' && body.toolMode !== 'required') throw invalid('toolMode must be auto or required')
    chat.toolMode = body.toolMode
  }
  if (body.modelOptions !== undefined) {
    if (!isObject(body.modelOptions)) throw invalid('modelOptions must be an object')
    chat.modelOptions = body.modelOptions
  }
  if (body.justification !== undefined) chat.justification = requireString(body.justification, 'justification')
  return chat
}

export function parseCountTokensBody(body: unknown): CountTokensBody {
  if (!isObject(body)) throw invalid('body must be a JSON object')
  const model = requireModel(body)
  if (typeof body.text === 'string') return { model, text: body.text }
  if (body.messages !== undefined) return { model, messages: parseMessages(body.messages) }
  throw invalid('count-tokens needs either text (string) or messages (array)')
}

export function parseEmbeddingsBody(body: unknown): EmbeddingsBody {
  if (!isObject(body)) throw invalid('body must be a JSON object')
  const model = requireModel(body)
  const input = typeof body.input === 'string' ? [body.input] : body.input
  if (!Array.isArray(input) || input.length === 0 || !input.every((s) => typeof s === 'string')) {
    throw invalid('input must be a non-empty array of strings')
  }
  return { model, input }
}
