import type { Context, MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import { kindForStatus } from '../errors.js'
import type { UsageRecord } from '../analytics/record.js'
import type { UsageMeta } from '../pipeline/usage.js'
import { toGatewayError } from '../routes/errors.js'
import type { AppEnv } from '../routes/env.js'

/** Gets the record, and the raw meta for sinks that need a stage's own detail (the cache result). */
export type UsageSink = (record: UsageRecord, meta: Readonly<UsageMeta>) => void | Promise<void>

export interface UsageMiddlewareOptions {
  /** Which requests make a record: the API calls, not the dashboard, docs or metrics scrapes. */
  track(path: string): boolean
  sinks: UsageSink[]
  /** Runs when a tracked request starts (the in-flight gauge). */
  onStart?(): void
}

/**
 * Gives each request the `meta` object the pipeline fills (see
 * src/pipeline/usage.ts) and, when the request is over, turns it into one
 * UsageRecord for the sinks. "Over" is when the handler returned, or for a
 * stream when it ended: completed, failed, or cut by the client. Sinks only
 * add to in-memory counters; their writes run later (and on Workers, under
 * waitUntil). A failing sink never touches the response.
 */
export function usageMiddleware(options: UsageMiddlewareOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const meta: UsageMeta = {}
    c.set('meta', meta as Record<string, unknown>)
    if (!options.track(c.req.path)) return next()
    const time = Date.now()
    const t0 = c.get('startedAt') ?? performance.now()
    options.onStart?.()
    try {
      await next()
    } finally {
      const finalize = () => {
        const record = buildRecord(c, meta, time, t0)
        for (const sink of options.sinks) {
          try {
            const p = sink(record, meta)
            if (p) keepAlive(c, p)
          } catch {
            /* analytics never fail a request */
          }
        }
      }
      if (meta.streaming) meta.onStreamEnd = finalize
      else finalize()
    }
  }
}

function endpointOf(c: Context<AppEnv>): string {
  const pattern = routePath(c, -1)
  // Only middleware matched (unknown route): never the raw path, which is unbounded.
  if (!pattern || pattern.endsWith('*')) return '(unmatched)'
  return `${c.req.method} ${pattern}`
}

function buildRecord(c: Context<AppEnv>, meta: UsageMeta, time: number, t0: number): UsageRecord {
  const status = c.res.status
  let errorKind = meta.errorKind
  if (!errorKind && status >= 400) errorKind = c.error ? toGatewayError(c.error).kind : kindForStatus(status)
  const u = meta.usage
  const record: UsageRecord = {
    time,
    endpoint: endpointOf(c),
    dialect: c.get('dialect') ?? 'openai',
    requestedModel: meta.requestedModel ?? '',
    status,
    latencyMs: performance.now() - t0,
    inputTokens: u?.inputTokens ?? 0,
    outputTokens: u?.outputTokens ?? 0,
    cachedTokens: u?.cacheReadTokens ?? 0,
    streamed: meta.streamed === true && status < 400,
    cacheHit: meta.cache === 'hit',
  }
  if (meta.servedModel) record.servedModel = meta.servedModel
  if (meta.provider) record.provider = meta.provider
  const keyId = c.get('keyId')
  if (keyId) record.keyId = keyId
  if (errorKind) record.errorKind = errorKind
  if (meta.firstTokenAt !== undefined) record.ttftMs = meta.firstTokenAt - t0
  if (meta.queueWaitMs !== undefined) record.queueWaitMs = meta.queueWaitMs
  return record
}

/** On Workers, lets a scheduled analytics write finish after the response; elsewhere timers do. */
function keepAlive(c: Context<AppEnv>, p: Promise<void>): void {
  try {
    c.executionCtx.waitUntil(p)
  } catch {
    /* no ExecutionContext on Node and Bun */
  }
}
