import { GatewayError } from '../errors.js'
import type { DurableObjectNamespaceLike } from '../pipeline/durable-object-limit-store.js'
import type { InternalIdentity } from '../middleware/internal.js'
import type { WebSocketUpgrade, WsAccept } from '../ws/upgrade.js'

/** The slice of the Workers runtime's WebSocket the API uses. */
interface WorkerSocket {
  accept(): void
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (e: { data: string | ArrayBuffer }) => void): void
  addEventListener(type: 'close', listener: (e: { code: number; reason: string }) => void): void
  addEventListener(type: 'error', listener: () => void): void
}
declare const WebSocketPair: { new (): { 0: WorkerSocket; 1: WorkerSocket } }

/**
 * How the Worker hands an authenticated socket to its WsSessions object. Only
 * this code can call the object (it has no route of its own), so the
 * identity the Worker's auth found travels in a header.
 */
export const SESSIONS_ORIGIN = 'https://ws-sessions.internal'
export const SESSION_HEADERS = { identity: 'x-lmgw-ws-identity', protocol: 'x-lmgw-ws-protocol' } as const

/** One object per API key (its key id, a hash), so a client reconnecting with its key reaches the object still running its streams. */
export function sessionName(identity: InternalIdentity): string {
  return identity.keyId === undefined ? 'open' : `key:${identity.keyId}`
}

/**
 * Accepts the socket here (a WebSocketPair, the server end accepted in this
 * isolate or object, the client end returned in a 101) and runs the API on it.
 * Workers expose neither the send-buffer size nor protocol pings: there is no
 * backpressure on the socket (workerd buffers), and liveness uses
 * `{"type":"ping"}` frames the client answers. `outlivesClose`: whether work
 * started for the socket keeps running once it closes (a Durable Object's
 * does; a stateless isolate's request does not).
 */
export function acceptWorkerSocket(accept: WsAccept, outlivesClose: boolean): Response {
  const pair = new WebSocketPair()
  const client = pair[0]
  const server = pair[1]
  server.accept()
  const handlers = accept.open({
    send: (text) => server.send(text),
    close: (code, reason) => server.close(code, reason),
    // No way to drop a connection without a closing handshake here.
    terminate: () => server.close(4408, 'no answer to ping'),
    outlivesClose,
  })
  server.addEventListener('message', (e) => handlers.message(typeof e.data === 'string' ? e.data : new Uint8Array(e.data), typeof e.data !== 'string'))
  server.addEventListener('close', (e) => {
    handlers.closed(e.code, e.reason)
    try {
      server.close(1000, 'closed')
    } catch {
      /* already closed */
    }
  })
  server.addEventListener('error', () => handlers.closed(1006, 'socket error'))
  const headers: Record<string, string> = accept.protocol ? { 'sec-websocket-protocol': accept.protocol } : {}
  return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit)
}

/**
 * The Workers handshake (GatewayDeps.webSocket). With the WS_SESSIONS
 * binding, an authenticated socket is handed to the WsSessions object of its
 * API key, where its streams outlive a dropped connection (resume) and every
 * socket of the key hears the notices. Without it, or for a refused key (closed
 * with 4401 here, before any work), the socket is accepted in this isolate.
 */
export function workerWebSocketUpgrade(sessions: DurableObjectNamespaceLike | undefined): WebSocketUpgrade {
  return async (_c, accept) => {
    if (!sessions || !accept.identity) return acceptWorkerSocket(accept, false)
    const headers: Record<string, string> = { upgrade: 'websocket', [SESSION_HEADERS.identity]: JSON.stringify(accept.identity) }
    if (accept.protocol) headers[SESSION_HEADERS.protocol] = accept.protocol
    let res: Response
    try {
      // A stub per call: workerd binds a stub to the request that made it.
      res = await sessions.get(sessions.idFromName(sessionName(accept.identity))).fetch(`${SESSIONS_ORIGIN}/connect`, { headers })
    } catch (err) {
      throw new GatewayError('unavailable', `The WebSocket session object (WS_SESSIONS) could not be reached: ${(err as Error).message.slice(0, 200)}`, { code: 'websocket_sessions_unavailable' })
    }
    const webSocket = (res as Response & { webSocket?: unknown }).webSocket
    if (res.status !== 101 || !webSocket) {
      const text = await res.text().catch(() => '')
      throw new GatewayError('unavailable', `The WebSocket session object (WS_SESSIONS) answered ${res.status}: ${text.slice(0, 300)}`, { code: 'websocket_sessions_unavailable' })
    }
    // A fresh response: the object's headers are immutable, and middleware adds its own.
    return new Response(null, { status: 101, webSocket, headers: res.headers } as ResponseInit)
  }
}
