import { z } from 'zod'

/**
 * The WebSocket API's frames (docs/websocket.md, openapi/websocket.schema.json).
 * Client frames are validated here, at the wire edge; server frames are plain
 * types, written with JSON.stringify.
 */
export const WS_PATH = '/v1/ws'
/** The subprotocol a client offers (with `bearer.<key>` when it cannot send headers) and the server echoes. */
export const WS_SUBPROTOCOL = 'lm-gateway.v1'

/** Close codes: 4401 bad or missing key (before any work), 4408 no answer to pings, 1008 policy, 1001 going away. */
export const CLOSE = { unauthorized: 4401, pingTimeout: 4408, policy: 1008, goingAway: 1001, normal: 1000 } as const

const FrameId = z.union([z.string().min(1).max(128), z.number().int().safe()])
export type FrameId = z.infer<typeof FrameId>

/** Request headers a frame may set: the gateway's own, the dialects' version/beta headers and cache control. Auth is the socket's. */
const HEADER_NAME = /^(x-gateway-[a-z0-9-]+|anthropic-(version|beta)|openai-(organization|project)|cache-control|last-event-id)$/

export const RequestFrame = z.object({
  id: FrameId,
  type: z.literal('request'),
  method: z.enum(['GET', 'POST', 'DELETE']).default('POST'),
  path: z.string().min(1).max(2048),
  body: z.unknown().optional(),
  headers: z
    .record(z.string(), z.string().max(8192))
    .optional()
    .superRefine((h, ctx) => {
      for (const name of Object.keys(h ?? {})) {
        if (!HEADER_NAME.test(name.toLowerCase())) ctx.addIssue({ code: 'custom', message: `header "${name.slice(0, 60)}" may not be set on a WebSocket request (allowed: x-gateway-*, anthropic-version, anthropic-beta, openai-organization, openai-project, cache-control, last-event-id)`, path: [name] })
      }
    }),
})
export type RequestFrame = z.infer<typeof RequestFrame>

export const CancelFrame = z.object({ id: FrameId, type: z.literal('cancel') })
export const PingFrame = z.object({ type: z.literal('ping'), id: FrameId.optional() })
/** The answer to a server `{"type":"ping"}` (runtimes without protocol-level pings). */
export const PongFrame = z.object({ type: z.literal('pong') })
export const ResumeFrame = z.object({
  type: z.literal('resume'),
  /** The id the resumed events are sent under; defaults to the stream id. */
  id: FrameId.optional(),
  stream_id: z.string().min(1).max(100),
  last_event_id: z.union([z.string().regex(/^\d{1,15}$/), z.number().int().min(0)]).default(0),
})
export type ResumeFrame = z.infer<typeof ResumeFrame>

export const CLIENT_FRAME_TYPES = ['request', 'cancel', 'ping', 'pong', 'resume'] as const
const Schemas = { request: RequestFrame, cancel: CancelFrame, ping: PingFrame, pong: PongFrame, resume: ResumeFrame } as const

export type ClientFrame = z.infer<(typeof Schemas)[keyof typeof Schemas]>

export type FrameCheck = { ok: true; frame: ClientFrame } | { ok: false; status: number; code: string; message: string; param?: string }

/** Validates a parsed frame, naming the field at fault. */
export function checkFrame(raw: unknown): FrameCheck {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, status: 400, code: 'invalid_frame', message: 'A frame must be a JSON object with a "type".' }
  const type = (raw as { type?: unknown }).type
  if (typeof type !== 'string' || !(CLIENT_FRAME_TYPES as readonly string[]).includes(type)) {
    const shown = typeof type === 'string' ? `"${type.slice(0, 40)}"` : 'missing'
    return { ok: false, status: 400, code: 'unknown_frame_type', param: 'type', message: `Unknown frame type ${shown}: expected one of ${CLIENT_FRAME_TYPES.join(', ')}.` }
  }
  const parsed = Schemas[type as keyof typeof Schemas].safeParse(raw)
  if (parsed.success) return { ok: true, frame: parsed.data }
  const issue = parsed.error.issues[0]
  const param = issue.path.map(String).join('.')
  return { ok: false, status: 400, code: 'invalid_frame', param: param || undefined, message: `Invalid ${type} frame${param ? ` at "${param}"` : ''}: ${issue.message}` }
}

/** The frame's id, read from the first bytes of a frame too large to parse, so the error can name it. */
export function peekId(text: string): FrameId | undefined {
  const m = /"id"\s*:\s*(?:"((?:[^"\\]|\\.){1,128})"|(-?\d{1,15})[,}\s])/.exec(text.slice(0, 512))
  if (!m) return undefined
  return m[1] !== undefined ? m[1] : Number(m[2])
}

/** Server frames. */
export type ServerFrame =
  | { id: FrameId; type: 'event'; event: string; event_id?: number; stream_id?: string; data: unknown }
  | { id: FrameId; type: 'response'; status: number; headers?: Record<string, string>; body: unknown }
  | { id?: FrameId; type: 'error'; status: number; headers?: Record<string, string>; error: unknown }
  | { id: FrameId; type: 'done'; stream_id?: string }
  | { id: FrameId; type: 'queue'; position: number; wait_ms: number | null }
  | { type: 'pong'; id?: FrameId }
  | { type: 'ping' }
  | { type: 'notice'; event: string; [k: string]: unknown }
