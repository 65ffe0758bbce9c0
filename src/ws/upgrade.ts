import type { Context } from 'hono'
import type { InternalIdentity } from '../middleware/internal.js'

/**
 * The contract between the runtime-neutral WebSocket API (src/ws/) and each
 * runtime's socket (src/entry/*-ws.ts): the route decides whether and how to
 * accept, the runtime performs the handshake and adapts its socket.
 *
 * Hono's own `upgradeWebSocket` helpers do not fit: they cannot echo the
 * chosen subprotocol (browsers fail the handshake without it) and hide the
 * send-buffer size and protocol pings that backpressure and liveness need.
 */
export interface WsPeer {
  send(text: string): void
  /** A closing handshake with a code (1000, 1001, 1008, 3000–4999) and a short reason. */
  close(code: number, reason: string): void
  /** Drops the connection without a closing handshake (a dead peer never answers one). */
  terminate(): void
  /** Bytes queued for the client and not yet written; absent where the runtime does not tell (Workers). */
  bufferedAmount?(): number
  /** A protocol-level ping (Node, Bun); absent → the server sends `{"type":"ping"}` and expects any frame back. */
  ping?(): void
  /**
   * False where the runtime ends the socket's work when it closes (Workers:
   * the isolate drops the request's I/O and timers). Streams then stop at the
   * drop, ending their resume buffer, instead of waiting for a reconnect.
   */
  outlivesClose?: boolean
}

/** What the runtime reports from its socket. */
export interface WsHandlers {
  message(data: string | Uint8Array, binary: boolean): void
  /** A protocol-level pong arrived. */
  pong(): void
  /** The send buffer drained (runtimes that report it; others are polled). */
  drain(): void
  closed(code: number, reason: string): void
}

export interface WsAccept {
  /** The subprotocol to echo in the handshake, when the client offered it. */
  protocol: string | undefined
  /**
   * The caller the socket's requests run as; undefined when the key was
   * missing or wrong (`open` then closes the socket with 4401). A runtime that
   * hands sockets elsewhere (Workers: the WsSessions Durable Object) passes it on.
   */
  identity: InternalIdentity | undefined
  /** The socket is open: the API's handlers for it. */
  open(peer: WsPeer): WsHandlers
}

/**
 * Performs the upgrade for the request in `c` (the route has checked it) and
 * returns the handshake response the runtime expects from the fetch handler.
 */
export type WebSocketUpgrade = (c: Context, accept: WsAccept) => Response | Promise<Response>
