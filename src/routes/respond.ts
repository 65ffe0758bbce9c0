import type { Context } from 'hono'
import { Aggregator } from '../core/aggregate.js'
import { newId } from '../core/ids.js'
import type { ChatEvent, ChatRequest, ChatResult } from '../core/types.js'
import type { CallContext, Provider } from '../providers/types.js'
import type { GatewayStreamOptions } from '../streaming/options.js'
import { streamRequestOptions } from '../streaming/options.js'
import { createStreaming, type StreamingRuntime } from '../streaming/runtime.js'
import { isClientCancel, SseSession, type StreamEncoder } from '../streaming/session.js'
import { namedProgressFrame } from '../streaming/progress.js'
import { SSE_HEADERS } from '../streaming/sse.js'
import { silentLogger } from '../logger.js'
import type { AppEnv } from './env.js'
import { limitHeaders } from './limit-headers.js'
import { conversionsHeader } from '../pipeline/media.js'
import { readChat } from '../pipeline/usage.js'

/** How a dialect writes a stream (see src/streaming/session.ts): frames before, per event, after, for an in-band error, and optionally for progress. */
export type { StreamEncoder } from '../streaming/session.js'

export function callContext(c: Context<AppEnv>): CallContext {
  return { signal: c.req.raw.signal, requestId: c.get('requestId'), keyId: c.get('keyId'), meta: c.get('meta') ?? {}, headers: c.req.raw.headers, waitUntil: (work) => waitUntil(c, work) }
}

/** Hono's executionCtx exists on Workers only (its getter throws elsewhere); only called on the rare paths that need it. */
function waitUntil(c: Context<AppEnv>, work: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(work)
  } catch {
    /* Node and Bun keep running work after the answer anyway */
  }
}

/**
 * The model name an answer reports: what the client asked for (dated ids,
 * aliases), except `auto`, which reports the model the router chose. The
 * router fills it in (ctx.meta.reportModel) before the first event.
 */
export function reportedModel<T extends { model: string }>(c: Context<AppEnv>, meta: T): T {
  if (meta.model === 'auto') {
    let shared = c.get('meta')
    if (!shared) {
      shared = {}
      c.set('meta', shared)
    }
    shared.reportModel = meta
  }
  return meta
}

/** Timings the respond helpers note in ctx.meta for server-timing (performance.now() values). */
interface Timing {
  /** When the pipeline was called. */
  calledAt?: number
  /** When the pipeline's answer was complete (non-streaming). */
  doneAt?: number
  /** Set by the usage tap: first token. */
  firstTokenAt?: number
  /** Set by the queue stage. */
  queueWaitMs?: number
}

/**
 * `server-timing`: what the gateway itself cost (`gateway`: time spent before
 * calling the pipeline and after its answer), the queue wait (`queue`), the
 * provider's time to first token (`ttfb`) and, for a complete answer, its
 * whole time (`upstream`). Without pipeline timings, `gateway` is the total.
 */
export function serverTiming(c: Context<AppEnv>, meta: Record<string, unknown> | undefined, firstAt?: number): string {
  const now = performance.now()
  const started = c.get('startedAt') ?? now
  const t = (meta ?? {}) as Timing
  if (t.calledAt === undefined) return `gateway;dur=${(now - started).toFixed(2)}`
  const queue = t.queueWaitMs ?? 0
  const first = firstAt ?? t.firstTokenAt
  const end = t.doneAt ?? first ?? now
  let out = `gateway;dur=${(t.calledAt - started + (now - end)).toFixed(2)}, queue;dur=${queue.toFixed(2)}`
  if (first !== undefined) out += `, ttfb;dur=${Math.max(0, first - t.calledAt - queue).toFixed(2)}`
  if (t.doneAt !== undefined) out += `, upstream;dur=${Math.max(0, t.doneAt - t.calledAt - queue).toFixed(2)}`
  return out
}

export function gatewayHeaders(ctx: CallContext, c: Context<AppEnv>): Record<string, string> {
  const headers: Record<string, string> = {}
  const served = ctx.meta?.servedModel
  if (typeof served === 'string') headers['x-gateway-model'] = served
  const cache = ctx.meta?.cache
  if (typeof cache === 'string') headers['x-gateway-cache'] = cache
  const conversions = conversionsHeader(ctx.meta)
  if (conversions) headers['x-gateway-conversions'] = conversions
  headers['server-timing'] = serverTiming(c, ctx.meta)
  Object.assign(headers, limitHeaders(ctx.meta))
  return headers
}

/** Runs a chat request without streaming: the same pipeline, aggregated. */
export async function chatJson(c: Context<AppEnv>, pipeline: Provider, req: ChatRequest, encode: (result: ChatResult) => unknown): Promise<Response> {
  const ctx = callContext(c)
  const meta = ctx.meta as Timing
  meta.calledAt = performance.now()
  const agg = new Aggregator()
  const reader = readChat(pipeline, req, ctx)
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    agg.push(value)
  }
  meta.doneAt = performance.now()
  const text = JSON.stringify(encode(agg.done()))
  c.set('jsonLength', text.length)
  const headers = gatewayHeaders(ctx, c)
  headers['content-type'] = 'application/json'
  return c.body(text, 200, headers)
}

let fallback: StreamingRuntime | undefined

/** The app sets the runtime per request (src/app.ts); apps built without it stream with the defaults. */
function runtimeOf(c: Context<AppEnv>): StreamingRuntime {
  return c.get('streaming') ?? (fallback ??= createStreaming({}, { logger: silentLogger }))
}

/**
 * Runs a streaming chat request. The first event is awaited before the
 * answer begins, so an error up to then (unknown model, upstream 4xx/5xx,
 * refused connection) is a proper HTTP error; after it, errors go in-band.
 * The answer also begins, before any event, when a heartbeat or an opted-in
 * progress frame is due. Every frame gets an `id:`; the stream id is in
 * `x-gateway-stream-id` and GET /v1/streams/{id} resumes it.
 *
 * `options` are the client's stream options from the body (the gateway's own
 * members of OpenAI's `stream_options`); headers give the same for every dialect.
 */
export async function chatSse(c: Context<AppEnv>, pipeline: Provider, req: ChatRequest, encoder: StreamEncoder, options?: GatewayStreamOptions | null): Promise<Response> {
  const rt = runtimeOf(c)
  const request = streamRequestOptions(options, c.req.raw.headers, rt.config)
  if (request.filter?.empty) encoder.omitEmpty?.()
  const id = newId('str_')
  const log = rt.store?.open(id, c.get('keyId'))
  const ac = new AbortController()
  const ctx = callContext(c)
  ctx.signal = ac.signal
  let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
  const session = new SseSession({
    encoder,
    request,
    config: rt.config,
    log,
    meta: ctx.meta,
    // Anthropic's SDKs yield unknown named events harmlessly; OpenAI's parse every data line as a chunk, so its encoders shape their own.
    progressFrames: encoder.progress ? undefined : c.get('dialect') === 'anthropic' ? (p) => [namedProgressFrame(p)] : undefined,
    abort: (reason) => {
      ac.abort(reason)
      void reader?.cancel(reason).catch(() => {})
    },
  })
  ctx.onQueue = (status) => session.report(status)
  // The request's own signal: before the answer begins it cancels at once; after, the session decides (grace for a reconnect), unless the client cancelled on purpose.
  const clientSignal = c.req.raw.signal
  const gone = () => (isClientCancel(clientSignal.reason) ? session.cancel(clientSignal.reason) : session.clientGone(clientSignal.reason))
  if (clientSignal.aborted) gone()
  else clientSignal.addEventListener('abort', gone, { once: true })
  const meta = ctx.meta as Timing
  meta.calledAt = performance.now()
  reader = readChat(pipeline, req, ctx)
  await session.begin(reader)
  const headers: Record<string, string> = { ...SSE_HEADERS, ...gatewayHeaders(ctx, c), 'x-request-id': c.get('requestId'), 'request-id': c.get('requestId') }
  headers['server-timing'] = serverTiming(c, ctx.meta, session.firstEventAt)
  if (log) headers['x-gateway-stream-id'] = id
  return new Response(session.connection.body, { status: 200, headers })
}
