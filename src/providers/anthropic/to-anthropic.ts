import { GatewayError } from '../../errors.js'
import type { CacheControl, ChatRequest, DocumentPart, ImagePart, Message, Part, TextPart } from '../../core/types.js'

type Block = Record<string, unknown>

/**
 * Core request → Anthropic Messages body. System messages (wherever they
 * are) become `system` blocks; tool results open the next user turn;
 * consecutive turns of one role merge, as the API requires alternation.
 * Thinking goes back only to the provider that signed it (`ownId`); without
 * it, a turn that called tools cannot keep extended thinking on, so the
 * request then asks for none.
 */
export function toAnthropicBody(req: ChatRequest, ownId: string, defaultMaxTokens: number): Record<string, unknown> {
  const system: Block[] = []
  const messages: Array<{ role: 'user' | 'assistant'; content: Block[] }> = []
  for (const m of req.messages) {
    if (m.role === 'system') {
      for (const p of m.content) if (p.type === 'text') system.push(withCache({ type: 'text', text: p.text }, p.cacheControl))
      continue
    }
    const role = m.role === 'assistant' ? 'assistant' : 'user'
    const blocks = toBlocks(m, ownId)
    if (blocks.length === 0) continue
    const last = messages[messages.length - 1]
    if (last?.role === role) {
      // Tool results must lead a user turn.
      if (m.role === 'tool') last.content.unshift(...blocks)
      else last.content.push(...blocks)
    } else messages.push({ role, content: blocks })
  }

  const body: Record<string, unknown> = { model: req.model, max_tokens: req.maxTokens ?? defaultMaxTokens, messages }
  if (system.length) body.system = system
  if (req.stream) body.stream = true
  if (req.temperature !== undefined) body.temperature = Math.min(1, req.temperature)
  if (req.topP !== undefined) body.top_p = req.topP
  if (req.topK !== undefined) body.top_k = req.topK
  if (req.stop?.length) body.stop_sequences = req.stop
  if (req.tools?.length) {
    body.tools = req.tools.map((t) => withCache({ name: t.name, ...(t.description ? { description: t.description } : {}), input_schema: t.parameters }, t.cacheControl))
    const tc = req.toolChoice
    const noParallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {}
    if (tc === 'none') body.tool_choice = { type: 'none' }
    else if (tc === 'required') body.tool_choice = { type: 'any', ...noParallel }
    else if (tc && typeof tc === 'object') body.tool_choice = { type: 'tool', name: tc.name, ...noParallel }
    else if (req.parallelToolCalls === false) body.tool_choice = { type: 'auto', ...noParallel }
  }
  const userId = req.metadata?.user_id ?? req.user
  if (typeof userId === 'string' && userId) body.metadata = { user_id: userId }
  if (req.thinking && !(req.thinking.type !== 'disabled' && lastToolTurnLacksThinking(messages))) {
    if (req.thinking.type === 'enabled') body.thinking = { type: 'enabled', budget_tokens: req.thinking.budgetTokens ?? Math.min(16_000, Math.max(1024, Math.floor((req.maxTokens ?? defaultMaxTokens) / 2))) }
    else body.thinking = { type: req.thinking.type }
  }
  const effort = req.reasoningEffort
  if (effort && effort !== 'minimal') body.output_config = { effort }
  if (req.responseFormat?.type === 'json_schema') body.output_config = { ...(body.output_config as object), format: { type: 'json_schema', schema: req.responseFormat.schema } }
  if (req.providerOptions) Object.assign(body, req.providerOptions)
  return body
}

function lastToolTurnLacksThinking(messages: Array<{ role: string; content: Block[] }>): boolean {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (m.role !== 'assistant') continue
    const calls = m.content.some((b) => b.type === 'tool_use')
    return calls && !m.content.some((b) => b.type === 'thinking' || b.type === 'redacted_thinking')
  }
  return false
}

function withCache(block: Block, cc: CacheControl | undefined): Block {
  if (cc) block.cache_control = cc.ttl ? { type: 'ephemeral', ttl: cc.ttl } : { type: 'ephemeral' }
  return block
}

function toBlocks(m: Message, ownId: string): Block[] {
  const out: Block[] = []
  for (const p of m.content) {
    const b = toBlock(p, ownId)
    if (b) out.push(b)
  }
  return out
}

function toBlock(p: Part, ownId: string): Block | undefined {
  switch (p.type) {
    case 'text':
      return p.text ? withCache({ type: 'text', text: p.text }, p.cacheControl) : undefined
    case 'image':
    case 'document':
      return media(p)
    case 'tool_call':
      return { type: 'tool_use', id: p.id, name: p.name, input: parseInput(p.arguments) }
    case 'tool_result': {
      const content = p.content.map((c) => (c.type === 'text' ? textBlock(c) : media(c))).filter((b): b is Block => b !== undefined)
      return withCache({ type: 'tool_result', tool_use_id: p.callId, content, ...(p.isError ? { is_error: true } : {}) }, p.cacheControl)
    }
    case 'thinking':
      // A signature is only valid where it was made: anything else is dropped, not forwarded.
      if (p.provider !== ownId) return undefined
      if (p.redacted) return { type: 'redacted_thinking', data: p.redacted }
      return p.signature ? { type: 'thinking', thinking: p.text, signature: p.signature } : undefined
    case 'audio':
    case 'video':
      throw new GatewayError('invalid_request', `The Anthropic Messages API has no ${p.type} content block; send a transcript or frames as text or images.`, { param: 'messages', code: 'unsupported_content' })
  }
}

function textBlock(p: TextPart): Block {
  return withCache({ type: 'text', text: p.text }, p.cacheControl)
}

function media(p: ImagePart | DocumentPart): Block | undefined {
  if (p.type === 'document' && p.text !== undefined) {
    return withCache({ type: 'document', source: { type: 'text', media_type: 'text/plain', data: p.text }, ...(p.title ? { title: p.title } : {}) }, p.cacheControl)
  }
  const source = p.url ? { type: 'url', url: p.url } : p.data ? { type: 'base64', media_type: p.mimeType, data: p.data } : undefined
  if (!source) return undefined
  const block: Block = { type: p.type, source }
  if (p.type === 'document') {
    if (p.title) block.title = p.title
    if (p.context) block.context = p.context
    if (p.citations) block.citations = { enabled: true }
  }
  return withCache(block, p.cacheControl)
}

function parseInput(args: string): unknown {
  if (!args) return {}
  try {
    return JSON.parse(args)
  } catch {
    return {}
  }
}
