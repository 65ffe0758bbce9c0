import { z } from 'zod'
import type { Gateway } from '../app.js'
import { WS_SUBPROTOCOL } from '../ws/protocol.js'
import { buildWorkerGateway, type WorkerEnv } from './worker-gateway.js'
import { acceptWorkerSocket, SESSION_HEADERS } from './worker-ws.js'

const Identity = z.object({ keyId: z.string().min(1).max(200).optional(), isAdmin: z.boolean() })

function refuse(status: number, message: string, code: string): Response {
  return Response.json({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code } }, { status })
}

/**
 * Cloudflare Workers: the WebSocket API's sockets of one API key
 * (GET /v1/ws), held in one Durable Object. The Worker authenticates the
 * upgrade (4401 before any work) and hands the socket here with the caller's
 * identity; this object runs the same runtime-neutral session (src/ws/) on a
 * gateway of its own, built from the same env. So a socket's requests are the
 * object's work, not the handshake request's:
 *
 * - a stream keeps running when its socket drops (for the reconnect grace),
 *   filling the `streams:` resume buffer, and a `resume` on the key's next
 *   socket lands in this same object and follows it live;
 * - every socket of the key hears this object's notices (models changed,
 *   provider health), polled while any socket is open.
 *
 * Sockets are accepted plainly, not with the hibernation API: hibernation
 * would drop the running streams and timers (pings, notices) held in memory.
 * The object stays in memory while a socket is open (billed as duration).
 */
export class WsSessions {
  private gateway: Promise<Gateway> | undefined

  constructor(
    _state: unknown,
    private readonly env: WorkerEnv,
  ) {}

  async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname !== '/connect') return refuse(404, 'WsSessions only takes sockets at /connect.', 'not_found')
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return refuse(426, 'Expected a WebSocket upgrade.', 'upgrade_required')
    let raw: unknown
    try {
      raw = JSON.parse(request.headers.get(SESSION_HEADERS.identity) ?? '')
    } catch {
      return refuse(400, `Missing or malformed ${SESSION_HEADERS.identity} header: the Worker passes the caller's identity as JSON.`, 'invalid_identity')
    }
    const identity = Identity.safeParse(raw)
    if (!identity.success) return refuse(400, `Invalid ${SESSION_HEADERS.identity} header: ${identity.error.issues[0].message}`, 'invalid_identity')
    let g: Gateway
    try {
      g = await (this.gateway ??= buildWorkerGateway(this.env))
    } catch (err) {
      this.gateway = undefined
      console.error('websocket session object failed to start its gateway', (err as Error).message)
      return refuse(500, `The gateway failed to start: ${(err as Error).message}`, 'gateway_misconfigured')
    }
    if (!g.webSockets) return refuse(404, 'The WebSocket API is disabled on this gateway (websocket.enabled is false).', 'websocket_disabled')
    const protocol = request.headers.get(SESSION_HEADERS.protocol) === WS_SUBPROTOCOL ? WS_SUBPROTOCOL : undefined
    return acceptWorkerSocket(g.webSockets.accept({ keyId: identity.data.keyId, isAdmin: identity.data.isAdmin }, protocol), true)
  }
}
