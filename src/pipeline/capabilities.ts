import { estimateRequestTokens } from '../core/tokens.js'
import type { ChatRequest, ModelCapabilities, ModelInfo } from '../core/types.js'
import { knownModel } from './known-models.js'

/** What a model can do, as far as the gateway knows; an unknown field means "assume yes". */
export interface Capabilities extends ModelCapabilities {
  contextWindow?: number
}

/** What a request needs from a model. The token estimate is computed on first use only. */
export interface Needs {
  tools: boolean
  vision: boolean
  streaming: boolean
  embeddings: boolean
  /** Estimated prompt tokens plus the requested output, for the context-window check. */
  tokens(): number
}

export function chatNeeds(req: ChatRequest): Needs {
  let vision = false
  for (const m of req.messages) {
    for (const p of m.content) {
      if (p.type === 'image') vision = true
      else if (p.type === 'tool_result') for (const c of p.content) if (c.type === 'image') vision = true
    }
    if (vision) break
  }
  let tokens: number | undefined
  return {
    tools: (req.tools?.length ?? 0) > 0 && req.toolChoice !== 'none',
    vision,
    streaming: req.stream,
    embeddings: false,
    tokens: () => (tokens ??= estimateRequestTokens(req) + (req.maxTokens ?? 0)),
  }
}

export const EMBED_NEEDS: Needs = { tools: false, vision: false, streaming: false, embeddings: true, tokens: () => 0 }

/** True when the request needs nothing a model could lack (the common plain-text chat). */
export function needsNothing(n: Needs): boolean {
  return !n.tools && !n.vision && !n.embeddings
}

/**
 * Merges what is known about a model, field by field: the user's config
 * first (it is how a wrong or missing provider answer is corrected), then the
 * provider's own metadata, then the known-models table.
 */
export function mergeCapabilities(model: string, configured: Capabilities | undefined, info: ModelInfo | undefined): Capabilities {
  const known = knownModel(model)
  const out: Capabilities = { ...known?.capabilities, ...defined(info?.capabilities), ...defined(configured) }
  const window = configured?.contextWindow ?? info?.contextWindow ?? known?.contextWindow
  if (window !== undefined) out.contextWindow = window
  return out
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {}
  if (!o) return out
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

/** The first need the model cannot meet, as a phrase for an error message, or undefined. */
export function missingCapability(needs: Needs, caps: Capabilities): { capability: string; phrase: string } | undefined {
  if (needs.embeddings) return caps.embeddings === false ? { capability: 'embeddings', phrase: 'embeddings' } : undefined
  if (needs.vision && caps.vision === false) return { capability: 'vision', phrase: 'image input (vision)' }
  if (needs.tools && caps.tools === false) return { capability: 'tools', phrase: 'tool calling (tools)' }
  if (needs.streaming && caps.streaming === false) return { capability: 'streaming', phrase: 'streaming' }
  if (caps.embeddings === true && caps.tools === false && caps.vision === false && caps.streaming === false) {
    return { capability: 'chat', phrase: 'chat (it is an embeddings model)' }
  }
  if (caps.contextWindow !== undefined) {
    const tokens = needs.tokens()
    if (tokens > caps.contextWindow) return { capability: 'context_window', phrase: `a context window of at least ${tokens} tokens (about ${tokens} estimated for this request)` }
  }
  return undefined
}
