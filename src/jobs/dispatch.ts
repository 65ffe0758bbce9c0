import { internalEnv, type InternalIdentity } from '../middleware/internal.js'

/** The endpoints a batch item may call: everything that answers one JSON body. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses', '/v1/messages', '/v1/messages/count_tokens'] as const
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number]

export function isBatchEndpoint(url: string): url is BatchEndpoint {
  return (BATCH_ENDPOINTS as readonly string[]).includes(url)
}

export interface DispatchItem {
  method: string
  url: string
  body: unknown
  /** Sent as `x-gateway-priority`: batch work yields to interactive requests. */
  priority?: 'low' | 'normal' | 'high'
  signal?: AbortSignal
}

export interface DispatchResult {
  status: number
  body: unknown
  requestId: string | null
}

export type Dispatch = (item: DispatchItem, identity: InternalIdentity) => Promise<DispatchResult>

type AppFetch = (request: Request, env?: unknown, ctx?: unknown) => Response | Promise<Response>

/**
 * Runs one item through the gateway's own fetch handler, exactly as if it had
 * been sent alone: the same validation, limits, queue, cache, routing and
 * usage records. Streaming is turned off: a batch collects whole answers.
 */
export function createDispatch(fetch: AppFetch): Dispatch {
  return async (item, identity) => {
    const body = item.body && typeof item.body === 'object' ? { ...(item.body as Record<string, unknown>), stream: false } : item.body
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (item.priority) headers['x-gateway-priority'] = item.priority
    const res = await fetch(new Request(`http://gateway.internal${item.url}`, { method: item.method, headers, body: JSON.stringify(body), signal: item.signal }), internalEnv(identity))
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      /* a non-JSON answer is kept as text */
    }
    return { status: res.status, body: parsed, requestId: res.headers.get('x-request-id') }
  }
}

/** Total tokens of an answer body in either dialect, for batch summaries. */
export function tokensOf(body: unknown): number {
  const usage = (body as { usage?: Record<string, unknown> } | undefined)?.usage
  if (!usage) return 0
  if (typeof usage.total_tokens === 'number') return usage.total_tokens
  const input = Number(usage.input_tokens ?? usage.prompt_tokens ?? 0)
  const output = Number(usage.output_tokens ?? usage.completion_tokens ?? 0)
  return input + output
}
