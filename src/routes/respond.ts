import type { Context } from 'hono'
import { aggregate } from '../core/aggregate.js'
import type { ChatEvent, ChatRequest, ChatResult } from '../core/types.js'
import { GatewayError } from '../errors.js'
import type { CallContext, Provider } from '../providers/types.js'
import { SSE_HEADERS, sseStream, type SseFrame } from '../streaming/sse.js'
import type { AppEnv } from './env.js'
import { limitHeaders } from './limit-headers.js'

/** How a dialect writes a stream: frames before, per event, after, and for an in-band error. */
export interface StreamEncoder {
  start(): SseFrame[]
  push(event: ChatEvent): SseFrame[]
  end(): SseFrame[]
  error(err: GatewayError): SseFrame[]
}

export function callContext(c: Context<AppEnv>): CallContext {
  return { signal: c.req.raw.signal, requestId: c.get('requestId'), keyId: c.get('keyId'), meta: c.get('meta') ?? {}, headers: c.req.raw.headers }
}

export function gatewayHeaders(ctx: CallContext, c: Context<AppEnv>): Record<string, string> {
  const headers: Record<string, string> = {}
  const served = ctx.meta?.servedModel
  if (typeof served === 'string') headers['x-gateway-model'] = served
  const cache = ctx.meta?.cache
  if (typeof cache === 'string') headers['x-gateway-cache'] = cache
  const ms = performance.now() - c.get('startedAt')
  headers['server-timing'] = `gateway;dur=${ms.toFixed(2)}`
  Object.assign(headers, limitHeaders(ctx.meta))
  return headers
}

/** Runs a chat request without streaming: the same pipeline, aggregated. */
export async function chatJson(c: Context<AppEnv>, pipeline: Provider, req: ChatRequest, encode: (result: ChatResult) => unknown): Promise<Response> {
  const ctx = callContext(c)
  const result = await aggregate(pipeline.chat(req, ctx))
  return c.json(encode(result) as object, 200, gatewayHeaders(ctx, c))
}

/**
 * Runs a streaming chat request. The first event is awaited before any byte
 * is sent, so an error up to then (unknown model, upstream 4xx/5xx, refused
 * connection) is a proper HTTP error; after it, errors go in-band.
 */
export async function chatSse(c: Context<AppEnv>, pipeline: Provider, req: ChatRequest, encoder: StreamEncoder): Promise<Response> {
  const ctx = callContext(c)
  const reader = pipeline.chat(req, ctx).getReader()
  let first: ReadableStreamReadResult<ChatEvent> | undefined = await reader.read()
  let started = false
  let ended = false
  const body = sseStream(
    async () => {
      if (ended) return null
      const frames: SseFrame[] = []
      if (!started) {
        started = true
        frames.push(...encoder.start())
      }
      try {
        const { done, value } = first ?? (await reader.read())
        first = undefined
        if (done) {
          ended = true
          frames.push(...encoder.end())
        } else frames.push(...encoder.push(value))
      } catch (err) {
        ended = true
        frames.push(...encoder.error(GatewayError.from(err)))
      }
      return frames
    },
    (reason) => reader.cancel(reason),
  )
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...gatewayHeaders(ctx, c), 'x-request-id': c.get('requestId'), 'request-id': c.get('requestId') } })
}
