import type { ChatRequest, Message, Part } from './types.js'

/**
 * A documented estimate for providers without a tokenizer: about four
 * characters of English per token (OpenAI's rule of thumb), counted on UTF-16
 * length, plus a small per-message overhead as chat templates add.
 */
export function estimateTextTokens(text: string): number {
  if (text.length === 0) return 0
  return Math.max(1, Math.ceil(text.length / 4))
}

const IMAGE_TOKENS = 765 // OpenAI's cost of one high-detail 512px tile set; a fair middle estimate
const MESSAGE_OVERHEAD = 4

function partTokens(part: Part): number {
  switch (part.type) {
    case 'text':
      return estimateTextTokens(part.text)
    case 'thinking':
      return estimateTextTokens(part.text)
    case 'tool_call':
      return estimateTextTokens(part.name) + estimateTextTokens(part.arguments)
    case 'tool_result': {
      let n = 0
      for (const p of part.content) n += partTokens(p)
      return n
    }
    case 'image':
      return IMAGE_TOKENS
    case 'document':
      return part.text ? estimateTextTokens(part.text) : Math.ceil((part.data?.length ?? 0) / 8)
    case 'audio':
    case 'video':
      return Math.ceil((part.data?.length ?? 0) / 16)
  }
}

export function estimateMessageTokens(message: Message): number {
  let n = MESSAGE_OVERHEAD
  for (const p of message.content) n += partTokens(p)
  return n
}

export function estimateRequestTokens(req: Pick<ChatRequest, 'messages' | 'tools'>): number {
  let n = 3
  for (const m of req.messages) n += estimateMessageTokens(m)
  if (req.tools) for (const t of req.tools) n += estimateTextTokens(t.name + (t.description ?? '') + JSON.stringify(t.parameters))
  return n
}
