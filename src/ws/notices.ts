import type { Logger } from '../logger.js'
import type { BreakerStatus } from '../pipeline/breaker.js'
import { unref } from '../streaming/connection.js'

export interface NoticeSources {
  /** The model ids clients can ask for now (GET /v1/models). */
  models(): Promise<string[]>
  /** Circuit-breaker states of the routing targets. */
  health(): BreakerStatus[]
}

export interface NoticeOptions {
  healthPollMs: number
  /** 0: the model list is only compared after a bridge's change notice. */
  modelsPollMs: number
  logger: Logger
}

/** A bridge's change notices often come in bursts (connect, then its first model list). */
const MODELS_DEBOUNCE_MS = 50

type Listener = (text: string) => void

/**
 * Server-initiated notices for open sockets: `models_changed` (a reverse-mode
 * bridge connected, left or reported `onDidChangeChatModels`, or a catalog
 * refresh found a different list) and `provider_health` (a routing target's
 * circuit breaker changed state). It watches only while a socket listens.
 */
export class NoticeHub {
  private readonly listeners = new Set<Listener>()
  private models: Set<string> | undefined
  private health = new Map<string, string>()
  private healthTimer: ReturnType<typeof setInterval> | undefined
  private modelsTimer: ReturnType<typeof setInterval> | undefined
  private debounce: ReturnType<typeof setTimeout> | undefined
  private pendingProvider: string | undefined
  private comparing: Promise<void> | undefined

  constructor(
    private readonly sources: NoticeSources,
    private readonly opts: NoticeOptions,
  ) {}

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    if (this.listeners.size === 1) this.start()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) this.stop()
    }
  }

  /** A provider says its model list may have changed (the bridge hub's change event). */
  modelsChanged(provider?: string): void {
    if (this.listeners.size === 0) return
    this.pendingProvider = provider
    if (this.debounce) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      void this.compareModels(this.pendingProvider)
    }, MODELS_DEBOUNCE_MS)
    unref(this.debounce)
  }

  private start(): void {
    this.health = new Map(this.sources.health().map((b) => [b.target, b.state]))
    this.healthTimer = setInterval(() => this.compareHealth(), this.opts.healthPollMs)
    unref(this.healthTimer)
    void this.sources.models().then(
      (ids) => (this.models ??= new Set(ids)),
      () => {},
    )
    if (this.opts.modelsPollMs > 0) {
      this.modelsTimer = setInterval(() => void this.compareModels(undefined), this.opts.modelsPollMs)
      unref(this.modelsTimer)
    }
  }

  private stop(): void {
    for (const t of [this.healthTimer, this.modelsTimer]) if (t) clearInterval(t)
    if (this.debounce) clearTimeout(this.debounce)
    this.healthTimer = this.modelsTimer = this.debounce = undefined
    this.models = undefined
  }

  private broadcast(notice: Record<string, unknown>): void {
    const text = JSON.stringify({ type: 'notice', ...notice })
    for (const l of this.listeners) l(text)
  }

  private compareHealth(): void {
    const next = new Map<string, string>()
    for (const b of this.sources.health()) {
      next.set(b.target, b.state)
      const previous = this.health.get(b.target) ?? 'closed'
      if (previous === b.state) continue
      const slash = b.target.indexOf('/')
      this.broadcast({ event: 'provider_health', target: b.target, provider: slash > 0 ? b.target.slice(0, slash) : b.target, state: b.state, previous, consecutive_failures: b.consecutiveFailures, ...(b.retryInMs === undefined ? {} : { retry_in_ms: b.retryInMs }) })
    }
    this.health = next
  }

  private compareModels(provider: string | undefined): Promise<void> {
    // One comparison at a time; a change during it is caught by the next notice or poll.
    this.comparing ??= (async () => {
      try {
        const ids = new Set(await this.sources.models())
        const before = this.models
        this.models = ids
        if (!before || this.listeners.size === 0) return
        const added = [...ids].filter((id) => !before.has(id))
        const removed = [...before].filter((id) => !ids.has(id))
        if (added.length || removed.length) this.broadcast({ event: 'models_changed', ...(provider ? { provider } : {}), added, removed })
      } catch (err) {
        this.opts.logger.warn('websocket notices: listing models failed', { error: (err as Error).message })
      }
    })().finally(() => {
      this.comparing = undefined
    })
    return this.comparing
  }
}
