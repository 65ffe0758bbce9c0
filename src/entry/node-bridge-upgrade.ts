import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type RawData } from 'ws'
import type { Logger } from '../logger.js'
import { BRIDGE_CONNECT_PATH, type BridgeConnector } from '../ws/bridge-connect.js'

function refuse(socket: Duplex, status: number, text: string, message: string): void {
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', code: status === 401 ? 'bridge_auth_failed' : null } })
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

function text(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data as Buffer).toString('utf8')
}

/** One WebSocket endpoint's handshake on Node, for the server's single `upgrade` listener (node-ws.ts). */
export interface NodeUpgradeHandler {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void
  close(): void
}

/**
 * Reverse mode on Node: the handshake of /bridge/connect. It checks the
 * bridge token before upgrading, and hands the socket to the connector.
 */
export function bridgeUpgrade(connector: BridgeConnector, logger?: Logger): NodeUpgradeHandler {
  // Bridge → gateway frames are small (events, model lists); embeddings are the largest.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false })
  const handle = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    if (!connector.enabled) return refuse(socket, 404, 'Not Found', 'No vscode-bridge provider with a token is configured, so reverse mode is off.')
    const hub = connector.authenticate(req.headers.authorization)
    if (!hub) return refuse(socket, 401, 'Unauthorized', 'Missing or wrong bridge token: the bridge must send the token of a vscode-bridge provider of this gateway.')
    wss.handleUpgrade(req, socket, head, (ws) => {
      const channel = connector.attach(hub, {
        send: (data) => ws.send(data),
        // 4000: the bridge went silent; a dead peer would never finish a closing handshake.
        close: (code, reason) => (code === 4000 ? ws.terminate() : ws.close(code, reason)),
      })
      logger?.info('vscode bridge connected (reverse mode)', { provider: hub.provider, bridges: hub.size })
      ws.on('message', (data, isBinary) => {
        if (!isBinary) channel.receive(text(data))
      })
      ws.on('error', () => ws.terminate())
      ws.on('close', () => {
        channel.closed()
        logger?.info('vscode bridge disconnected (reverse mode)', { provider: hub.provider, bridges: hub.size })
      })
    })
  }
  return {
    handle,
    close() {
      connector.closeAll()
      wss.close()
    },
  }
}

/**
 * The bridge endpoint alone on a server's `upgrade` event (other paths are
 * left to other listeners). The entry uses attachWebSockets (node-ws.ts),
 * which serves this endpoint and GET /v1/ws from one listener.
 */
export function attachBridgeUpgrade(server: Server, connector: BridgeConnector, logger?: Logger): () => void {
  const bridge = bridgeUpgrade(connector, logger)
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== BRIDGE_CONNECT_PATH) {
      if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found', `No WebSocket endpoint at ${path}.`)
      return
    }
    bridge.handle(req, socket, head)
  }
  server.on('upgrade', onUpgrade)
  return () => {
    server.off('upgrade', onUpgrade)
    bridge.close()
  }
}
