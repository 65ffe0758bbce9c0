import type { ChatEvent, ChatRequest, EmbedRequest, Usage } from '../core/types.js'
import { GatewayError, type ErrorKind } from '../errors.js'
import type { CallContext, Provider } from '../providers/types.js'

/**
 * The request-scoped values (in `ctx.meta`) that make up a usage record.
 * Stages write their part; the usage middleware (src/middleware/usage.ts)
 * reads them when the request is over. Counts and timings only: never content.
 */
export interface UsageMeta {
  /** The model name as the client sent it (set by the usage tap, before routing). */
  requestedModel?: string
  /** Set by the router. */
  provider?: string
  servedModel?: string
  streamed?: boolean
  /** performance.now() when the first token arrived. */
  firstTokenAt?: number
  usage?: Usage
  /** Set when a stream fails or is cancelled after the response started. */
  errorKind?: ErrorKind
  /** Set by the cache stage: `hit`, `miss`, … (also the x-gateway-cache header); undefined when not consulted. */
  cache?: string
  /** Set by the queue stage: time the request waited for a slot. */
  queueWaitMs?: number
  /** True while a stream runs; the record is finalized by `onStreamEnd` when it ends. */
  streaming?: boolean
  onStreamEnd?: () => void
}

export function usageMeta(ctx: CallContext): UsageMeta | undefined {
  return ctx.meta as UsageMeta | undefined
}

function isToken(e: ChatEvent): boolean {
  return e.type === 'text' || e.type === 'thinking' || e.type === 'tool_call_start'
}

/**
 * The usage tap: the outermost pipeline stage. It notes the requested model,
 * the time of the first token and the usage the provider reported, and tells
 * the middleware when a stream ends: completed, failed or cancelled by the
 * client. It adds one pass-through stream per request and nothing else.
 */
export function usageTap(inner: Provider): Provider {
  return {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
      const meta = usageMeta(ctx)
      if (!meta) return inner.chat(req, ctx)
      meta.requestedModel ??= req.model
      meta.streamed = req.stream
      const source = inner.chat(req, ctx)
      let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
      let ended = false
      const end = (kind?: ErrorKind) => {
        if (ended) return
        ended = true
        if (kind) meta.errorKind = kind
        meta.streaming = false
        const done = meta.onStreamEnd
        meta.onStreamEnd = undefined
        done?.()
      }
      return new ReadableStream<ChatEvent>(
        {
          async pull(controller) {
            if (!reader) {
              reader = source.getReader()
              meta.streaming = true
            }
            let next: ReadableStreamReadResult<ChatEvent>
            try {
              next = await reader.read()
            } catch (err) {
              end(GatewayError.from(err).kind)
              controller.error(err)
              return
            }
            if (next.done) {
              end()
              controller.close()
              return
            }
            const e = next.value
            if (meta.firstTokenAt === undefined && isToken(e)) meta.firstTokenAt = performance.now()
            else if (e.type === 'usage') meta.usage = { ...meta.usage, ...e.usage }
            controller.enqueue(e)
          },
          cancel(reason) {
            end('cancelled')
            return reader ? reader.cancel(reason) : source.cancel(reason)
          },
        },
        { highWaterMark: 0 },
      )
    },
    ...(inner.embed
      ? {
          async embed(req: EmbedRequest, ctx: CallContext) {
            const meta = usageMeta(ctx)
            if (meta) meta.requestedModel ??= req.model
            const result = await inner.embed!(req, ctx)
            if (meta && result.usage) meta.usage = { inputTokens: result.usage.inputTokens, outputTokens: 0 }
            return result
          },
        }
      : {}),
    ...(inner.countTokens
      ? {
          countTokens(req: ChatRequest, ctx: CallContext) {
            const meta = usageMeta(ctx)
            if (meta) meta.requestedModel ??= req.model
            return inner.countTokens!(req, ctx)
          },
        }
      : {}),
    ...(inner.health ? { health: (signal?: AbortSignal) => inner.health!(signal) } : {}),
  }
}
