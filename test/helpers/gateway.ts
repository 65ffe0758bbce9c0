import { serve } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Server as BridgeServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGateway, type Gateway, type GatewayDeps } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { attachWebSockets, nodeWebSocketUpgrade } from '../../src/entry/node-ws.js'
import { guardedLookup, nodeResolveHost } from '../../src/entry/node-dns.js'
import { undiciClient } from '../../src/entry/undici-client.js'
import { zlibCompressor } from '../../src/entry/zlib-compressor.js'
import { silentLogger } from '../../src/logger.js'

export interface RunningGateway {
  gateway: Gateway
  url: string
  /** Base URL for the openai client: `${url}/v1`. */
  baseURL: string
  /** The Node HTTP server (its `upgrade` event carries the WebSocket connections). */
  server: BridgeServer
  close(): Promise<void>
}

/**
 * Starts a real gateway on an ephemeral loopback port, configured like a
 * user's gateway.config.json, with undici as its upstream client as on Node.
 */
export async function startGateway(rawConfig: Record<string, unknown> = {}, deps: GatewayDeps = {}, env: Record<string, string | undefined> = {}): Promise<RunningGateway> {
  const config = loadConfig(rawConfig, env)
  const gateway = await createGateway(config, { http: undiciClient(), mediaHttp: undiciClient({ lookup: guardedLookup }), resolveHost: nodeResolveHost, logger: silentLogger, compressor: zlibCompressor, webSocket: nodeWebSocketUpgrade, remoteAddress: (c) => getConnInfo(c).remote.address, ...deps })
  const server = serve({ fetch: gateway.fetch, port: 0, hostname: '127.0.0.1' })
  const detachBridges = attachWebSockets(server as unknown as BridgeServer, gateway)
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  return {
    gateway,
    url,
    baseURL: `${url}/v1`,
    server: server as unknown as BridgeServer,
    async close() {
      detachBridges()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
      await gateway.close()
    },
  }
}
