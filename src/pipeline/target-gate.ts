import type { Usage } from '../core/types.js'
import type { CallContext, Provider } from '../providers/types.js'
import type { Priority, RequestQueue, Slot } from './queue.js'
import { chatTokenEstimate, embedTokenEstimate, usageOf, type Admission, type RateLimiter } from './rate-limit.js'
import { tapStream } from './stream-tap.js'

/** What the route layer reads back: the queue headers of non-streaming answers. */
export interface QueueMeta {
  position: number
  waitedMs: number
  estimatedWaitMs?: number
}

/**
 * The per-target stage, wrapped around each provider (below the router, so
 * that it sees the resolved `provider/model`): the model's and provider's
 * RPM/TPM buckets, then a slot under their concurrency caps, waiting in the
 * queue when they are full. A provider with no limits is returned unwrapped.
 */
export function gateTarget(provider: Provider, limiter: RateLimiter, queue: RequestQueue): Provider {
  const id = provider.id
  const limited = Object.keys(limiter.config.models).some((k) => k.startsWith(`${id}/`)) || limiter.config.providers[id] !== undefined
  if (!limited) return provider
  // Declared up front so that GET /v1/queue lists every capped model before its first request.
  for (const [key, limit] of Object.entries(limiter.config.models)) if (key.startsWith(`${id}/`) && limit.concurrency) queue.resource('model', key, limit.concurrency)
  const providerCap = limiter.config.providers[id]?.concurrency
  if (providerCap) queue.resource('provider', id, providerCap)

  const resourcesFor = (model: string) => {
    const caps = limiter.concurrency(id, model)
    const out = []
    if (caps.model) out.push(queue.resource('model', `${id}/${model}`, caps.model))
    if (caps.provider) out.push(queue.resource('provider', id, caps.provider))
    return out
  }

  async function enter(model: string, tokens: number, ctx: CallContext): Promise<{ admission: Admission; slot?: Slot }> {
    const scopes = limiter.targetScopes(id, model)
    const admission = await limiter.admit(scopes, tokens, ctx)
    const resources = resourcesFor(model)
    if (resources.length === 0) return { admission }
    const priority = (ctx.meta?.priority as Priority | undefined) ?? queue.priorityFor(ctx)
    let slot: Slot
    try {
      slot = await queue.acquire(`${id}/${model}`, resources, priority, ctx.signal, ctx.onQueue)
    } catch (err) {
      // It never reached the model: the budget it took is given back.
      admission.refund()
      throw err
    }
    if (ctx.meta) ctx.meta.queueWaitMs = slot.waitedMs
    if (slot.position > 0 && ctx.meta) {
      const meta: QueueMeta = { position: slot.position, waitedMs: Math.round(slot.waitedMs) }
      if (slot.estimatedWaitMs !== undefined) meta.estimatedWaitMs = slot.estimatedWaitMs
      ctx.meta.queue = meta
    }
    return { admission, slot }
  }

  // A copy of the provider's own fields (plain objects from factories), with chat and embed gated.
  const gated: Provider = {
    ...provider,
    chat(req, ctx) {
      if (limiter.targetScopes(id, req.model).length === 0 && resourcesFor(req.model).length === 0) return provider.chat(req, ctx)
      let entered: { admission: Admission; slot?: Slot } | undefined
      let usage: Usage | undefined
      return tapStream(() => provider.chat(req, ctx), {
        async before() {
          entered = await enter(req.model, chatTokenEstimate(req), ctx)
        },
        event(e) {
          usage = usageOf(e, usage)
        },
        end(err) {
          entered?.slot?.release()
          entered?.admission.settle(usage, err !== undefined)
        },
      })
    },
  }
  if (provider.embed) {
    gated.embed = async (req, ctx) => {
      const { admission, slot } = await enter(req.model, embedTokenEstimate(req), ctx)
      try {
        const result = await provider.embed!(req, ctx)
        admission.settle(result.usage ? { inputTokens: result.usage.inputTokens, outputTokens: 0 } : undefined, false)
        return result
      } catch (err) {
        admission.settle(undefined, true)
        throw err
      } finally {
        slot?.release()
      }
    }
  }
  return gated
}
