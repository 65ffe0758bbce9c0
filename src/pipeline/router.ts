import { ConfigError, type AliasConfig } from '../config.js'
import type { ChatEvent, ChatRequest, EmbedRequest, ModelInfo } from '../core/types.js'
import { GatewayError } from '../errors.js'
import type { CallContext, Provider } from '../providers/types.js'
import { backoffMs, order, TargetStats, type BalanceState } from './balance.js'
import { BreakerBoard, type BreakerStatus, type CircuitBreaker } from './breaker.js'
import { chatNeeds, convertsDocuments, EMBED_NEEDS, mergeCapabilities, missingCapability, type Capabilities, type Needs, type NeedsOptions } from './capabilities.js'
import { isLocal } from './local-error.js'
import { AliasRouting, parseSection, RoutingConfig, type RuleConfig, type Strategy, type TargetConfig } from './routing-config.js'

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
  private byKey = new Map<string, ModelInfo>()
  private loadedAt = 0
  private loading: Promise<void> | undefined
  private readonly lists = new Map<string, ModelInfo[]>()
  /** Bumped on every load, so that derived caches know when to recompute. */
  generation = 0

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

  /**
   * What the last load said about one model, without waiting: the hot path
   * must never stall on a provider's model list. A stale list is refreshed
   * in the background.
   */
  peek(providerId: string, model: string): ModelInfo | undefined {
    if (this.now() - this.loadedAt > this.ttlMs) this.refresh().catch(() => {})
    return this.byKey.get(`${providerId}/${model}`)
  }

  /** Whether the last load is still within its TTL (a name resolved against it still stands). */
  fresh(): boolean {
    return this.now() - this.loadedAt <= this.ttlMs
  }

  /** The last loaded list, without waiting (empty before the first load). */
  current(): CatalogEntry[] {
    return this.entries
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
    const byKey = new Map<string, ModelInfo>()
    results.forEach((r, i) => {
      const provider = this.providers[i]
      if (r.status === 'fulfilled') this.lists.set(provider.id, r.value)
      for (const info of this.lists.get(provider.id) ?? []) {
        const entry = { provider, info }
        entries.push(entry)
        if (!byBareId.has(info.id)) byBareId.set(info.id, entry)
        byKey.set(`${provider.id}/${info.id}`, info)
      }
    })
    this.entries = entries
    this.byBareId = byBareId
    this.byKey = byKey
    this.loadedAt = this.now()
    this.generation++
  }
}

export interface RouterOptions {
  catalog: ModelCatalog
  aliases: Record<string, AliasConfig>
  /** Client model names mapped to others before resolution. */
  modelMap: Record<string, string>
  /** Resolves a name nothing else knows to one the router does (see model-names.ts). */
  nearest?: (name: string, signal?: AbortSignal) => Promise<string | undefined>
  /** The `routing` section of the config (validated here). */
  routing?: unknown
  /** Clock for breakers and latency; injectable for tests. */
  now?: () => number
  random?: () => number
  /** Media conversions a target may get instead of a 400 (media.conversions). */
  media?: NeedsOptions
}

/** A target as routing sees it: where to send, and what is known and measured about it. */
interface RouteTarget extends Target {
  key: string
  weight: number
  timeoutMs?: number
  cost?: number
  configured?: Capabilities
  stats: TargetStats
  breaker?: CircuitBreaker
  caps?: { generation: number; value: Capabilities }
}

interface Rule {
  when: RuleConfig['when']
  targets: RouteTarget[]
}

interface Plan {
  name: string
  strategy: Strategy
  targets: RouteTarget[]
  rules?: Rule[]
  timeoutMs?: number
  retries: number
  state: BalanceState
  /** A client-named `provider/model` or bare id: no alternatives to choose from. */
  direct: boolean
}

const AUTO = 'auto'

/**
 * Resolves a client's model name to targets and calls them. Aliases (and
 * `auto`) choose among their targets by strategy, skip targets that lack a
 * capability the request needs or whose circuit is open, retry with backoff,
 * and fall back to the next target on retryable errors and timeouts until the
 * first event has arrived (never after: the client may already have bytes).
 */
export class Router implements Provider {
  readonly id = 'router'
  readonly type = 'router'
  private readonly byId: Map<string, Provider>
  private readonly config: RoutingConfig
  private readonly now: () => number
  private readonly random: () => number
  private readonly breakers: BreakerBoard
  private readonly stats = new Map<string, TargetStats>()
  private readonly plans = new Map<string, Plan>()
  private autoPlan: Plan | undefined
  private catalogAuto: { generation: number; plan: Plan } | undefined
  /** Bare ids already resolved against this catalog generation: the next request for one takes the direct path, not the async lookup. */
  private bare = new Map<string, Plan>()
  private bareGeneration = -1

  constructor(private readonly opts: RouterOptions) {
    this.byId = new Map(opts.catalog.providers.map((p) => [p.id, p]))
    this.config = parseSection(RoutingConfig, opts.routing, 'routing')
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
    this.breakers = new BreakerBoard({ ...this.config.breaker, now: this.now })
    for (const [name, raw] of Object.entries(opts.aliases)) {
      const alias = parseSection(AliasRouting, raw, `models.${name}`)
      const at = `models.${name}`
      const plan: Plan = {
        name,
        strategy: alias.strategy,
        targets: this.configuredTargets(alias.targets, alias.order, at),
        timeoutMs: alias.timeoutMs ?? this.config.timeoutMs,
        retries: alias.retries ?? this.config.retries,
        state: { cursor: 0 },
        direct: false,
      }
      if (alias.rules) plan.rules = alias.rules.map((r, i) => ({ when: r.when, targets: this.configuredTargets(r.targets, alias.order, `${at}.rules[${i}]`) }))
      this.plans.set(name, plan)
    }
    const auto = this.config.auto
    if (auto.enabled && !this.plans.has(AUTO) && auto.candidates) {
      this.autoPlan = {
        name: AUTO,
        strategy: auto.strategy,
        targets: this.configuredTargets(auto.candidates, auto.order, 'routing.auto.candidates'),
        timeoutMs: this.config.timeoutMs,
        retries: this.config.retries,
        state: { cursor: 0 },
        direct: false,
      }
      if (auto.rules) this.autoPlan.rules = auto.rules.map((r, i) => ({ when: r.when, targets: this.configuredTargets(r.targets, auto.order, `routing.auto.rules[${i}]`) }))
    }
  }

  get catalog(): ModelCatalog {
    return this.opts.catalog
  }

  /** Circuit-breaker states of the targets routed so far, for GET /health. */
  breakerStates(): BreakerStatus[] {
    return this.breakers.list()
  }

  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const entries = await this.opts.catalog.list(signal)
    const out: ModelInfo[] = entries.map((e) => ({ ...e.info, id: `${e.provider.id}/${e.info.id}`, provider: e.provider.id }))
    for (const alias of Object.keys(this.opts.aliases)) out.push({ id: alias, ownedBy: 'gateway', provider: 'gateway' })
    if (this.config.auto.enabled && !this.opts.aliases[AUTO]) out.push({ id: AUTO, ownedBy: 'gateway', provider: 'gateway' })
    return out
  }

  /** Targets for a name that needs no model lists: aliases and `provider/model`. */
  resolveSync(name: string): Target[] | undefined {
    return this.planSync(name)?.targets.map(({ provider, model }) => ({ provider, model }))
  }

  async resolve(name: string, signal?: AbortSignal, renamed = false): Promise<Target[]> {
    const sync = this.resolveSync(name)
    if (sync) return sync
    const mapped = this.opts.modelMap[name] ?? name
    if (mapped === AUTO && this.config.auto.enabled) return (await this.catalogAutoPlan(signal)).targets.map(({ provider, model }) => ({ provider, model }))
    // Names clients send in the field (dated Claude ids …) → the closest model served (model-names.ts); once only.
    const near = renamed ? undefined : await this.opts.nearest?.(mapped, signal)
    if (near) return this.resolve(near, signal, true)
    const entry = await this.opts.catalog.find(mapped, signal)
    if (entry) return [{ provider: entry.provider, model: entry.info.id }]
    throw new GatewayError('not_found', `The model "${name}" does not exist or is not served by any configured provider. List models with GET /v1/models.`, {
      code: 'model_not_found',
      param: 'model',
    })
  }

  chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
    let plan: Plan | undefined
    try {
      plan = this.planSync(req.model) ?? this.knownBare(req.model)
      // The common case, one named target and no retry or deadline: hand back the provider's own stream, no extra layer.
      if (plan?.direct && plan.retries === 0 && plan.timeoutMs === undefined) {
        const t = plan.targets[0]
        const needs = chatNeeds(req, this.opts.media)
        const miss = missingCapability(needs, this.capabilities(t))
        if (miss) return this.capabilityFailure(plan.name, [{ key: t.key, miss }], ctx.signal)
        served(ctx, t)
        return t.provider.chat(this.requestFor(req, t, needs), ctx)
      }
    } catch (err) {
      return failed(err)
    }
    return this.routed(req, ctx, plan)
  }

  private routed(req: ChatRequest, ctx: CallContext, known: Plan | undefined): ReadableStream<ChatEvent> {
    let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
    let first: ReadableStreamReadResult<ChatEvent> | undefined
    let finish: ((err?: unknown) => void) | undefined
    let opening: Promise<void> | undefined
    return new ReadableStream<ChatEvent>(
      {
        // Opened lazily in the first pull, not in start(): workerd may pull before an async start() settles.
        pull: async (controller) => {
          opening ??= (async () => {
            const plan = known ?? (await this.planAsync(req.model, ctx.signal))
            const needs = chatNeeds(req, this.opts.media)
            const candidates = await this.candidates(plan, needs, ctx.signal)
            const ordered = order(plan.strategy, candidates, plan.state, this.random, this.config.latency.explore)
            const opened = await this.attempt(plan, ordered, req, ctx, needs)
            reader = opened.reader
            first = opened.first
            finish = opened.finish
          })()
          await opening
          try {
            const { done, value } = first ?? (await reader!.read())
            first = undefined
            if (done) {
              finish?.()
              controller.close()
            } else controller.enqueue(value)
          } catch (err) {
            finish?.(err)
            throw err
          }
        },
        cancel: async (reason) => {
          finish?.()
          await reader?.cancel(reason)
        },
      },
      { highWaterMark: 0 },
    )
  }

  /** Tries the targets in order until one sends its first event. */
  private async attempt(plan: Plan, ordered: RouteTarget[], req: ChatRequest, ctx: CallContext, needs: Needs) {
    let lastError: GatewayError | undefined
    let openUntil = Infinity
    for (const t of ordered) {
      for (let attempt = 0; attempt <= plan.retries; attempt++) {
        if (attempt > 0) await sleep(backoffMs(attempt - 1, this.config.backoff.baseMs, this.config.backoff.maxMs, this.random, lastError?.retryAfter), ctx.signal)
        if (t.breaker && !t.breaker.tryAcquire()) {
          openUntil = Math.min(openUntil, t.breaker.retryInMs())
          break
        }
        t.stats.inFlight++
        const started = this.now()
        try {
          const opened = await this.open(t, this.requestFor(req, t, needs), ctx, t.timeoutMs ?? plan.timeoutMs)
          t.stats.recordLatency(this.now() - started)
          t.breaker?.success()
          served(ctx, t)
          let finished = false
          const finish = (err?: unknown) => {
            if (finished) return
            finished = true
            t.stats.inFlight--
            opened.cleanup()
            // A failure after the first event cannot fall back, but it still says something about the target.
            if (err !== undefined && !ctx.signal.aborted) {
              const e = GatewayError.from(err)
              if (e.retryable && !isLocal(e)) t.breaker?.failure()
            }
          }
          return { reader: opened.reader, first: opened.first, finish }
        } catch (err) {
          t.stats.inFlight--
          if (ctx.signal.aborted) {
            t.breaker?.release()
            throw new GatewayError('cancelled', 'The request was cancelled.', { cause: err })
          }
          const e = GatewayError.from(err)
          if (!e.retryable || isLocal(e)) t.breaker?.release()
          else t.breaker?.failure()
          if (!e.retryable) throw e
          lastError = e
          // Waiting out a long Retry-After on this target is worse than trying the next one.
          if (e.retryAfter !== undefined && e.retryAfter * 1000 > this.config.maxRetryAfterMs) break
        }
      }
    }
    if (lastError) throw lastError
    throw new GatewayError('unavailable', `Every target of "${plan.name}" is failing: their circuit breakers are open. Try again later.`, {
      code: 'circuit_open',
      retryAfter: Number.isFinite(openUntil) ? Math.max(1, Math.ceil(openUntil / 1000)) : undefined,
    })
  }

  /** Starts a target's stream and waits for its first event, within the target's deadline. */
  private async open(t: RouteTarget, req: ChatRequest, ctx: CallContext, timeoutMs: number | undefined) {
    const ctrl = new AbortController()
    const onAbort = () => ctrl.abort(ctx.signal.reason)
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    const cleanup = () => ctx.signal.removeEventListener('abort', onAbort)
    const reader = t.provider.chat(req, { ...ctx, signal: ctrl.signal }).getReader()
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const read = reader.read()
      const first =
        timeoutMs === undefined
          ? await read
          : await Promise.race([
              read,
              new Promise<never>((_, reject) => {
                timer = setTimeout(
                  () => reject(new GatewayError('timeout', `Model "${t.key}" sent nothing within ${timeoutMs} ms.`, { code: 'target_timeout' })),
                  timeoutMs,
                )
              }),
            ])
      return { reader, first, cleanup }
    } catch (err) {
      ctrl.abort(err)
      reader.cancel(err).catch(() => {})
      cleanup()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** The request as one target gets it: its model name, and documents to convert when it cannot read them. */
  private requestFor(req: ChatRequest, t: RouteTarget, needs: Needs): ChatRequest {
    const out = { ...req, model: t.model }
    if (convertsDocuments(needs, this.capabilities(t))) out.documentsAsText = true
    return out
  }

  /** The 400 for a request no target can take, naming the models that could (from the model lists). */
  private capabilityFailure(name: string, lacking: Lacking[], signal: AbortSignal): ReadableStream<ChatEvent> {
    return new ReadableStream({
      pull: async (c) => {
        c.error(await this.capabilityError(name, lacking, signal))
      },
    })
  }

  private async capabilityError(name: string, lacking: Lacking[], signal: AbortSignal): Promise<GatewayError> {
    const capability = lacking[0].miss.capability
    let able: string[] = []
    if (capability in MEDIA_KINDS) {
      const entries = await this.opts.catalog.list(signal).catch(() => this.opts.catalog.current())
      const probe: Needs = { ...EMBED_NEEDS, embeddings: false, [capability]: true, documentsConvertible: false }
      able = entries
        .filter((e) => {
          const caps = mergeCapabilities(e.info.id, this.config.models[`${e.provider.id}/${e.info.id}`] ?? this.config.models[e.info.id], e.info, e.provider.type)
          return caps[capability as keyof Capabilities] === true && !missingCapability(probe, caps)
        })
        .map((e) => `${e.provider.id}/${e.info.id}`)
    }
    return capabilityError(name, lacking, able)
  }

  /** The plan's targets for this request: the first matching rule's, without those lacking a needed capability. */
  private async candidates(plan: Plan, needs: Needs, signal: AbortSignal): Promise<RouteTarget[]> {
    let targets = plan.targets
    for (const rule of plan.rules ?? []) {
      if (ruleMatches(rule.when, needs)) {
        targets = rule.targets
        break
      }
    }
    const lacking: Array<{ key: string; miss: { capability: string; phrase: string } }> = []
    const fit: RouteTarget[] = []
    for (const t of targets) {
      const miss = missingCapability(needs, this.capabilities(t))
      if (miss) lacking.push({ key: t.key, miss })
      else fit.push(t)
    }
    if (fit.length === 0) throw await this.capabilityError(plan.name, lacking, signal)
    return fit
  }

  private capabilities(t: RouteTarget): Capabilities {
    const generation = this.opts.catalog.generation
    const info = this.opts.catalog.peek(t.provider.id, t.model)
    if (t.caps?.generation === generation) return t.caps.value
    const configured = t.configured ?? this.config.models[t.key] ?? this.config.models[t.model]
    const value = mergeCapabilities(t.model, configured, info, t.provider.type)
    t.caps = { generation, value }
    return value
  }

  private planSync(name: string): Plan | undefined {
    const mapped = this.opts.modelMap[name] ?? name
    const alias = this.plans.get(mapped)
    if (alias) return alias
    if (mapped === AUTO && this.autoPlan) return this.autoPlan
    const slash = mapped.indexOf('/')
    if (slash > 0) {
      const provider = this.byId.get(mapped.slice(0, slash))
      if (provider) return this.directPlan(mapped, provider, mapped.slice(slash + 1))
    }
    return undefined
  }

  private async planAsync(name: string, signal: AbortSignal): Promise<Plan> {
    const mapped = this.opts.modelMap[name] ?? name
    if (mapped === AUTO && this.config.auto.enabled) return this.catalogAutoPlan(signal)
    const [t] = await this.resolve(name, signal)
    const plan = this.directPlan(name, t.provider, t.model)
    this.rememberBare(name, plan)
    return plan
  }

  private knownBare(name: string): Plan | undefined {
    const catalog = this.opts.catalog
    if (this.bareGeneration !== catalog.generation || !catalog.fresh()) return undefined
    return this.bare.get(name)
  }

  private rememberBare(name: string, plan: Plan): void {
    const catalog = this.opts.catalog
    if (!catalog.fresh()) return
    // Names come from clients: a new list starts a new memo, and a flood of distinct names cannot grow it without bound.
    if (this.bareGeneration !== catalog.generation || this.bare.size >= 1000) {
      this.bare = new Map()
      this.bareGeneration = catalog.generation
    }
    this.bare.set(name, plan)
  }

  /** `auto` without configured candidates: every listed model, in catalog order. */
  private async catalogAutoPlan(signal?: AbortSignal): Promise<Plan> {
    const entries = await this.opts.catalog.list(signal)
    const generation = this.opts.catalog.generation
    if (this.catalogAuto?.generation === generation) return this.catalogAuto.plan
    const plan: Plan = {
      name: AUTO,
      strategy: this.config.auto.strategy,
      targets: entries.map((e) => this.target(e.provider, e.info.id, {}, true)),
      timeoutMs: this.config.timeoutMs,
      retries: this.config.retries,
      state: this.catalogAuto?.plan.state ?? { cursor: 0 },
      direct: false,
    }
    if (plan.targets.length === 0) throw new GatewayError('unavailable', 'No provider lists any model, so "auto" has nothing to choose from.', { code: 'no_models' })
    this.catalogAuto = { generation, plan }
    return plan
  }

  /** A client-named target: no breaker or shared stats, since names from clients are unbounded. */
  private directPlan(name: string, provider: Provider, model: string): Plan {
    const key = `${provider.id}/${model}`
    return {
      name,
      strategy: 'fallback',
      targets: [{ provider, model, key, weight: 1, stats: new TargetStats(this.config.latency.alpha), ...this.configuredCaps(key, model) }],
      timeoutMs: this.config.timeoutMs,
      retries: this.config.retries,
      state: { cursor: 0 },
      direct: true,
    }
  }

  private configuredCaps(key: string, model: string): { configured?: Capabilities } {
    const configured = this.config.models[key] ?? this.config.models[model]
    return configured ? { configured } : {}
  }

  private configuredTargets(list: TargetConfig[], orderBy: 'listed' | 'cheapest', at: string): RouteTarget[] {
    const targets = list.map((raw, i) => {
      const spec = typeof raw === 'string' ? { model: raw } : raw
      const resolved = this.resolveTargetName(spec.model, `${at}.targets[${i}]`)
      return this.target(resolved.provider, resolved.model, spec, true)
    })
    if (orderBy === 'cheapest') return targets.map((t, i) => ({ t, i })).sort((a, b) => (a.t.cost ?? Infinity) - (b.t.cost ?? Infinity) || a.i - b.i).map((x) => x.t)
    return targets
  }

  private resolveTargetName(name: string, at: string): Target {
    const mapped = this.opts.modelMap[name] ?? name
    const slash = mapped.indexOf('/')
    const provider = slash > 0 ? this.byId.get(mapped.slice(0, slash)) : undefined
    if (!provider) {
      const known = [...this.byId.keys()].join(', ')
      throw new ConfigError(`invalid gateway config:\n  - ${at}: "${name}" is not "provider/model" with a configured provider (providers: ${known})`)
    }
    return { provider, model: mapped.slice(slash + 1) }
  }

  private target(provider: Provider, model: string, spec: Exclude<TargetConfig, string> | Record<string, never>, shared: boolean): RouteTarget {
    const key = `${provider.id}/${model}`
    let stats = this.stats.get(key)
    if (!stats) {
      stats = new TargetStats(this.config.latency.alpha)
      if (shared) this.stats.set(key, stats)
    }
    const s = spec as Partial<Exclude<TargetConfig, string>>
    const t: RouteTarget = { provider, model, key, weight: s.weight ?? 1, stats }
    if (s.timeoutMs !== undefined) t.timeoutMs = s.timeoutMs
    if (s.cost !== undefined) t.cost = s.cost
    const configured = s.capabilities ?? this.config.models[key] ?? this.config.models[model]
    if (configured) t.configured = configured
    if (this.breakers.enabled) t.breaker = this.breakers.get(key)
    return t
  }

  async embed(req: EmbedRequest, ctx: CallContext) {
    const targets = await this.resolve(req.model, ctx.signal)
    const t = targets.find((x) => x.provider.embed && !missingCapability(EMBED_NEEDS, this.capabilities(this.target(x.provider, x.model, {}, false)))) ?? targets[0]
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

function ruleMatches(when: RuleConfig['when'], needs: Needs): boolean {
  if (when.vision !== undefined && when.vision !== needs.vision) return false
  if (when.tools !== undefined && when.tools !== needs.tools) return false
  if (when.minPromptTokens !== undefined && needs.tokens() < when.minPromptTokens) return false
  if (when.maxPromptTokens !== undefined && needs.tokens() > when.maxPromptTokens) return false
  return true
}

const CAPABILITY_PARAM: Record<string, string> = { vision: 'messages', documents: 'messages', audio: 'messages', video: 'messages', tools: 'tools', streaming: 'stream', context_window: 'messages', embeddings: 'model', chat: 'model' }

/** Request part kinds, by the capability that reads them, for the 400's wording. */
const MEDIA_KINDS: Record<string, string> = { vision: 'image', documents: 'document', audio: 'audio', video: 'video' }

type Lacking = { key: string; miss: { capability: string; phrase: string } }

function capabilityError(name: string, lacking: Lacking[], able: string[] = []): GatewayError {
  const first = lacking[0]
  const kind = MEDIA_KINDS[first.miss.capability]
  const why = kind ? ` The request has ${kind === 'image' || kind === 'audio' ? `an ${kind}` : `a ${kind}`} part.` : ''
  const message =
    lacking.length === 1 && lacking[0].key === name
      ? `The model "${name}" cannot serve this request: it lacks ${first.miss.phrase}, which the request needs.`
      : `No model behind "${name}" can serve this request: ${lacking.map((l) => `${l.key} lacks ${l.miss.phrase}`).join('; ')}.`
  const alternatives = !kind
    ? ''
    : able.length
      ? ` Models that take ${kind} input: ${able.slice(0, 10).join(', ')}${able.length > 10 ? ` and ${able.length - 10} more` : ''}.`
      : ` No configured model is known to take ${kind} input.`
  return new GatewayError('invalid_request', message + why + alternatives, { param: CAPABILITY_PARAM[first.miss.capability] ?? 'model', code: 'unsupported_capability' })
}

function served(ctx: CallContext, t: Target): void {
  if (ctx.meta) {
    ctx.meta.provider = t.provider.id
    ctx.meta.servedModel = `${t.provider.id}/${t.model}`
    // `auto` answers name the model chosen for them (see reportedModel in src/routes/respond.ts).
    const report = ctx.meta.reportModel as { model: string } | undefined
    if (report?.model === 'auto') report.model = `${t.provider.id}/${t.model}`
  }
}

function failed(err: unknown): ReadableStream<ChatEvent> {
  return new ReadableStream({ start: (c) => c.error(GatewayError.from(err)) })
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new GatewayError('cancelled', 'The request was cancelled.'))
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(new GatewayError('cancelled', 'The request was cancelled.'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
