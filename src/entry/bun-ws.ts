import { GatewayError } from '../errors.js'
import { hardFrameLimit, type WebSocketConfig } from '../ws/options.js'
import type { WebSocketUpgrade, WsAccept, WsHandlers } from '../ws/upgrade.js'

/** The slice of Bun's ServerWebSocket the API uses (bun-types would redefine Node's globals). */
interface BunSocket {
  data: { accept: WsAccept; handlers?: WsHandlers }
  send(text: string): number
  close(code?: number, reason?: string): void
  terminate(): void
  ping(): number
  getBufferedAmount(): number
}

interface BunServer {
  upgrade(req: Request, options: { data: unknown; headers?: Record<string, string> }): boolean
}

/**
 * The Bun handshake (GatewayDeps.webSocket): Bun passes its server as the
 * fetch env, and `server.upgrade` answers 101 itself (with the echoed
 * subprotocol), so the Response returned here is ignored.
 */
export const bunWebSocketUpgrade: WebSocketUpgrade = (c, accept) => {
  const server = c.env as BunServer | undefined
  if (typeof server?.upgrade !== 'function') throw new GatewayError('invalid_request', 'This Bun server was started without WebSocket support.', { status: 426, code: 'upgrade_required' })
  const headers = accept.protocol ? { 'sec-websocket-protocol': accept.protocol } : undefined
  if (!server.upgrade(c.req.raw, { data: { accept }, headers })) throw new GatewayError('invalid_request', 'Invalid WebSocket handshake.', { code: 'invalid_handshake' })
  return new Response(null)
}

/** `Bun.serve({ websocket })`: adapts Bun's sockets to the API (src/ws/upgrade.ts). */
export function bunWebSocketHandlers(config: WebSocketConfig | undefined) {
  return {
    maxPayloadLength: config ? hardFrameLimit(config) : 1024 * 1024,
    perMessageDeflate: false,
    open(ws: BunSocket) {
      ws.data.handlers = ws.data.accept.open({
        send: (text) => void ws.send(text),
        close: (code, reason) => ws.close(code, reason),
        terminate: () => ws.terminate(),
        bufferedAmount: () => ws.getBufferedAmount(),
        ping: () => void ws.ping(),
      })
    },
    message(ws: BunSocket, message: string | Uint8Array) {
      ws.data.handlers?.message(typeof message === 'string' ? message : new Uint8Array(message), typeof message !== 'string')
    },
    pong(ws: BunSocket) {
      ws.data.handlers?.pong()
    },
    drain(ws: BunSocket) {
      ws.data.handlers?.drain()
    },
    close(ws: BunSocket, code: number, reason: string) {
      ws.data.handlers?.closed(code, reason)
    },
  }
}
