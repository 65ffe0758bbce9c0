import { z } from 'zod'
import { ConfigError } from '../config.js'

/**
 * The `websocket` section of gateway.config.json: per-socket limits, liveness
 * and push notices. Every field has a default; frames default to the HTTP
 * body limit plus room for the envelope.
 */
export const WebSocketConfig = z.object({
  /** GET /v1/ws answers 404 when false. */
  enabled: z.boolean().default(true),
  /** Requests (and resumes) running at once on one socket; more are answered 429 `too_many_in_flight`. */
  maxInFlight: z.number().int().min(1).max(10_000).default(64),
  /** Largest frame read, in bytes; larger ones are answered 413 and the socket stays open. Default: server.bodyLimit + 64 KiB. */
  maxFrameBytes: z.number().int().min(1024).optional(),
  /** Frames a socket may send per second, sustained … */
  messagesPerSec: z.number().positive().max(100_000).default(1000),
  /** … and in a burst. Frames over the rate are answered 429 `frame_rate_exceeded`. */
  burst: z.number().int().min(1).max(100_000).default(2000),
  /** When more than this many bytes wait in the socket's send buffer, the gateway stops reading upstream bodies until it drains. */
  maxBufferedBytes: z.number().int().min(1024).default(1024 * 1024),
  /** A socket that sent nothing for this long is pinged, in seconds (0: never). */
  pingIntervalSec: z.number().min(0).max(3600).default(30),
  /** A pinged socket that answers nothing within this is closed as dead, in seconds. */
  pongTimeoutSec: z.number().min(0.05).max(600).default(10),
  /** Push notices (`{"type":"notice"}`) for model list and provider health changes. */
  notices: z
    .object({
      enabled: z.boolean().default(true),
      /** How often circuit-breaker states are compared while sockets are open, in ms. */
      healthPollMs: z.number().int().min(50).max(600_000).default(1000),
      /** How often the model catalog is re-listed while sockets are open, in seconds (0: only on a bridge's change notice). */
      modelsPollSec: z.number().min(0).max(86_400).default(60),
    })
    .prefault({}),
})
export type WebSocketConfig = z.infer<typeof WebSocketConfig> & { maxFrameBytes: number }

export function parseWebSocketConfig(raw: unknown, bodyLimit: number): WebSocketConfig {
  const parsed = WebSocketConfig.safeParse(raw ?? {})
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - websocket.${i.path.join('.')}: ${i.message}`)
    throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
  }
  return { ...parsed.data, maxFrameBytes: parsed.data.maxFrameBytes ?? bodyLimit + 64 * 1024 }
}

/**
 * The runtime's own cap on a frame (Node `ws` maxPayload, Bun
 * maxPayloadLength): above it the runtime closes the socket (1009). It sits
 * well above maxFrameBytes so that a frame a little too large is answered
 * with an error frame and the socket stays open.
 */
export function hardFrameLimit(config: WebSocketConfig): number {
  return config.maxFrameBytes + Math.max(config.maxFrameBytes, 1024 * 1024)
}
