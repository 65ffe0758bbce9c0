import type { AliasConfig } from '../config.js'
import type { ChatEvent, ChatRequest, EmbedRequest, ModelInfo } from '../core/types.js'
import { GatewayError } from '../errors.js'
import type { CallContext, Provider } from '../providers/types.js'

export interface Target {
  provider: Provider
  model: string
}

export interface CatalogEntry {
  provider: Provider
  info: ModelInfo
}

/**
 * The models every provider serves, listed lazily and kept for `ttlMs`. A
 * provider whose list fails keeps its last good list (or none) and does not
 * hide the others.
 */
export class ModelCatalog {
  private entries: CatalogEntry[] = []
  private byBareId = new Map<string, CatalogEntry>()
  private loadedAt = 0
  private loading: Promise<void> | undefined
  private readonly lists = new Map<string, ModelInfo[]>()

  constructor(
    readonly providers: Provider[],
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async list(signal?: AbortSignal): Promise<CatalogEntry[]> {
    if (this.now() - this.loadedAt > this.ttlMs) await this.refresh(signal)
    return this.entries
  }

  async find(bareId: string, signal?: AbortSignal): Promise<CatalogEntry | undefined> {
    const hit = this.now() - this.loadedAt <= this.ttlMs ? this.byBareId.get(bareId) : undefined
    if (hit) return hit
    await this.refresh(signal)
    return this.byBareId.get(bareId)
  }

  invalidate(): void {
    this.loadedAt = 0
  }

  refresh(signal?: AbortSignal): Promise<void> {
    this.loading ??= this.load(signal).finally(() => {
      this.loading = undefined
    })
    return this.loading
  }

  private async load(signal?: AbortSignal): Promise<void> {
    const results = await Promise.allSettled(this.providers.map((p) => p.models(signal ?? AbortSignal.timeout(10_000))))
    const entries: CatalogEntry[] = []
    const byBareId = new Map<string, CatalogEntry>()
    results.forEach((r, i) => {
      const provider = this.providers[i]
      if (r.status === 'fulfilled') this.lists.set(provider.id, r.value)
      for (const info of this.lists.get(provider.id) ?? []) {
        const entry = { provider, info }
        entries.push(entry)
        if (!byBareId.has(info.id)) byBareId.set(info.id, entry)
      }
    })
    this.entries = entries
    this.byBareId = byBareId
    this.loadedAt = this.now()
  }
}

export interface RouterOptions {
  catalog: ModelCatalog
  aliases: Record<string, AliasConfig>
  /** Client model names mapped to others before resolution. */
  modelMap: Record<string, string>
}

/**
 * Resolves a client's model name to provider targets and calls them: an alias
 * tries its targets in order on retryable errors until the first event has
 * arrived (never after, since the client may already have bytes).
 */
export class Router implements Provider {
  readonly id = 'router'
  readonly type = 'router'
  private readonly byId: Map<string, Provider>

  constructor(private readonly opts: RouterOptions) {
    this.byId = new Map(opts.catalog.providers.map((p) => [p.id, p]))
  }

  get catalog(): ModelCatalog {
    return this.opts.catalog
  }

  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const entries = await this.opts.catalog.list(signal)
    const out: ModelInfo[] = entries.map((e) => ({ ...e.info, id: `${e.provider.id}/${e.info.id}`, provider: e.provider.id }))
    for (const alias of Object.keys(this.opts.aliases)) out.push({ id: alias, ownedBy: 'gateway', provider: 'gateway' })
    return out
  }

  /** Targets for a name that needs no model lists: aliases and `provider/model`. */
  resolveSync(name: string): Target[] | undefined {
    const mapped = this.opts.modelMap[name] ?? name
    const alias = this.opts.aliases[mapped]
    if (alias) {
      return alias.targets.map((t) => {
        const target = this.resolveSync(typeof t === 'string' ? t : t.model)
        if (!target || target.length !== 1) throw new GatewayError('internal', `Alias "${mapped}" has a target that is not "provider/model": ${typeof t === 'string' ? t : t.model}`)
        return target[0]
      })
    }
    const slash = mapped.indexOf('/')
    if (slash > 0) {
      const provider = this.byId.get(mapped.slice(0, slash))
      if (provider) return [{ provider, model: mapped.slice(slash + 1) }]
    }
    return undefined
  }

  async resolve(name: string, signal?: AbortSignal): Promise<Target[]> {
    const sync = this.resolveSync(name)
    if (sync) return sync
    const mapped = this.opts.modelMap[name] ?? name
    const entry = await this.opts.catalog.find(mapped, signal)
    if (entry) return [{ provider: entry.provider, model: entry.info.id }]
    throw new GatewayError('not_found', `The model "${name}" does not exist or is not served by any configured provider. List models with GET /v1/models.`, {
      code: 'model_not_found',
      param: 'model',
    })
  }

  chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
    let targets: Target[] | undefined
    try {
      targets = this.resolveSync(req.model)
    } catch (err) {
      return failed(err)
    }
    // The common case, one known target: hand back the provider's own stream, no extra layer.
    if (targets?.length === 1) {
      const t = targets[0]
      served(ctx, t)
      return t.provider.chat({ ...req, model: t.model }, ctx)
    }
    return this.fallback(req, ctx, targets)
  }

  private fallback(req: ChatRequest, ctx: CallContext, known: Target[] | undefined): ReadableStream<ChatEvent> {
    let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
    let first: ChatEvent | undefined
    return new ReadableStream<ChatEvent>(
      {
        start: async () => {
          const targets = known ?? (await this.resolve(req.model, ctx.signal))
          let lastError: GatewayError | undefined
          for (const t of targets) {
            if (ctx.signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.')
            const r = t.provider.chat({ ...req, model: t.model }, ctx).getReader()
            try {
              const { done, value } = await r.read()
              served(ctx, t)
              reader = r
              if (!done) first = value
              return
            } catch (err) {
              lastError = GatewayError.from(err)
              if (!lastError.retryable) throw lastError
            }
          }
          throw lastError ?? new GatewayError('unavailable', `No target of "${req.model}" could serve the request.`)
        },
        pull: async (controller) => {
          if (first) {
            controller.enqueue(first)
            first = undefined
            return
          }
          const { done, value } = await reader!.read()
          if (done) controller.close()
          else controller.enqueue(value)
        },
        cancel: (reason) => reader?.cancel(reason),
      },
      { highWaterMark: 0 },
    )
  }

  async embed(req: EmbedRequest, ctx: CallContext) {
    const [t] = await this.resolve(req.model, ctx.signal)
    if (!t.provider.embed) {
      throw new GatewayError(
        'invalid_request',
        `Provider "${t.provider.id}" (${t.provider.type}) has no embeddings API. Use an embedding model of a provider that has one (ollama, openai-compatible, azure-openai, bedrock, vertex, local-embeddings), e.g. "ollama/nomic-embed-text".`,
        { param: 'model', code: 'embeddings_not_supported' },
      )
    }
    if (req.tokens && !t.provider.embedsTokens) {
      throw new GatewayError('invalid_request', `Provider "${t.provider.id}" (${t.provider.type}) embeds text only and this gateway has no tokenizer to turn token ids back into text: send 'input' as a string or an array of strings.`, {
        param: 'input',
        code: 'token_input_not_supported',
      })
    }
    served(ctx, t)
    return t.provider.embed({ ...req, model: t.model }, ctx)
  }

  async countTokens(req: ChatRequest, ctx: CallContext): Promise<number> {
    const [t] = await this.resolve(req.model, ctx.signal)
    served(ctx, t)
    if (!t.provider.countTokens) throw new GatewayError('invalid_request', `Provider "${t.provider.id}" cannot count tokens.`)
    return t.provider.countTokens({ ...req, model: t.model }, ctx)
  }
}

function served(ctx: CallContext, t: Target): void {
  if (ctx.meta) {
    ctx.meta.provider = t.provider.id
    ctx.meta.servedModel = `${t.provider.id}/${t.model}`
  }
}

function failed(err: unknown): ReadableStream<ChatEvent> {
  return new ReadableStream({ start: (c) => c.error(GatewayError.from(err)) })
}
