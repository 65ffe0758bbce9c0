import { z } from '@hono/zod-openapi'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import { GatewayError } from '../errors.js'
import { presentedKey } from '../middleware/auth.js'
import { WS_PATH, WS_SUBPROTOCOL } from '../ws/protocol.js'
import type { WsServer } from '../ws/server.js'
import type { WebSocketUpgrade } from '../ws/upgrade.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

export interface WsRouteDeps {
  /** Undefined when `websocket.enabled` is false. */
  server: WsServer | undefined
  /** The runtime's handshake (src/entry/*-ws.ts); undefined where the runtime offers none. */
  upgrade: WebSocketUpgrade | undefined
}

/**
 * GET /v1/ws: the multiplexed WebSocket API (docs/websocket.md; frames in
 * openapi/websocket.schema.json). The path is public to the auth middleware
 * so that a bad key is answered the WebSocket way, close code 4401, which a
 * browser can see (it cannot see a refused handshake's status); the key is
 * still checked by that middleware (header, or subprotocol `bearer.<key>`).
 */
export function wsRoutes(app: GatewayApp, deps: WsRouteDeps): void {
  defineRoute(
    app,
    {
      method: 'get',
      path: WS_PATH,
      operationId: 'openWebSocket',
      tags: ['WebSocket'],
      summary: 'Open the multiplexed WebSocket API (many requests and streams on one connection, cancel, resume, push notices)',
      description: [
        'Upgrades to a WebSocket. Authenticate with `Authorization: Bearer <key>` (or `x-api-key`), or, from a browser, with the subprotocols `bearer.<key>, lm-gateway.v1` (the server echoes `lm-gateway.v1`).',
        'A missing or wrong key is accepted and then closed with code 4401 before any frame is read.',
        'Client frames: `request` (`{"id","type":"request","method","path","body"}`, the same bodies as HTTP through the same pipeline), `cancel`, `ping`, `resume`. Server frames: `event`, `response`, `error`, `done`, `queue`, `pong`, `notice`.',
        'The frames are specified in openapi/websocket.schema.json (JSON Schema 2020-12) and docs/websocket.md.',
      ].join('\n\n'),
      security: [{ bearerAuth: [] }],
      request: {
        headers: z.object({
          upgrade: z.string().openapi({ description: 'websocket', example: 'websocket' }),
          'sec-websocket-protocol': z.string().optional().openapi({ description: 'Offered subprotocols: `lm-gateway.v1`, and `bearer.<key>` where headers cannot be set', example: 'bearer.sk-my-key, lm-gateway.v1' }),
        }),
      },
      responses: {
        101: { description: 'Switching Protocols: the socket is open (closed with 4401 at once when the key is missing or wrong)' },
        404: jsonContent(ErrorResponse, 'The WebSocket API is disabled (websocket.enabled: false)'),
        426: jsonContent(ErrorResponse, 'Not an Upgrade: websocket request, or the runtime or a proxy did not pass the upgrade on'),
      },
    },
    async (c) => {
      if (!deps.server) throw new GatewayError('not_found', 'The WebSocket API is disabled on this gateway (websocket.enabled is false).', { code: 'websocket_disabled' })
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket' || !deps.upgrade) {
        throw new GatewayError('invalid_request', `GET ${WS_PATH} is the WebSocket API: it needs an "Upgrade: websocket" request${deps.upgrade ? '' : ', which this runtime cannot accept'}. Proxies must pass the upgrade on.`, { status: 426, code: 'upgrade_required' })
      }
      const offered = (c.req.header('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim())
      const protocol = offered.includes(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : undefined
      // The auth middleware matched a key (keyId), or the gateway is open (no keys: everyone is admin).
      const keyId = c.get('keyId')
      const isAdmin = c.get('isAdmin') === true
      const identity = keyId !== undefined || isAdmin ? { keyId, isAdmin } : undefined
      const refusal = presentedKey(c.req.raw.headers) === undefined ? `Missing API key: send "Authorization: Bearer <key>" or the subprotocols "bearer.<key>, ${WS_SUBPROTOCOL}".` : 'Incorrect API key provided.'
      return deps.upgrade(c, deps.server.accept(identity, protocol, refusal))
    },
  )
}
