import { GatewayError } from '../errors.js'
import { encodeRelayError, RELAY_HEADERS } from '../providers/vscode-bridge/relay.js'
import { BridgeHub, type ReverseChannel } from '../providers/vscode-bridge/reverse.js'

/** The workerd APIs used here (no @cloudflare/workers-types in this repo). */
interface HibernatableSocket {
  send(data: string): void
  close(code?: number, reason?: string): void
  serializeAttachment(value: unknown): void
  deserializeAttachment(): unknown
}
export interface DurableObjectStateLike {
  acceptWebSocket(ws: HibernatableSocket, tags?: string[]): void
  getWebSockets(tag?: string): HibernatableSocket[]
  storage: unknown
}
declare const WebSocketPair: { new (): { 0: HibernatableSocket; 1: HibernatableSocket } }

const encoder = new TextEncoder()

/**
 * Cloudflare Workers, reverse mode: the one place a VS Code bridge's
 * WebSocket lives (one object per vscode-bridge provider, by id), so that a
 * request reaching any isolate reaches the bridge. The worker entry checks the
 * bridge token, then hands the upgrade here; calls arrive as HTTP from the
 * isolates (relay.ts) and travel over the socket through the same
 * ReverseChannel multiplexer the Node server uses.
 *
 * The socket is accepted with the hibernation API: if the runtime evicts the
 * object while the socket stays open, the channel is rebuilt from
 * `getWebSockets()` on the next event (calls in flight cannot span an eviction:
 * an object with requests open is not evicted).
 */
export class BridgeRelay {
  private hub: BridgeHub | undefined
  private readonly channels = new Map<HibernatableSocket, ReverseChannel>()
  private readonly calls = new Map<string, AbortController>()
  private generation = 0

  constructor(private readonly state: DurableObjectStateLike) {}

  private ensureHub(provider = 'vscode', pingIntervalMs?: number): BridgeHub {
    if (this.hub) return this.hub
    const hub = new BridgeHub(provider, pingIntervalMs)
    hub.onChange(() => this.generation++)
    this.hub = hub
    // Woken after an eviction: the sockets are still open, their channels are not.
    for (const ws of this.state.getWebSockets()) this.attach(ws)
    return hub
  }

  private attach(ws: HibernatableSocket): ReverseChannel {
    const channel = this.hub!.attach({
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
    })
    this.channels.set(ws, channel)
    return channel
  }

  private stamp(headers: Record<string, string>, connected: boolean): Headers {
    return new Headers({ ...headers, [RELAY_HEADERS.state]: connected ? 'connected' : 'absent', [RELAY_HEADERS.generation]: String(this.generation) })
  }

  private fail(err: unknown): Response {
    const e = GatewayError.from(err)
    return new Response(JSON.stringify(encodeRelayError(e)), { status: e.status, headers: this.stamp({ 'content-type': 'application/json', [RELAY_HEADERS.error]: '1' }, true) })
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname === '/connect') return this.connect(request)
    const hub = this.ensureHub(request.headers.get(RELAY_HEADERS.provider) ?? undefined)
    if (url.pathname === '/cancel') {
      const key = request.headers.get(RELAY_HEADERS.call)
      if (key) this.calls.get(key)?.abort(new GatewayError('cancelled', 'The request was cancelled.'))
      return new Response(null, { status: 204, headers: this.stamp({}, hub.current() !== undefined) })
    }
    if (!url.pathname.startsWith('/call/')) return new Response('not found', { status: 404 })
    const channel = hub.current()
    if (!channel) return new Response(null, { status: 503, headers: this.stamp({}, false) })
    const key = request.headers.get(RELAY_HEADERS.call) ?? crypto.randomUUID()
    const ctrl = new AbortController()
    this.calls.set(key, ctrl)
    request.signal?.addEventListener('abort', () => ctrl.abort(new GatewayError('cancelled', 'The request was cancelled.')), { once: true })
    const forget = () => this.calls.delete(key)
    const method = request.method === 'POST' ? 'POST' : 'GET'
    const path = url.pathname.slice('/call'.length) + url.search
    try {
      const body = method === 'POST' ? await request.json() : undefined
      const reply = await channel.call(method, path, body, ctrl.signal)
      const contentType = reply.header('content-type')
      if (reply.status !== 200 || contentType !== 'application/x-ndjson') {
        forget()
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        const retryAfter = reply.header('retry-after')
        if (retryAfter) headers['retry-after'] = retryAfter
        return new Response(JSON.stringify((await reply.json()) ?? null), { status: reply.status, headers: this.stamp(headers, true) })
      }
      const events = reply.events()[Symbol.asyncIterator]()
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const next = await events.next()
            if (next.done) {
              forget()
              controller.close()
            } else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`))
          } catch (err) {
            // The socket dropped or the call was cancelled mid-answer: the isolate rethrows this line as the GatewayError.
            forget()
            controller.enqueue(encoder.encode(`${JSON.stringify({ relay_error: encodeRelayError(GatewayError.from(err)) })}\n`))
            controller.close()
          }
        },
        async cancel() {
          forget()
          // Leaving the iteration early sends the bridge a cancel frame (ReverseChannel).
          await events.return?.(undefined)
        },
      })
      return new Response(stream, { status: 200, headers: this.stamp({ 'content-type': 'application/x-ndjson' }, true) })
    } catch (err) {
      forget()
      return this.fail(err)
    }
  }

  /** The bridge's upgrade, already authenticated by the worker entry. */
  private connect(request: Request): Response {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 })
    const provider = request.headers.get(RELAY_HEADERS.provider) ?? 'vscode'
    const ping = Number(request.headers.get(RELAY_HEADERS.ping)) || undefined
    this.ensureHub(provider, ping)
    const pair = new WebSocketPair()
    const client = pair[0]
    const server = pair[1]
    this.state.acceptWebSocket(server)
    this.attach(server)
    return new Response(null, { status: 101, webSocket: client } as ResponseInit)
  }

  webSocketMessage(ws: HibernatableSocket, message: string | ArrayBuffer): void {
    this.ensureHub()
    const channel = this.channels.get(ws) ?? this.attach(ws)
    if (typeof message === 'string') channel.receive(message)
  }

  webSocketClose(ws: HibernatableSocket, code: number, reason: string): void {
    this.gone(ws)
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason)
    } catch {
      /* already closed */
    }
  }

  webSocketError(ws: HibernatableSocket): void {
    this.gone(ws)
  }

  private gone(ws: HibernatableSocket): void {
    const channel = this.channels.get(ws)
    this.channels.delete(ws)
    channel?.closed()
  }
}
