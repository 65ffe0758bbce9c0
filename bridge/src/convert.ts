/**
 * Translation between protocol v1 shapes and vscode.lm objects, both ways.
 * Ordering rules (tool results right after the matching call) are left to
 * VS Code to enforce: the bridge passes the conversation through unchanged.
 */
import type * as vscode from 'vscode'
import { BridgeError } from './errors.js'
import type { ChatBody, WireEvent, WireMessage, WirePart } from './protocol.js'
import type { DataPart, LmApi } from './vscode-api.js'

type InputPart = vscode.LanguageModelTextPart | vscode.LanguageModelToolCallPart | vscode.LanguageModelToolResultPart | DataPart

function toDataPart(api: LmApi, part: { type: 'image' | 'data'; mimeType: string; data: string }): DataPart {
  if (!api.LanguageModelDataPart) {
    throw new BridgeError(
      400,
      'unsupported_content',
      `This VS Code (${api.version}) has no LanguageModelDataPart, so ${part.type === 'image' ? 'images' : 'files'} cannot be sent to its models. Update VS Code or send text only.`,
    )
  }
  const bytes = new Uint8Array(Buffer.from(part.data, 'base64'))
  return part.type === 'image' ? api.LanguageModelDataPart.image(bytes, part.mimeType) : new api.LanguageModelDataPart(bytes, part.mimeType)
}

function toToolResultContent(api: LmApi, content: WirePart[]): unknown[] {
  return content.map((part) => {
    if (part.type === 'text') return new api.LanguageModelTextPart(part.text)
    if (part.type === 'image' || part.type === 'data') return toDataPart(api, part)
    // parsePart already rejects nesting; this keeps the switch total.
    throw new BridgeError(400, 'invalid_request', 'tool result content must be text, image or data parts')
  })
}

function toInputPart(api: LmApi, part: WirePart): InputPart {
  switch (part.type) {
    case 'text':
      return new api.LanguageModelTextPart(part.text)
    case 'image':
    case 'data':
      return toDataPart(api, part)
    case 'tool_call':
      return new api.LanguageModelToolCallPart(part.callId, part.name, part.input)
    case 'tool_result':
      return new api.LanguageModelToolResultPart(part.callId, toToolResultContent(api, part.content))
  }
}

export function toChatMessage(api: LmApi, message: WireMessage): vscode.LanguageModelChatMessage {
  const parts = message.content.map((p) => toInputPart(api, p))
  // The 1.95 typings narrow each factory's part list; newer VS Code also accepts DataPart,
  // and VS Code itself rejects a part in the wrong role, which we want surfaced as-is.
  if (message.role === 'assistant') {
    return api.LanguageModelChatMessage.Assistant(parts as vscode.LanguageModelToolCallPart[])
  }
  return api.LanguageModelChatMessage.User(parts as vscode.LanguageModelToolResultPart[])
}

export function toChatMessages(api: LmApi, messages: WireMessage[]): vscode.LanguageModelChatMessage[] {
  return messages.map((m) => toChatMessage(api, m))
}

export function toRequestOptions(api: LmApi, body: ChatBody): vscode.LanguageModelChatRequestOptions {
  const options: vscode.LanguageModelChatRequestOptions = {}
  if (body.justification !== undefined) options.justification = body.justification
  if (body.modelOptions !== undefined) options.modelOptions = body.modelOptions
  if (body.tools && body.tools.length > 0) {
    options.tools = body.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema }))
  }
  if (body.toolMode !== undefined) {
    options.toolMode =
      body.toolMode === 'required' ? api.LanguageModelChatToolMode.Required : api.LanguageModelChatToolMode.Auto
  }
  return options
}

function thinkingText(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join('')
  return undefined
}

/**
 * One response part → one wire event, or undefined for parts the protocol does
 * not carry (future part types, data parts, prompt-tsx). Text and tool calls are
 * matched with instanceof, as the VS Code docs do. The thinking part is a proposed
 * API, usually not exposed to us, so it is also recognised by constructor name or
 * by shape: a string/array `value` plus the `id`/`metadata` fields its constructor sets.
 */
export function toWireEvent(api: LmApi, part: unknown): WireEvent | undefined {
  if (part instanceof api.LanguageModelTextPart) return { type: 'text', text: part.value }
  if (part instanceof api.LanguageModelToolCallPart) {
    return { type: 'tool_call', callId: part.callId, name: part.name, input: part.input }
  }
  if (typeof part !== 'object' || part === null) return undefined
  const value = (part as { value?: unknown }).value
  const text = thinkingText(value)
  // Metadata-only thinking parts (signatures, ids) carry nothing the protocol can express.
  if (text === undefined || text === '') return undefined
  if (api.LanguageModelThinkingPart && part instanceof api.LanguageModelThinkingPart) return { type: 'thinking', text }
  const ctorName = (part as { constructor?: { name?: unknown } }).constructor?.name
  if (ctorName === 'LanguageModelThinkingPart' || 'id' in part || 'metadata' in part || Array.isArray(value)) {
    return { type: 'thinking', text }
  }
  return undefined
}
