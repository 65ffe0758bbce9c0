import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createGateway } from '../app.js'
import { zlibCompressor } from './zlib-compressor.js'
import { nodeResolveHost } from './node-dns.js'
import { bunWebSocketHandlers, bunWebSocketUpgrade } from './bun-ws.js'
import { ConfigError, loadConfig } from '../config.js'

/** Bun serves the same fetch handler; upstream calls use Bun's fetch. */
let raw: unknown
if (process.env.GATEWAY_CONFIG) raw = JSON.parse(await readFile(process.env.GATEWAY_CONFIG, 'utf8'))
let config
try {
  config = loadConfig(raw, process.env)
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}
const publicDir = join(import.meta.dir, '..', '..', 'public')
const gateway = await createGateway(config, {
  compressor: zlibCompressor,
  resolveHost: nodeResolveHost,
  webSocket: bunWebSocketUpgrade,
  assets: async (path) => {
    const file = Bun.file(join(publicDir, path))
    return (await file.exists()) ? new Response(file) : null
  },
})
const server = Bun.serve({ port: config.server.port, hostname: config.server.host, fetch: gateway.fetch, idleTimeout: 255, websocket: bunWebSocketHandlers(gateway.webSockets?.opts.config) })
gateway.logger.info('gateway listening (bun)', { url: `http://${config.server.host}:${server.port}` })
