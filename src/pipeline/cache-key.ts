import type { ChatRequest, Message, Part, ToolDefinition } from '../core/types.js'
import { nodeCrypto } from './node-crypto.js'

const encoder = new TextEncoder()

/**
 * What makes two requests the same question: the model, the conversation, the
 * tools and every sampling parameter. Left out: `stream` (a streamed and a
 * plain request share an answer), `user`, `metadata`, and prompt-cache hints
 * (`cacheControl`, `promptCacheKey`), which change cost, never the answer.
 */
export function fingerprint(req: ChatRequest): string {
  return canonicalJson({
    model: req.model,
    messages: req.messages.map(withoutHints),
    tools: req.tools?.map(({ cacheControl: _hint, ...tool }: ToolDefinition) => tool),
    toolChoice: req.toolChoice,
    parallelToolCalls: req.parallelToolCalls,
    maxTokens: req.maxTokens,
    temperature: req.temperature,
    topP: req.topP,
    topK: req.topK,
    stop: req.stop,
    seed: req.seed,
    n: req.n,
    responseFormat: req.responseFormat,
    thinking: req.thinking,
    reasoningEffort: req.reasoningEffort,
    providerOptions: req.providerOptions,
  })
}

function withoutHints(m: Message): Message {
  return { ...m, content: m.content.map(partWithoutHint) }
}

function partWithoutHint(p: Part): Part {
  if (p.type === 'tool_result') {
    const { cacheControl: _hint, ...rest } = p
    return { ...rest, content: rest.content.map((c) => partWithoutHint(c) as typeof c) }
  }
  if (!('cacheControl' in p)) return p
  const { cacheControl: _hint, ...rest } = p
  return rest as Part
}

/** JSON with object keys sorted and undefined dropped, so equal requests give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

export async function sha256Hex(text: string): Promise<string> {
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(text).digest('hex')
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
  let hex = ''
  for (const b of digest) hex += b.toString(16).padStart(2, '0')
  return hex
}

/**
 * The storage key of a request: `<scope>:<model tag>:<request hash>`. The
 * scope is the API key's id (a hash, never the key), so one key's entries are
 * out of another's reach; the model tag lets an admin drop one model's entries.
 */
export async function cacheKey(req: ChatRequest, scope: string): Promise<string> {
  const [model, request] = await Promise.all([modelTag(req.model), sha256Hex(`${scope}\n${fingerprint(req)}`)])
  return `${scope}:${model}:${request}`
}

const tags = new Map<string, string>()

export async function modelTag(model: string): Promise<string> {
  let tag = tags.get(model)
  if (tag === undefined) {
    tag = (await sha256Hex(`model\n${model}`)).slice(0, 16)
    // Model names come from clients: keep the memo bounded.
    if (tags.size >= 1000) tags.clear()
    tags.set(model, tag)
  }
  return tag
}

export const OPEN_SCOPE = 'open'

export function scopeOf(keyId: string | undefined): string {
  return keyId ?? OPEN_SCOPE
}
