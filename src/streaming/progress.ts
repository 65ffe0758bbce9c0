import type { SseFrame } from './sse.js'

/**
 * Where a streamed request is, for clients that opted in to progress frames
 * (`stream_options.progress: true` or `x-gateway-progress: 1`).
 *  - queued: waiting in the gateway's queue, at `position` (1 = next), with
 *    the queue's estimate of the wait once it has one;
 *  - waiting_first_token: sent to the provider, nothing generated yet;
 *  - generating: `tokens` output tokens so far (estimated: 4 characters a token).
 */
export type Progress =
  | { phase: 'queued'; position: number; estimated_wait_ms?: number; elapsed_ms: number }
  | { phase: 'waiting_first_token'; elapsed_ms: number }
  | { phase: 'generating'; tokens: number; elapsed_ms: number }

/** What the queue reports through `CallContext.onQueue`. */
export interface QueueReport {
  position: number
  estimatedWaitMs?: number
}

/**
 * The progress frame for dialects whose parsers yield unknown named events
 * harmlessly (Anthropic: @anthropic-ai/sdk ≥ 0.136 yields them and its
 * MessageStream ignores them; older SDKs drop them): `event: progress` with
 * `{"type":"progress",…}`.
 */
export function namedProgressFrame(p: Progress): SseFrame {
  return { event: 'progress', data: JSON.stringify({ type: 'progress', ...p }) }
}
