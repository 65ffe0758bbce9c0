import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Gateway } from '../app.js'
import { GatewayError } from '../errors.js'
import { hardFrameLimit } from '../ws/options.js'
import { BRIDGE_CONNECT_PATH } from '../ws/bridge-connect.js'
import type { WebSocketUpgrade, WsAccept } from '../ws/upgrade.js'
import { bridgeUpgrade } from './node-bridge-upgrade.js'

/** Where the route leaves its decision for the `upgrade` listener: the fetch env of an upgrade request, under a symbol. */
const SLOT = Symbol('vscode-lm-gateway.node-ws')

interface Slot {
  accept?: WsAccept
}

/**
 * The Node handshake (GatewayDeps.webSocket). On Node the upgrade arrives as
 * the server's `upgrade` event, not a request: the listener below runs the
 * request through the app (IP allowlist, auth, the route) with a slot in its
 * env, and the route's decision lands there. A Node Response cannot carry
 * status 101, so the placeholder returned here is never written.
 */
export const nodeWebSocketUpgrade: WebSocketUpgrade = (c, accept) => {
  const slot = (c.env as Record<symbol, Slot | undefined> | undefined)?.[SLOT]
  if (!slot) throw new GatewayError('invalid_request', 'This WebSocket handshake did not come through the server\'s upgrade handling.', { status: 426, code: 'upgrade_required' })
  slot.accept = accept
  return new Response(null, { status: 204 })
}

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1])
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers })
}

/** Writes a refused handshake's HTTP answer (the app's error, in its dialect's shape) and closes. */
async function writeResponse(socket: Duplex, res: Response): Promise<void> {
  const body = Buffer.from(await res.arrayBuffer())
  let head = `HTTP/1.1 ${res.status} ${res.statusText || 'Error'}\r\n`
  res.headers.forEach((value, name) => {
    if (name !== 'content-length' && name !== 'connection' && name !== 'transfer-encoding' && name !== 'content-encoding') head += `${name}: ${value}\r\n`
  })
  head += `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`
  socket.end(Buffer.concat([Buffer.from(head), body]))
}

function wire(ws: WebSocket, accept: WsAccept): void {
  const handlers = accept.open({
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    bufferedAmount: () => ws.bufferedAmount,
    ping: () => ws.ping(),
  })
  ws.on('message', (data, isBinary) => handlers.message(Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data, isBinary))
  ws.on('pong', () => handlers.pong())
  ws.on('error', () => ws.terminate())
  ws.on('close', (code, reason) => handlers.closed(code, reason.toString('utf8')))
}

/**
 * The server's one `upgrade` listener, with `ws` in noServer mode as the
 * bridge has it: /bridge/connect goes to the bridge's handshake, every other
 * path through the app (GET /v1/ws upgrades; anything else gets the app's
 * answer, e.g. 404, as a plain HTTP response).
 */
export function attachWebSockets(server: Server, gateway: Pick<Gateway, 'fetch' | 'bridges' | 'webSockets' | 'logger'>): () => void {
  const bridge = bridgeUpgrade(gateway.bridges, gateway.logger)
  const protocols = new WeakMap<IncomingMessage, string>()
  const config = gateway.webSockets?.opts.config
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config ? hardFrameLimit(config) : 1024 * 1024,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => protocols.get(req) ?? false,
  })
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === BRIDGE_CONNECT_PATH) return bridge.handle(req, socket, head)
    socket.on('error', () => socket.destroy())
    const slot: Slot = {}
    void (async () => {
      let res: Response
      try {
        res = await gateway.fetch(toRequest(req), { incoming: req, outgoing: undefined, [SLOT]: slot })
      } catch {
        res = new Response(JSON.stringify({ error: { message: 'Internal gateway error.', type: 'server_error', param: null, code: null } }), { status: 500, headers: { 'content-type': 'application/json' } })
      }
      const accept = slot.accept
      if (!accept) return writeResponse(socket, res)
      if (accept.protocol) protocols.set(req, accept.protocol)
      wss.handleUpgrade(req, socket, head, (ws) => wire(ws, accept))
    })().catch(() => socket.destroy())
  }
  server.on('upgrade', onUpgrade)
  return () => {
    server.off('upgrade', onUpgrade)
    bridge.close()
    gateway.webSockets?.closeAll()
    wss.close()
  }
}
