import type { ChatEvent, ChatRequest, Message, ModelInfo } from '../core/types.js'
import type { Logger } from '../logger.js'
import type { CallContext, Provider } from '../providers/types.js'
import type { Adapter, AdapterStore } from './adapter-store.js'
import { cosine, lexicalVector, normalise, type StoredVector } from './text-vectors.js'

/** Embeds texts with a named model (the router's embed, in the app). */
export type Embed = (model: string, input: string[], ctx: CallContext) => Promise<number[][]>

export interface AdapterStageOptions {
  store: AdapterStore
  embed?: Embed
  logger?: Logger
}

/** The adapter stage: a Provider that also expands requests and lists the caller's adapters. */
export interface AdapterStage extends Provider {
  /** The request an `ft:` model stands for: its base model with the adapter applied; other requests unchanged. */
  expand(req: ChatRequest, ctx: CallContext): Promise<ChatRequest>
  /** The caller's adapters as models, for GET /v1/models. */
  modelsFor(owner: string | undefined): ModelInfo[]
}

/** An adapter may be built on another adapter's model; deeper chains are refused as a loop guard. */
const MAX_DEPTH = 4

/**
 * Runs `ft:` models made by in-context fine-tuning jobs: the request goes to
 * the adapter's base model with the adapter's system prompt (derived
 * instructions and demonstrations, fixed or retrieved per request) ahead of
 * the client's own. Everything else passes through untouched; the only cost
 * on other requests is one string prefix test.
 */
export function adapterStage(inner: Provider, opts: AdapterStageOptions): AdapterStage {
  async function expand(req: ChatRequest, ctx: CallContext): Promise<ChatRequest> {
    let out = req
    for (let depth = 0; depth < MAX_DEPTH && out.model.startsWith('ft:'); depth++) {
      const adapter = await opts.store.lookup(out.model, ctx.keyId)
      if (!adapter) break
      const prompt = await adapterPrompt(adapter, lastUserText(out.messages), ctx, opts)
      out = { ...out, model: adapter.base, messages: withAdapterSystem(out.messages, prompt) }
    }
    return out
  }

  const stage: AdapterStage = {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
      if (!req.model.startsWith('ft:')) return inner.chat(req, ctx)
      return deferred(async () => inner.chat(await expand(req, ctx), ctx))
    },
    expand,
    modelsFor(owner) {
      return opts.store.list(owner).map((a) => ({ id: a.id, ownedBy: 'user', provider: 'fine-tune', created: a.createdAt }))
    },
  }
  if (inner.embed) stage.embed = inner.embed.bind(inner)
  if (inner.embedsTokens) (stage as { embedsTokens?: boolean }).embedsTokens = true
  if (inner.countTokens) {
    const count = inner.countTokens.bind(inner)
    stage.countTokens = async (req, ctx) => count(req.model.startsWith('ft:') ? await expand(req, ctx) : req, ctx)
  }
  if (inner.health) stage.health = inner.health.bind(inner)
  return stage
}

/** Fixed prompts rendered once per adapter object, not per request. */
const fixedPrompts = new WeakMap<Adapter, string>()

/** The adapter's system prompt for one request: its instructions, then its demonstrations. */
export async function adapterPrompt(adapter: Adapter, query: string, ctx: CallContext, opts: Pick<AdapterStageOptions, 'embed' | 'logger'> = {}): Promise<string> {
  const retrieved = await retrieve(adapter, query, ctx, opts)
  if (retrieved) return renderAdapterPrompt(adapter.instructions, retrieved)
  let fixed = fixedPrompts.get(adapter)
  if (fixed === undefined) fixedPrompts.set(adapter, (fixed = renderAdapterPrompt(adapter.instructions, adapter.demonstrations)))
  return fixed
}

export function renderAdapterPrompt(instructions: string, demonstrations: string[]): string {
  const parts: string[] = []
  if (instructions) parts.push(instructions)
  if (demonstrations.length) {
    const shown = demonstrations.map((d, i) => `<example ${i + 1}>\n${d}\n</example ${i + 1}>`).join('\n\n')
    parts.push(`Examples of the expected answers follow. They show the style, format and content to follow; they are not part of this conversation.\n\n${shown}`)
  }
  return parts.join('\n\n')
}

/** Renders one example as the transcript shown in a demonstration. */
export function renderDemonstration(turns: Array<{ role: string; text: string }>): string {
  return turns.map((t) => `${t.role === 'assistant' ? 'Assistant' : t.role === 'tool' ? 'Tool result' : 'User'}: ${t.text}`).join('\n')
}

async function retrieve(adapter: Adapter, query: string, ctx: CallContext, opts: Pick<AdapterStageOptions, 'embed' | 'logger'>): Promise<string[] | undefined> {
  const r = adapter.retrieval
  if (!r || !query.trim() || r.pool.length === 0) return undefined
  let q: StoredVector
  if (r.method === 'lexical' && r.lexical) q = lexicalVector(r.lexical, query)
  else if (r.method === 'embedding' && r.embeddingModel && opts.embed) {
    try {
      q = normalise((await opts.embed(r.embeddingModel, [query], ctx))[0] ?? [])
    } catch (err) {
      // The fixed demonstrations still teach; a failing embeddings backend must not fail the chat.
      opts.logger?.warn('adapter retrieval fell back to fixed demonstrations', { adapter: adapter.jobId, error: (err as Error).message })
      return undefined
    }
  } else return undefined
  return r.pool
    .map((p, i) => ({ i, score: cosine(q, p.vector) }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, r.k)
    .map((s) => r.pool[s.i].text)
}

/** The adapter's prompt goes first in the system prompt; the client's own system text follows it. */
export function withAdapterSystem(messages: Message[], prompt: string): Message[] {
  if (!prompt) return messages
  const first = messages[0]
  if (first?.role === 'system') return [{ role: 'system', content: [{ type: 'text', text: prompt }, ...first.content] }, ...messages.slice(1)]
  return [{ role: 'system', content: [{ type: 'text', text: prompt }] }, ...messages]
}

function lastUserText(messages: Message[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (m.role !== 'user') continue
    return m.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n')
  }
  return ''
}

/** A stream opened on first read, so that the async adapter lookup happens inside the stream. */
function deferred(open: () => Promise<ReadableStream<ChatEvent>>): ReadableStream<ChatEvent> {
  let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
  let opening: Promise<void> | undefined
  return new ReadableStream<ChatEvent>(
    {
      pull: async (controller) => {
        opening ??= open().then((s) => {
          reader = s.getReader()
        })
        await opening
        const { done, value } = await reader!.read()
        if (done) controller.close()
        else controller.enqueue(value)
      },
      cancel: async (reason) => {
        await reader?.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
}
