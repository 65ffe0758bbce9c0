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

/** The tap's bookkeeping for one chat, whichever way its events are observed. */
class UsageRecorder {
  private ended = false
  constructor(private readonly meta: UsageMeta) {}

  opened(): void {
    this.meta.streaming = true
  }

  event(e: ChatEvent): void {
    const meta = this.meta
    if (meta.firstTokenAt === undefined && isToken(e)) meta.firstTokenAt = performance.now()
    else if (e.type === 'usage') meta.usage = { ...meta.usage, ...e.usage }
  }

  end(kind?: ErrorKind): void {
    if (this.ended) return
    this.ended = true
    const meta = this.meta
    if (kind) meta.errorKind = kind
    meta.streaming = false
    const done = meta.onStreamEnd
    meta.onStreamEnd = undefined
    done?.()
  }
}

/**
 * The tap on the consumer's side of the inner stream: the route that reads
 * every event itself gets this reader instead of another web stream layer
 * (each costs a stream and a promise chain per event on Node).
 */
class TappedReader {
  private started = false
  constructor(
    private readonly reader: ReadableStreamDefaultReader<ChatEvent>,
    private readonly rec: UsageRecorder,
  ) {}

  get closed(): ReadableStreamDefaultReader<ChatEvent>['closed'] {
    return this.reader.closed
  }

  async read(): Promise<ReadableStreamReadResult<ChatEvent>> {
    if (!this.started) {
      this.started = true
      this.rec.opened()
    }
    let next: ReadableStreamReadResult<ChatEvent>
    try {
      next = await this.reader.read()
    } catch (err) {
      this.rec.end(GatewayError.from(err).kind)
      throw err
    }
    if (next.done) this.rec.end()
    else this.rec.event(next.value)
    return next
  }

  cancel(reason?: unknown): Promise<void> {
    this.rec.end('cancelled')
    return this.reader.cancel(reason)
  }

  releaseLock(): void {
    this.reader.releaseLock()
  }
}

type OpenReader = (req: ChatRequest, ctx: CallContext) => ReadableStreamDefaultReader<ChatEvent>
const readers = new WeakMap<Provider, OpenReader>()

/**
 * Starts a chat on `pipeline` and returns the reader of its events. On the
 * usage tap itself, the tap records through the reader instead of wrapping
 * the stream; on anything else (a pipeline wrapped again by a route) it is
 * `pipeline.chat(req, ctx).getReader()`.
 */
export function readChat(pipeline: Provider, req: ChatRequest, ctx: CallContext): ReadableStreamDefaultReader<ChatEvent> {
  const open = readers.get(pipeline)
  return open ? open(req, ctx) : pipeline.chat(req, ctx).getReader()
}

/**
 * The usage tap: the outermost pipeline stage. It notes the requested model,
 * the time of the first token and the usage the provider reported, and tells
 * the middleware when a stream ends: completed, failed or cancelled by the
 * client. It adds one pass-through stream per request (none when the route
 * reads through `readChat`) and nothing else.
 */
export function usageTap(inner: Provider): Provider {
  const tap: Provider = {
    id: inner.id,
    type: inner.type,
    models: (signal) => inner.models(signal),
    chat(req: ChatRequest, ctx: CallContext): ReadableStream<ChatEvent> {
      const meta = usageMeta(ctx)
      if (!meta) return inner.chat(req, ctx)
      meta.requestedModel ??= req.model
      meta.streamed = req.stream
      const source = inner.chat(req, ctx)
      const rec = new UsageRecorder(meta)
      let reader: ReadableStreamDefaultReader<ChatEvent> | undefined
      return new ReadableStream<ChatEvent>(
        {
          async pull(controller) {
            if (!reader) {
              reader = source.getReader()
              rec.opened()
            }
            let next: ReadableStreamReadResult<ChatEvent>
            try {
              next = await reader.read()
            } catch (err) {
              rec.end(GatewayError.from(err).kind)
              controller.error(err)
              return
            }
            if (next.done) {
              rec.end()
              controller.close()
              return
            }
            rec.event(next.value)
            controller.enqueue(next.value)
          },
          cancel(reason) {
            rec.end('cancelled')
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
  readers.set(tap, (req, ctx) => {
    const meta = usageMeta(ctx)
    if (!meta) return inner.chat(req, ctx).getReader()
    meta.requestedModel ??= req.model
    meta.streamed = req.stream
    return new TappedReader(inner.chat(req, ctx).getReader(), new UsageRecorder(meta))
  })
  return tap
}
