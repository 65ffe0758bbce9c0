import { z } from '@hono/zod-openapi'
import { GatewayError } from '../errors.js'
import { BATCH_ENDPOINTS, isBatchEndpoint, tokensOf, type Dispatch } from '../jobs/dispatch.js'
import { runItems } from '../jobs/run-items.js'
import { SSE_HEADERS, sseStream, type SseFrame } from '../streaming/sse.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

const BatchItem = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal('POST').default('POST'),
  url: z.string().openapi({ example: '/v1/chat/completions' }),
  body: z.record(z.string(), z.unknown()),
})

export const SyncBatchRequest = z
  .looseObject({
    requests: z.array(BatchItem).min(1),
    mode: z.enum(['parallel', 'serial']).default('parallel'),
    concurrency: z.number().int().min(1).max(64).default(8),
    stop_on_error: z.boolean().default(false),
    stream: z.boolean().optional(),
  })
  .openapi('SyncBatchRequest')

const ItemResult = z
  .object({
    custom_id: z.string(),
    status: z.number().int().nullable(),
    body: z.unknown().optional(),
    error: z.object({ type: z.string(), message: z.string() }).optional(),
  })
  .openapi('SyncBatchResult')

const SyncBatchResponse = z
  .object({
    results: z.array(ItemResult),
    summary: z.object({ total: z.number().int(), succeeded: z.number().int(), failed: z.number().int(), skipped: z.number().int(), tokens: z.number().int(), duration_ms: z.number() }),
  })
  .openapi('SyncBatchResponse')

export interface SyncBatchDeps {
  dispatch: Dispatch
  bodyLimit: number
  maxItems: number
}

type Result = z.infer<typeof ItemResult>

/**
 * POST /v1/batch: many requests in one call, each through the full pipeline
 * as if sent alone. Answers all results in request order, or, with
 * `Accept: text/event-stream` / `"stream": true`, progress as items finish.
 */
export function syncBatchRoutes(app: GatewayApp, deps: SyncBatchDeps): void {
  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/batch',
      operationId: 'runBatch',
      tags: ['Batch'],
      summary: 'Run many requests now (parallel or serial) and get every result, in order',
      security: [{ bearerAuth: [] }],
      request: { body: { content: { 'application/json': { schema: SyncBatchRequest } }, required: true } },
      responses: {
        200: { description: 'All results and a summary; with stream: progress, result and summary SSE events', content: { 'application/json': { schema: SyncBatchResponse } } },
        400: jsonContent(z.object({ error: z.object({ message: z.string() }) }), 'Invalid batch'),
        413: jsonContent(z.object({ error: z.object({ message: z.string() }) }), 'Too many items or bytes'),
      },
    },
    async (c) => {
      const body = await readJson(c, SyncBatchRequest, deps.bodyLimit)
      const items = body.requests
      if (items.length > deps.maxItems) {
        throw new GatewayError('payload_too_large', `A batch may hold at most ${deps.maxItems} requests; this one has ${items.length}.`, { param: 'requests', code: 'too_many_items' })
      }
      const seen = new Set<string>()
      items.forEach((item, i) => {
        if (!isBatchEndpoint(item.url)) {
          throw new GatewayError('invalid_request', `requests[${i}].url: "${item.url}" cannot be batched; use one of ${BATCH_ENDPOINTS.join(', ')}.`, { param: `requests[${i}].url`, code: 'invalid_url' })
        }
        if (seen.has(item.custom_id)) throw new GatewayError('invalid_request', `requests[${i}].custom_id: "${item.custom_id}" is used twice; custom ids must be unique.`, { param: `requests[${i}].custom_id`, code: 'duplicate_custom_id' })
        seen.add(item.custom_id)
      })
      const identity = { keyId: c.get('keyId'), isAdmin: c.get('isAdmin') }
      const started = performance.now()
      const results: Result[] = new Array(items.length)
      const counts = { succeeded: 0, failed: 0, skipped: 0, tokens: 0 }
      const abort = new AbortController()
      c.req.raw.signal.addEventListener('abort', () => abort.abort(), { once: true })

      const run = (onResult: (index: number) => void | Promise<void>) =>
        runItems(
          items,
          { mode: body.mode, concurrency: body.concurrency, stopOnError: body.stop_on_error, signal: abort.signal },
          async (item) => {
            try {
              const res = await deps.dispatch({ method: item.method, url: item.url, body: item.body, signal: abort.signal }, identity)
              const ok = res.status < 400
              const result: Result = ok ? { custom_id: item.custom_id, status: res.status, body: res.body } : { custom_id: item.custom_id, status: res.status, error: errorOf(res.body) }
              if (ok) counts.tokens += tokensOf(res.body)
              return { ok, result }
            } catch (err) {
              const e = GatewayError.from(err)
              return { ok: false, result: { custom_id: item.custom_id, status: e.status, error: { type: e.kind, message: e.message } } }
            }
          },
          async (index, result, skipped) => {
            if (skipped || !result) {
              counts.skipped++
              results[index] = { custom_id: items[index].custom_id, status: null, error: { type: 'skipped', message: 'Not run: an earlier request failed and stop_on_error is set (or the client went away).' } }
            } else {
              results[index] = result
              if (result.error) counts.failed++
              else counts.succeeded++
            }
            await onResult(index)
          },
        )
      const summary = () => ({ total: items.length, ...counts, duration_ms: Math.round(performance.now() - started) })

      const wantsStream = body.stream === true || (c.req.header('accept') ?? '').includes('text/event-stream')
      if (!wantsStream) {
        await run(() => {})
        return c.json({ results, summary: summary() })
      }

      // Progress as items finish: frames are queued by the runner and pulled by the SSE writer.
      const queue: SseFrame[] = []
      let wake: (() => void) | undefined
      let done = 0
      let finished = false
      void run((index) => {
        done++
        queue.push({ event: 'result', data: JSON.stringify({ index, ...results[index] }) })
        queue.push({ event: 'progress', data: JSON.stringify({ done, total: items.length }) })
        wake?.()
      }).then(() => {
        queue.push({ event: 'summary', data: JSON.stringify(summary()) })
        finished = true
        wake?.()
      })
      const stream = sseStream(
        async () => {
          while (queue.length === 0 && !finished) await new Promise<void>((r) => (wake = r))
          if (queue.length === 0) return null
          return queue.splice(0)
        },
        () => abort.abort(),
      )
      return new Response(stream, { headers: { ...SSE_HEADERS, 'x-request-id': c.get('requestId') } })
    },
  )
}

function errorOf(body: unknown): { type: string; message: string } {
  const b = body as { error?: { type?: string; message?: string } } | undefined
  return { type: b?.error?.type ?? 'error', message: b?.error?.message ?? (typeof body === 'string' ? body : 'Request failed.') }
}
