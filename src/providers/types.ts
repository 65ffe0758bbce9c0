import type { ChatEvent, ChatRequest, EmbedRequest, EmbedResult, ModelInfo } from '../core/types.js'

/** What every provider call receives besides the request. */
export interface CallContext {
  /** Aborted when the client goes away or a deadline passes: cancels the upstream call. */
  signal: AbortSignal
  requestId: string
  /** Hash of the caller's API key (never the key), for scoping caches and limits. */
  keyId?: string
  /** Keeps work that outlives the answer (a cache write) alive on Workers; a no-op elsewhere. */
  waitUntil?: (work: Promise<unknown>) => void
  /** Free-form request-scoped values the pipeline shares (timings, cache status …). */
  meta?: Record<string, unknown>
  /** The client's request headers, for stages a client steers per request (x-gateway-cache, Cache-Control). */
  headers?: Headers
  /** Called while the request waits in the queue: position and estimate, for streams' progress frames. */
  onQueue?: (status: QueueStatus) => void
}

/** Where a queued request stands. */
export interface QueueStatus {
  /** 1-based place among the requests waiting for the same model or provider. */
  position: number
  /** Expected wait from the measured service rate; undefined until a first request has been served. */
  estimatedWaitMs?: number
}

export interface Provider {
  readonly id: string
  readonly type: string
  models(signal?: AbortSignal): Promise<ModelInfo[]>
  /** Streams one assistant turn. Errors reject the stream's reads with a GatewayError. */
  chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent>
  embed?(req: EmbedRequest, ctx: CallContext): Promise<EmbedResult>
  /** Whether embed() takes token-id arrays (EmbedRequest.tokens); the router refuses them for the others. */
  readonly embedsTokens?: boolean
  countTokens?(req: ChatRequest, ctx: CallContext): Promise<number>
  /** Liveness of the upstream, without secrets. */
  health?(signal?: AbortSignal): Promise<{ ok: boolean; detail?: string }>
}

/**
 * The HTTP client providers use: a fetch. On Node the entry injects a fetch
 * built on undici's pooled `request`, which is several times cheaper per call.
 */
export type Fetch = (input: string, init: RequestInit) => Promise<Response>
