import { estimateRequestTokens } from '../core/tokens.js'
import type { ChatRequest, ContentPart, ModelCapabilities, ModelInfo } from '../core/types.js'
import { knownModel } from './known-models.js'

/** What a model can do, as far as the gateway knows; an unknown field means "assume yes". */
export interface Capabilities extends ModelCapabilities {
  contextWindow?: number
}

/** What a request needs from a model. The token estimate is computed on first use only. */
export interface Needs {
  tools: boolean
  vision: boolean
  /** Binary documents (PDF, office files); text documents are text to every model. */
  documents: boolean
  audio: boolean
  video: boolean
  /** Every binary document can become text for a model that cannot read it (media.conversions.pdfToText). */
  documentsConvertible: boolean
  streaming: boolean
  embeddings: boolean
  /** Estimated prompt tokens plus the requested output, for the context-window check. */
  tokens(): number
}

export interface NeedsOptions {
  /** PDFs (and base64 text files) may be converted to text (opt-in). */
  pdfToText?: boolean
}

const CONVERTIBLE = /^(application\/pdf|text\/[a-z.+-]+)$/

export function chatNeeds(req: ChatRequest, opts: NeedsOptions = {}): Needs {
  let vision = false
  let documents = false
  let convertible = true
  let audio = false
  let video = false
  const see = (p: ContentPart | ChatRequest['messages'][number]['content'][number]) => {
    if (p.type === 'image') vision = true
    else if (p.type === 'audio') audio = true
    else if (p.type === 'video') video = true
    else if (p.type === 'document' && p.text === undefined) {
      documents = true
      if (!CONVERTIBLE.test(p.mimeType.toLowerCase())) convertible = false
    } else if (p.type === 'tool_result') for (const c of p.content) see(c)
  }
  for (const m of req.messages) for (const p of m.content) see(p)
  let tokens: number | undefined
  return {
    tools: (req.tools?.length ?? 0) > 0 && req.toolChoice !== 'none',
    vision,
    documents,
    audio,
    video,
    documentsConvertible: documents && convertible && opts.pdfToText === true,
    streaming: req.stream,
    embeddings: false,
    tokens: () => (tokens ??= estimateRequestTokens(req) + (req.maxTokens ?? 0)),
  }
}

export const EMBED_NEEDS: Needs = { tools: false, vision: false, documents: false, audio: false, video: false, documentsConvertible: false, streaming: false, embeddings: true, tokens: () => 0 }

/** True when the request needs nothing a model could lack (the common plain-text chat). */
export function needsNothing(n: Needs): boolean {
  return !n.tools && !n.vision && !n.documents && !n.audio && !n.video && !n.embeddings
}

/**
 * What each provider type's API can carry at all, whatever the model: no
 * configuration makes Ollama's chat API take a PDF. These are ANDed with
 * everything else known about a model.
 */
const WIRE_LIMITS: Record<string, ModelCapabilities> = {
  'openai-compatible': { video: false },
  'azure-openai': { video: false },
  anthropic: { audio: false, video: false },
  bedrock: { audio: false },
  ollama: { documents: false, audio: false, video: false },
  'vscode-bridge': { audio: false, video: false },
}

/**
 * What a provider type's models take unless their metadata or the config say
 * otherwise: vscode.lm has no document capability flag, so a VS Code model
 * gets binary documents only when configured (routing.models: documents: true).
 */
const PROVIDER_DEFAULTS: Record<string, ModelCapabilities> = {
  'vscode-bridge': { documents: false },
}

/**
 * Merges what is known about a model, field by field: the user's config
 * first (it is how a wrong or missing provider answer is corrected), then the
 * provider's own metadata, then the provider type's defaults, then the
 * known-models table; then what the provider type's API cannot carry.
 */
export function mergeCapabilities(model: string, configured: Capabilities | undefined, info: ModelInfo | undefined, providerType?: string): Capabilities {
  const known = knownModel(model)
  const defaults = providerType ? PROVIDER_DEFAULTS[providerType] : undefined
  const out: Capabilities = { ...known?.capabilities, ...defaults, ...defined(info?.capabilities), ...defined(configured) }
  const wire = providerType ? WIRE_LIMITS[providerType] : undefined
  if (wire) Object.assign(out, wire)
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
  if (needs.documents && caps.documents === false && !needs.documentsConvertible) return { capability: 'documents', phrase: 'document input (PDF and other binary files)' }
  if (needs.audio && caps.audio === false) return { capability: 'audio', phrase: 'audio input' }
  if (needs.video && caps.video === false) return { capability: 'video', phrase: 'video input' }
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

/** True when the target will get the request's documents converted to text (it cannot read them, conversion is on). */
export function convertsDocuments(needs: Needs, caps: Capabilities): boolean {
  return needs.documents && needs.documentsConvertible && caps.documents === false
}
