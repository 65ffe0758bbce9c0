import { z } from 'zod'
import { ConfigError } from '../config.js'
import { GatewayError } from '../errors.js'
import { parseEventFilter, type EventFilter } from './filter.js'

/**
 * The `streaming` section of gateway.config.json. Every field has a default,
 * so an empty section (or none) gives resumable streams with heartbeats.
 */
export const StreamingConfig = z.object({
  /** Keep every stream's events in the `streams:` storage mount so clients can resume. */
  resume: z.boolean().default(true),
  /** How long a finished stream stays resumable, in seconds. */
  resumeWindowSec: z.number().min(0).max(86_400).default(60),
  /**
   * How long generation continues after the client went away, waiting for a
   * reconnect (GET /v1/streams/{id}) before the upstream call is aborted.
   * 0 aborts at once.
   */
  reconnectGraceSec: z.number().min(0).max(600).default(5),
  /** The `retry:` hint every stream starts with, in ms. */
  retryMs: z.number().int().min(0).max(600_000).default(2000),
  /** A comment line is sent after this many seconds without bytes (0: never). Below common proxy idle timeouts. */
  heartbeatSec: z.number().min(0).max(3600).default(15),
  /** How often opted-in `event: progress` frames are sent while waiting or generating, in ms. */
  progressIntervalMs: z.number().int().min(50).max(60_000).default(1000),
  /** Default coalescing window for tiny deltas, in ms (0: off); clients override with stream_options.coalesce_ms. */
  coalesceMs: z.number().int().min(0).max(1000).default(0),
  /** A coalesced delta is sent at once when it reaches this many characters. */
  coalesceMaxChars: z.number().int().min(1).max(65_536).default(1024),
  /** Stream events are written to storage in batches at most this often, in ms (the first byte never waits for storage). */
  flushMs: z.number().int().min(1).max(10_000).default(100),
  /** A resumer on another instance polls storage this often while the stream is live, in ms. */
  pollMs: z.number().int().min(10).max(10_000).default(100),
  compression: z
    .object({
      enabled: z.boolean().default(true),
      /** JSON answers smaller than this are sent uncompressed (compression would cost more than it saves). */
      minBytes: z.number().int().min(0).default(1024),
    })
    .prefault({}),
})
export type StreamingConfig = z.infer<typeof StreamingConfig>

/** Parses `config.streaming`; a bad field is a config error naming it. */
export function parseStreamingConfig(raw: unknown): StreamingConfig {
  const parsed = StreamingConfig.safeParse(raw ?? {})
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  - streaming.${i.path.join('.')}: ${i.message}`)
  throw new ConfigError(`invalid gateway config:\n${lines.join('\n')}`)
}

/** What one client asked of its stream, from the body (`stream_options`) or headers. */
export interface StreamRequestOptions {
  progress: boolean
  coalesceMs: number
  filter: EventFilter | undefined
}

/** The gateway's own members of `stream_options` (the OpenAI dialect documents them in its schema). */
export interface GatewayStreamOptions {
  progress?: boolean | null
  coalesce_ms?: number | null
  events?: string | string[] | null
}

/**
 * Body fields win over headers; headers exist for dialects without
 * stream_options (Anthropic) and for clients that cannot change the body.
 */
export function streamRequestOptions(body: GatewayStreamOptions | null | undefined, headers: Headers, config: StreamingConfig): StreamRequestOptions {
  let progress = body?.progress ?? undefined
  if (progress === undefined) {
    const h = headers.get('x-gateway-progress')
    if (h !== null) progress = h === '1' || h.toLowerCase() === 'true'
  }
  let coalesceMs = body?.coalesce_ms ?? undefined
  if (coalesceMs === undefined) {
    const h = headers.get('x-gateway-coalesce-ms')
    if (h !== null) {
      const n = Number(h)
      if (!Number.isInteger(n) || n < 0 || n > 1000) {
        throw new GatewayError('invalid_request', `Invalid x-gateway-coalesce-ms header: expected an integer from 0 to 1000, got "${h}".`, { param: 'x-gateway-coalesce-ms', code: 'invalid_value' })
      }
      coalesceMs = n
    }
  }
  const events = body?.events ?? headers.get('x-gateway-events') ?? undefined
  const param = body?.events != null ? 'stream_options.events' : 'x-gateway-events'
  return { progress: progress === true, coalesceMs: coalesceMs ?? config.coalesceMs, filter: events === undefined ? undefined : parseEventFilter(events, param) }
}
