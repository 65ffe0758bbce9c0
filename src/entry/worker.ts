import type { Gateway } from '../app.js'
import { isDurableObjectNamespace } from '../pipeline/durable-object-limit-store.js'
import { RELAY_HEADERS, RELAY_ORIGIN } from '../providers/vscode-bridge/relay.js'
import { BRIDGE_CONNECT_PATH } from '../ws/bridge-connect.js'
import { buildWorkerGateway as build, type WorkerEnv as Env } from './worker-gateway.js'

// Durable Object classes: wrangler.toml binds them (BRIDGE_RELAY, RATE_LIMITS, WS_SESSIONS).
export { BridgeRelay } from './worker-bridge-relay.js'
export { RateLimitCounter } from './worker-rate-limits.js'
export { WsSessions } from './worker-ws-sessions.js'

let gateway: Promise<Gateway> | undefined

function refuse(status: number, message: string, code: string | null): Response {
  return Response.json({ error: { message, type: 'invalid_request_error', param: null, code } }, { status })
}

/** GET /bridge/connect with Upgrade: websocket: check the bridge token here, then hand the socket to the provider's relay object. */
function connectBridge(g: Gateway, request: Request, env: Env): Promise<Response> | Response {
  if (!g.bridges.enabled) return refuse(404, 'No vscode-bridge provider with a token is configured, so reverse mode is off.', null)
  const hub = g.bridges.authenticate(request.headers.get('authorization'))
  if (!hub) return refuse(401, 'Missing or wrong bridge token: the bridge must send the token of a vscode-bridge provider of this gateway.', 'bridge_auth_failed')
  const relay = env.BRIDGE_RELAY
  if (!isDurableObjectNamespace(relay)) {
    return refuse(501, 'Reverse mode on Workers needs the BRIDGE_RELAY Durable Object binding (class BridgeRelay) in wrangler.toml; see docs/workers.md.', 'bridge_relay_missing')
  }
  const headers = new Headers(request.headers)
  headers.delete('authorization')
  headers.set(RELAY_HEADERS.provider, hub.provider)
  if (hub.pingIntervalMs) headers.set(RELAY_HEADERS.ping, String(hub.pingIntervalMs))
  return relay.get(relay.idFromName(hub.provider)).fetch(`${RELAY_ORIGIN}/connect`, { headers })
}

/** One gateway per isolate, built on first request from the Worker's bindings. */
export default {
  /**
   * The Cron Trigger (wrangler.toml): runs background batches and
   * fine-tuning jobs that were created since or that an isolate left
   * unfinished, and keeps this invocation alive until they stop. Each
   * finished batch item is already persisted, so no item runs twice; a
   * batch or fine-tuning job still leased by a live run elsewhere is left
   * to it.
   */
  async scheduled(_event: unknown, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }): Promise<void> {
    gateway ??= build(env)
    const g = await gateway
    const report = (what: string) => (err: unknown) => console.error(`scheduled ${what} resume failed`, String((err as Error)?.message ?? err))
    ctx.waitUntil(
      Promise.all([
        g.batches.resume().then(() => g.batches.idle(), report('batch')),
        g.fineTunes.resume().then(() => g.fineTunes.idle(), report('fine-tuning')),
      ]),
    )
  },

  async fetch(request: Request, env: Env, ctx: unknown): Promise<Response> {
    gateway ??= build(env)
    let g: Gateway
    try {
      g = await gateway
    } catch (err) {
      // A config or binding mistake: say what to fix (these messages hold no secrets), and try again on the next request.
      gateway = undefined
      console.error('gateway failed to start', (err as Error).message)
      return Response.json({ error: { message: `The gateway failed to start: ${(err as Error).message}`, type: 'server_error', param: null, code: 'gateway_misconfigured' } }, { status: 500 })
    }
    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket' && new URL(request.url).pathname === BRIDGE_CONNECT_PATH) return connectBridge(g, request, env)
    return g.fetch(request, env, ctx)
  },
}
