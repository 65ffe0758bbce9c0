/**
 * A circuit breaker per routing target. After `failureThreshold` consecutive
 * failures the circuit opens and the target is skipped; after `cooldownMs` one
 * request is let through as a probe (half-open): success closes the circuit,
 * failure opens it again for another cool-down. The clock is injectable so
 * that tests (and a simulated clock) can drive it.
 */
export type BreakerState = 'closed' | 'open' | 'half_open'

export interface BreakerOptions {
  failureThreshold: number
  cooldownMs: number
  now: () => number
}

export interface BreakerStatus {
  target: string
  state: BreakerState
  consecutiveFailures: number
  /** Milliseconds until an open circuit lets a probe through. */
  retryInMs?: number
}

export class CircuitBreaker {
  private failures = 0
  private openedAt: number | undefined
  private probing = false

  constructor(
    readonly target: string,
    private readonly opts: BreakerOptions,
  ) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed'
    return this.opts.now() - this.openedAt >= this.opts.cooldownMs ? 'half_open' : 'open'
  }

  /** Whether a request may go to the target now; in half-open, only one probe at a time. */
  tryAcquire(): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open' || this.probing) return false
    this.probing = true
    return true
  }

  /** Milliseconds until `tryAcquire` can succeed (0 when it can now). */
  retryInMs(): number {
    if (this.openedAt === undefined) return 0
    return Math.max(0, this.openedAt + this.opts.cooldownMs - this.opts.now())
  }

  success(): void {
    this.failures = 0
    this.openedAt = undefined
    this.probing = false
  }

  failure(): void {
    this.failures++
    if (this.probing || this.failures >= this.opts.failureThreshold) this.openedAt = this.opts.now()
    this.probing = false
  }

  /** A probe that ended without a verdict (the client left): let another one try. */
  release(): void {
    this.probing = false
  }

  status(): BreakerStatus {
    const state = this.state
    const out: BreakerStatus = { target: this.target, state, consecutiveFailures: this.failures }
    if (state === 'open') out.retryInMs = this.retryInMs()
    return out
  }
}

/** The breakers of all targets, created on first use. */
export class BreakerBoard {
  private readonly breakers = new Map<string, CircuitBreaker>()

  constructor(private readonly opts: BreakerOptions & { enabled: boolean }) {}

  get enabled(): boolean {
    return this.opts.enabled
  }

  get(target: string): CircuitBreaker {
    let b = this.breakers.get(target)
    if (!b) {
      b = new CircuitBreaker(target, this.opts)
      this.breakers.set(target, b)
    }
    return b
  }

  list(): BreakerStatus[] {
    return [...this.breakers.values()].map((b) => b.status())
  }
}
