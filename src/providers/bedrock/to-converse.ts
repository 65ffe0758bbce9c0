import type { CacheControl, ChatRequest, DocumentPart, ImagePart, Message, Part, VideoPart } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * Core request → Bedrock Converse / ConverseStream body. Converse wants
 * strictly alternating user/assistant turns, system prompts apart, tool
 * results as user content, and prompt-cache breakpoints as `cachePoint` blocks
 * placed after the block they close.
 */
type Block = Record<string, unknown>

const CACHE_POINT: Block = { cachePoint: { type: 'default' } }
const IMAGE_FORMATS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/jpg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp' }
const VIDEO_FORMATS: Record<string, string> = {
  'video/mp4': 'mp4',
  'video/quicktime': 'mov',
  'video/mov': 'mov',
  'video/x-matroska': 'mkv',
  'video/webm': 'webm',
  'video/x-flv': 'flv',
  'video/mpeg': 'mpeg',
  'video/mpg': 'mpg',
  'video/x-ms-wmv': 'wmv',
  'video/3gpp': 'three_gp',
}
const DOC_FORMATS: Record<string, string> = {
  'application/pdf': 'pdf',
  'text/csv': 'csv',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'text/html': 'html',
  'text/plain': 'txt',
  'text/markdown': 'md',
}

export function toConverseBody(req: ChatRequest, opts: { thinkingProvider?: string } = {}): Record<string, unknown> {
  const system: Block[] = []
  const messages: Array<{ role: 'user' | 'assistant'; content: Block[] }> = []
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    if (!blocks.length) return
    const last = messages[messages.length - 1]
    if (last?.role === role) last.content.push(...blocks)
    else messages.push({ role, content: blocks })
  }
  req.messages.forEach((m, i) => {
    if (m.role === 'system') {
      for (const p of m.content) {
        if (p.type !== 'text') continue
        system.push({ text: p.text })
        if (p.cacheControl) system.push(CACHE_POINT)
      }
      return
    }
    push(m.role === 'assistant' ? 'assistant' : 'user', blocksOf(m, i, opts.thinkingProvider))
  })
  const body: Record<string, unknown> = { messages }
  if (system.length) body.system = system

  const inference: Record<string, unknown> = {}
  if (req.maxTokens !== undefined) inference.maxTokens = req.maxTokens
  if (req.temperature !== undefined) inference.temperature = req.temperature
  if (req.topP !== undefined) inference.topP = req.topP
  if (req.stop?.length) inference.stopSequences = req.stop
  if (Object.keys(inference).length) body.inferenceConfig = inference

  const usesTools = messages.some((m) => m.content.some((b) => 'toolUse' in b || 'toolResult' in b))
  // Converse has no "none" choice; it also rejects tool blocks in history without a toolConfig.
  if (req.tools?.length && (req.toolChoice !== 'none' || usesTools)) {
    const tools: Block[] = []
    for (const t of req.tools) {
      tools.push({ toolSpec: { name: t.name, ...(t.description ? { description: t.description } : {}), inputSchema: { json: t.parameters } } })
      if (t.cacheControl) tools.push(CACHE_POINT)
    }
    const config: Record<string, unknown> = { tools }
    const choice = req.toolChoice
    if (choice === 'required') config.toolChoice = { any: {} }
    else if (typeof choice === 'object') config.toolChoice = { tool: { name: choice.name } }
    else if (choice === 'auto') config.toolChoice = { auto: {} }
    body.toolConfig = config
  }

  const additional: Record<string, unknown> = {}
  if (req.topK !== undefined) additional.top_k = req.topK
  if (req.thinking?.type === 'enabled') additional.thinking = { type: 'enabled', budget_tokens: req.thinking.budgetTokens ?? 1024 }
  if (Object.keys(additional).length) body.additionalModelRequestFields = additional
  if (req.providerOptions) Object.assign(body, req.providerOptions)
  return body
}

function blocksOf(m: Message, i: number, thinkingProvider: string | undefined): Block[] {
  const out: Block[] = []
  m.content.forEach((p, j) => {
    const block = blockOf(p, `messages[${i}].content[${j}]`, thinkingProvider)
    if (!block) return
    out.push(block)
    if (cacheOf(p)) out.push(CACHE_POINT)
  })
  return out
}

function cacheOf(p: Part): CacheControl | undefined {
  return 'cacheControl' in p ? p.cacheControl : undefined
}

function blockOf(p: Part, param: string, thinkingProvider: string | undefined): Block | null {
  switch (p.type) {
    case 'text':
      return p.text ? { text: p.text } : null
    case 'image':
      return { image: image(p, param) }
    case 'document':
      return document(p, param)
    case 'tool_call':
      return { toolUse: { toolUseId: p.id, name: p.name, input: parseArguments(p.arguments, param) } }
    case 'tool_result': {
      const content = p.content.map((c, k) => {
        if (c.type === 'text') return { text: c.text }
        if (c.type === 'image') return { image: image(c, `${param}.content[${k}]`) }
        return document(c, `${param}.content[${k}]`)
      })
      return { toolResult: { toolUseId: p.callId, content: content.length ? content : [{ text: '' }], ...(p.isError ? { status: 'error' } : {}) } }
    }
    case 'thinking':
      // Signatures only verify on the provider that made them; others' thinking is dropped.
      if (!thinkingProvider || p.provider !== thinkingProvider) return null
      if (p.redacted) return { reasoningContent: { redactedContent: p.redacted } }
      return { reasoningContent: { reasoningText: { text: p.text, ...(p.signature ? { signature: p.signature } : {}) } } }
    case 'video':
      return { video: video(p, param) }
    case 'audio':
      throw new GatewayError('invalid_request', `${param}: Bedrock Converse has no audio content block; send a transcript as text.`, { param, code: 'unsupported_content' })
  }
}

function video(p: VideoPart, param: string): Block {
  const format = VIDEO_FORMATS[p.mimeType.toLowerCase()]
  if (!format) throw new GatewayError('invalid_request', `${param}: Bedrock accepts mp4, mov, mkv, webm, flv, mpeg, wmv and 3gp video, not ${p.mimeType}.`, { param, code: 'unsupported_content' })
  if (!p.data) throw new GatewayError('invalid_request', `${param}: Bedrock needs video bytes, not a link.`, { param })
  return { format, source: { bytes: p.data } }
}

function image(p: ImagePart, param: string): Block {
  const format = IMAGE_FORMATS[p.mimeType.toLowerCase()]
  if (!format) throw new GatewayError('invalid_request', `Bedrock accepts png, jpeg, gif and webp images, not ${p.mimeType}.`, { param })
  if (!p.data) throw new GatewayError('invalid_request', 'Bedrock needs image bytes (a data: URL or base64), not a remote URL.', { param })
  return { format, source: { bytes: p.data } }
}

function document(p: DocumentPart, param: string): Block {
  if (p.text !== undefined) return { text: p.text }
  const format = DOC_FORMATS[p.mimeType.toLowerCase()]
  if (!format) throw new GatewayError('invalid_request', `Bedrock does not accept documents of type ${p.mimeType}.`, { param })
  if (!p.data) throw new GatewayError('invalid_request', 'Bedrock needs document bytes, not a remote URL.', { param })
  // Converse restricts names to letters, digits, spaces, hyphens, parentheses and brackets.
  const name = (p.title ?? 'document').replace(/[^A-Za-z0-9 \-()[\]]/g, ' ').replace(/\s+/g, ' ').trim() || 'document'
  return { document: { format, name, source: { bytes: p.data } } }
}

function parseArguments(text: string, param: string): unknown {
  if (!text) return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new GatewayError('invalid_request', 'Tool call arguments must be JSON for Bedrock.', { param })
  }
}
