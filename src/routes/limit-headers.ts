import type { RateLimitInfo } from '../pipeline/rate-limit.js'
import type { QueueMeta } from '../pipeline/target-gate.js'

/**
 * Headers from what the rate-limit and queue stages left in ctx.meta:
 * OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} (reset as
 * OpenAI writes durations: "1s", "6m0s", "20ms") and the queue's place and
 * wait (the real wait, and the estimate given on entering). On an error, the limit that refused the request is reported.
 */
export function limitHeaders(meta: Record<string, unknown> | undefined, failed = false): Record<string, string> {
  const out: Record<string, string> = {}
  if (!meta) return out
  const info = (failed ? (meta.rateLimitError ?? meta.rateLimit) : meta.rateLimit) as RateLimitInfo | undefined
  if (info?.requests) {
    out['x-ratelimit-limit-requests'] = String(info.requests.limit)
    out['x-ratelimit-remaining-requests'] = String(info.requests.remaining)
    out['x-ratelimit-reset-requests'] = duration(info.requests.resetMs)
  }
  if (info?.tokens) {
    out['x-ratelimit-limit-tokens'] = String(info.tokens.limit)
    out['x-ratelimit-remaining-tokens'] = String(info.tokens.remaining)
    out['x-ratelimit-reset-tokens'] = duration(info.tokens.resetMs)
  }
  const queue = meta.queue as QueueMeta | undefined
  if (queue) {
    out['x-gateway-queue-position'] = String(queue.position)
    out['x-gateway-queue-wait-ms'] = String(queue.waitedMs)
    if (queue.estimatedWaitMs !== undefined) out['x-gateway-queue-estimated-wait-ms'] = String(queue.estimatedWaitMs)
  }
  return out
}

/** Go-style durations, as OpenAI sends them: 20ms, 1s, 1.5s, 6m0s, 1h2m3s. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`
  let s = Math.ceil(ms / 100) / 10
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s = Math.round((s - m * 60) * 10) / 10
  if (h) return `${h}h${m}m${s}s`
  if (m) return `${m}m${s}s`
  return `${s}s`
}
