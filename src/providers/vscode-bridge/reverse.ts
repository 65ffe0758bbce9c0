import { z } from 'zod'
import { GatewayError } from '../../errors.js'
import type { RelayStub } from './relay.js'
import type { BridgeReply, BridgeTransport } from './transport.js'

/**
 * Reverse mode, gateway side: a bridge dialled in over a WebSocket and the
 * gateway multiplexes protocol v1 calls over it (frames in bridge/README.md).
 * Runtime-neutral: the entry adapts its socket (ws on Node, Bun's, a Workers
 * WebSocketPair) to `BridgeSocket` and feeds frames to `receive`.
 */
export interface BridgeSocket {
  send(data: string): void
  close(code?: number, reason?: string): void
}

const Frame = z.union([
  z.object({ type: z.literal('response'), id: z.union([z.string(), z.number()]), status: z.number().int(), headers: z.record(z.string(), z.string()).optional(), body: z.unknown() }),
  z.object({ type: z.literal('chunk'), id: z.union([z.string(), z.number()]), data: z.unknown() }),
  z.object({ type: z.literal('end'), id: z.union([z.string(), z.number()]) }),
  z.object({ type: z.enum(['ping', 'pong', 'models_changed']) }),
])

/** A queue of events a consumer iterates; the producer pushes, ends or fails it. */
class EventQueue implements AsyncIterable<unknown> {
  private items: unknown[] = []
  private done = false
  private error: unknown
  private wake: (() => void) | undefined

  constructor(private readonly onStop: () => void) {}

  push(item: unknown): void {
    this.items.push(item)
    this.notify()
  }

  end(error?: unknown): void {
    if (this.done) return
    this.done = true
    this.error = error
    this.notify()
  }

  private notify(): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    try {
      for (;;) {
        if (this.items.length) {
          yield this.items.shift()
          continue
        }
        if (this.done) {
          if (this.error !== undefined) throw this.error
          return
        }
        await new Promise<void>((resolve) => (this.wake = resolve))
      }
    } finally {
      // Left early (cut by a stop sequence, client gone): the bridge must stop the model.
      if (!this.done) this.onStop()
    }
  }
}

interface Pending {
  resolve(reply: BridgeReply): void
  reject(err: unknown): void
  queue?: EventQueue
}

export interface ChannelOptions {
  provider: string
  /** Application-level ping period; a silent socket is dropped after two. */
  pingIntervalMs?: number
  onClose?(): void
  /** The bridge said its model list changed (onDidChangeChatModels). */
  onModelsChanged?(): void
}

/** One connected bridge: multiplexes calls by id, with cancellation. */
export class ReverseChannel implements BridgeTransport {
  readonly kind = 'reverse' as const
  readonly connectedAt = Date.now()
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private lastSeen = Date.now()
  private readonly timer: ReturnType<typeof setInterval>
  private open = true

  constructor(
    private readonly socket: BridgeSocket,
    private readonly opts: ChannelOptions,
  ) {
    const every = opts.pingIntervalMs ?? 25_000
    this.timer = setInterval(() => {
      if (Date.now() - this.lastSeen > 2 * every) return this.close(4000, 'no frames from the bridge')
      this.sendFrame({ type: 'ping' })
    }, every)
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  get isOpen(): boolean {
    return this.open
  }

  get inFlight(): number {
    return this.pending.size
  }

  /** A text frame from the socket. Garbage is ignored: the bridge is the only peer. */
  receive(text: string): void {
    this.lastSeen = Date.now()
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch {
      return
    }
    const parsed = Frame.safeParse(raw)
    if (!parsed.success) return
    const frame = parsed.data
    switch (frame.type) {
      case 'ping':
        return this.sendFrame({ type: 'pong' })
      case 'pong':
        return
      case 'models_changed':
        return this.opts.onModelsChanged?.()
    }
    const id = typeof frame.id === 'number' ? frame.id : Number(frame.id)
    const p = this.pending.get(id)
    if (!p) return
    if (frame.type === 'response') {
      this.pending.delete(id)
      const headers = frame.headers ?? {}
      p.resolve({
        status: frame.status,
        header: (name) => headers[name.toLowerCase()] ?? null,
        json: async () => frame.body,
        events: () => (async function* () {})(),
        discard: async () => {},
      })
    } else if (frame.type === 'chunk') {
      if (!p.queue) {
        // The first chunk is the bridge's "200": the model produced its first part.
        const queue = new EventQueue(() => this.cancel(id))
        p.queue = queue
        p.resolve({ status: 200, header: (name) => (name.toLowerCase() === 'content-type' ? 'application/x-ndjson' : null), json: async () => null, events: () => queue, discard: async () => this.cancel(id) })
      }
      p.queue.push(frame.data)
    } else {
      this.pending.delete(id)
      if (p.queue) p.queue.end()
      else p.resolve({ status: 200, header: () => null, json: async () => null, events: () => (async function* () {})(), discard: async () => {} })
    }
  }

  call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<BridgeReply> {
    if (!this.open) return Promise.reject(this.lost())
    if (signal.aborted) return Promise.reject(abortReason(signal))
    const id = this.nextId++
    return new Promise<BridgeReply>((resolve, reject) => {
      const onAbort = () => {
        const p = this.pending.get(id)
        if (!p) return
        this.cancel(id)
        const reason = abortReason(signal)
        if (p.queue) p.queue.end(reason)
        else p.reject(reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      const settle = () => signal.removeEventListener('abort', onAbort)
      this.pending.set(id, {
        resolve: (r) => {
          // Streams keep listening to the signal until they end; plain answers are done.
          if (r.status !== 200 || !this.pending.get(id)?.queue) settle()
          resolve(r)
        },
        reject: (e) => {
          settle()
          reject(e)
        },
      })
      this.sendFrame(method === 'GET' ? { id, type: 'request', method, path } : { id, type: 'request', method, path, body })
    })
  }

  /** Stops request `id` on the bridge; no further frames for it are expected. */
  private cancel(id: number): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    p.queue?.end(new GatewayError('cancelled', 'The request was cancelled.'))
    this.sendFrame({ id, type: 'cancel' })
  }

  private sendFrame(frame: Record<string, unknown>): void {
    if (!this.open) return
    try {
      this.socket.send(JSON.stringify(frame))
    } catch {
      this.closed()
    }
  }

  private lost(): GatewayError {
    return new GatewayError('unavailable', `The VS Code bridge connected in reverse mode (provider "${this.opts.provider}") disconnected.`, { code: 'bridge_disconnected' })
  }

  /** The runtime reports the socket closed: every call in flight fails. */
  closed(): void {
    if (!this.open) return
    this.open = false
    clearInterval(this.timer)
    const err = this.lost()
    for (const p of this.pending.values()) {
      if (p.queue) p.queue.end(err)
      else p.reject(err)
    }
    this.pending.clear()
    this.opts.onClose?.()
  }

  close(code = 1000, reason = 'gateway closing'): void {
    if (!this.open) return
    try {
      this.socket.close(code, reason)
    } catch {
      /* already gone */
    }
    this.closed()
  }
}

function abortReason(signal: AbortSignal): GatewayError {
  return signal.reason instanceof GatewayError ? signal.reason : new GatewayError('cancelled', 'The request was cancelled.')
}

/**
 * The bridges connected for one provider. The newest open one serves calls:
 * a bridge that reconnects replaces its half-dead predecessor.
 */
export class BridgeHub {
  private readonly channels: ReverseChannel[] = []
  private readonly listeners = new Set<() => void>()

  constructor(
    readonly provider: string,
    readonly pingIntervalMs?: number,
  ) {}

  /**
   * Workers: the bridge's socket is held by a Durable Object, not by this
   * isolate; calls go through the object's stub (relay.ts), made per call
   * since workerd binds a stub to the request that made it. Set by the entry.
   */
  relay?: () => RelayStub

  current(): ReverseChannel | undefined {
    for (let i = this.channels.length - 1; i >= 0; i--) if (this.channels[i].isOpen) return this.channels[i]
    return undefined
  }

  get size(): number {
    return this.channels.length
  }

  attach(socket: BridgeSocket): ReverseChannel {
    const channel = new ReverseChannel(socket, {
      provider: this.provider,
      pingIntervalMs: this.pingIntervalMs,
      onClose: () => {
        const i = this.channels.indexOf(channel)
        if (i >= 0) this.channels.splice(i, 1)
        this.changed()
      },
      onModelsChanged: () => this.changed(),
    })
    this.channels.push(channel)
    this.changed()
    return channel
  }

  /** Called when a bridge connects, leaves, or reports new models: the model catalog is stale. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The model list may have changed elsewhere (a relay saw a bridge come, go or report new models). */
  notifyChanged(): void {
    this.changed()
  }

  private changed(): void {
    for (const l of this.listeners) l()
  }

  closeAll(): void {
    for (const c of [...this.channels]) c.close(1001, 'gateway shutting down')
  }
}
