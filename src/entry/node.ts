import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { Server as BridgeServer } from 'node:http'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Server as HttpServer } from 'node:http'
import { serve } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import { createGateway, VERSION, type Gateway } from '../app.js'
import { ConfigError, loadConfig, type GatewayConfig } from '../config.js'
import { StorageError } from '../storage/index.js'
import { attachWebSockets, nodeWebSocketUpgrade } from './node-ws.js'
import { guardedLookup, nodeResolveHost } from './node-dns.js'
import { undiciClient } from './undici-client.js'
import { zlibCompressor } from './zlib-compressor.js'

/** The package root: the first folder up from this module with a package.json (src/entry/ when run from source, dist/node/ when bundled). */
const root = packageRoot(dirname(fileURLToPath(import.meta.url)))

function packageRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d
    if (dirname(d) === d) return join(dir, '..', '..')
  }
}

export async function readConfigFile(env: NodeJS.ProcessEnv): Promise<GatewayConfig> {
  const path = env.GATEWAY_CONFIG
  let raw: unknown
  if (path) {
    let text: string
    try {
      text = await readFile(resolve(path), 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read GATEWAY_CONFIG=${path}: ${(err as Error).message}`)
    }
    try {
      raw = JSON.parse(text)
    } catch (err) {
      throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`)
    }
  }
  return loadConfig(raw, env)
}

/**
 * Timeouts for a server in front of long generations: keep-alive above the
 * 60 s idle timeout of common proxies and tunnels, header timeout just above
 * it, and no overall request timeout (a stream may run for many minutes).
 */
export function tuneServer(server: HttpServer): void {
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  server.requestTimeout = 0
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

export async function assetsFromDisk(path: string): Promise<Response | null> {
  try {
    const data = await readFile(join(root, 'public', path))
    const type = path.endsWith('.js') ? 'text/javascript; charset=utf-8' : path.endsWith('.css') ? 'text/css' : 'application/octet-stream'
    return new Response(data, { headers: { 'content-type': type, 'cache-control': 'public, max-age=3600' } })
  } catch {
    return null
  }
}

export async function startNode(): Promise<void> {
  let config: GatewayConfig
  try {
    config = await readConfigFile(process.env)
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err)
    process.exit(1)
  }
  let gateway: Gateway
  try {
    gateway = await createGateway(config, { http: undiciClient(), mediaHttp: undiciClient({ lookup: guardedLookup }), resolveHost: nodeResolveHost, assets: assetsFromDisk, webSocket: nodeWebSocketUpgrade, remoteAddress: (c) => getConnInfo(c).remote.address, compressor: zlibCompressor })
  } catch (err) {
    console.error(err instanceof StorageError || err instanceof ConfigError ? err.message : err)
    process.exit(1)
  }
  const { host, port } = config.server
  if (config.server.apiKeys.length === 0 && !isLoopback(host)) {
    if (!config.server.allowOpen) {
      console.error(
        `Refusing to start: no API keys are configured and the gateway would listen on ${host}, where anyone who can reach it could use your models. Set GATEWAY_API_KEYS (or server.apiKeys), bind to 127.0.0.1, or set server.allowOpen: true if you really mean it.`,
      )
      process.exit(1)
    }
    gateway.logger.warn(`!!! No API keys are configured and the gateway is bound to ${host} (server.allowOpen): anyone who can reach this address can use your models. !!!`)
  }
  const server = serve({ fetch: gateway.fetch, port, hostname: host }, (info) => {
    gateway.logger.info('gateway listening', { version: VERSION, url: `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`, providers: gateway.providers.map((p) => `${p.id}:${p.type}`), storage: gateway.storage.describe })
  })
  tuneServer(server as unknown as HttpServer)
  let stopping = false
  attachWebSockets(server as unknown as BridgeServer, gateway)
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    const deadlineMs = Number(process.env.SHUTDOWN_GRACE_MS ?? 25_000)
    gateway.logger.info('shutting down: no new connections, finishing requests in flight', { signal, deadlineMs })
    const closeIdle = (server as unknown as HttpServer).closeIdleConnections?.bind(server)
    server.close(() => void gateway.close().finally(() => process.exit(0)))
    closeIdle?.()
    // Keep-alive sockets that go idle after their last answer are closed as they go.
    const idle = setInterval(() => closeIdle?.(), 250)
    idle.unref()
    setTimeout(() => {
      gateway.logger.warn('shutdown deadline reached: closing the remaining connections')
      ;(server as unknown as HttpServer).closeAllConnections?.()
      void gateway.close().finally(() => process.exit(0))
    }, deadlineMs).unref()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('unhandledRejection', (reason) => gateway.logger.error('unhandled rejection', { error: String((reason as Error)?.stack ?? reason) }))
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void startNode()
