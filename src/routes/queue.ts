import { z } from '@hono/zod-openapi'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import type { RequestQueue } from '../pipeline/queue.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

export interface QueueRouteDeps {
  /** Undefined when no model or provider has a concurrency cap (nothing can queue). */
  queue: RequestQueue | undefined
}

const ByPriority = z.object({ high: z.number().int(), normal: z.number().int(), low: z.number().int() })

const QueueState = z
  .object({
    object: z.literal('queue'),
    enabled: z.boolean().openapi({ description: 'False when no model or provider has a concurrency cap, or queueing is switched off.' }),
    waiting: z.number().int().openapi({ description: 'Requests waiting now, in all queues.' }),
    max_size: z.number().int(),
    queues: z.array(
      z.object({
        scope: z.enum(['model', 'provider']),
        name: z.string().openapi({ example: 'openai/gpt-4o' }),
        concurrency: z.number().int().openapi({ description: 'The cap: requests served at once.' }),
        active: z.number().int(),
        waiting: z.number().int(),
        by_priority: ByPriority,
        service_ms: z.number().nullable().openapi({ description: 'Measured time a request holds a slot (EWMA); null before the first.' }),
        estimated_wait_ms: z.number().nullable().openapi({ description: 'Expected wait for a request arriving now; null until measured.' }),
      }),
    ),
  })
  .openapi('QueueState')

/** GET /v1/queue: depths and estimated waits per capped model and provider. Counts only, never request content. */
export function queueRoutes(app: GatewayApp, deps: QueueRouteDeps): void {
  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/queue',
      operationId: 'getQueue',
      tags: ['System'],
      summary: 'Request queue depths and estimated waits per capped model and provider (no request content)',
      security: [{ bearerAuth: [] }],
      responses: { 200: jsonContent(QueueState, 'The queues'), 401: jsonContent(ErrorResponse, 'Missing or wrong API key') },
    },
    (c) => {
      const q = deps.queue
      if (!q) return c.json({ object: 'queue' as const, enabled: false, waiting: 0, max_size: 0, queues: [] })
      const s = q.snapshot()
      return c.json({
        object: 'queue' as const,
        enabled: q.config.enabled,
        waiting: s.waiting,
        max_size: s.maxSize,
        queues: s.queues.map((x) => ({
          scope: x.scope,
          name: x.name,
          concurrency: x.concurrency,
          active: x.active,
          waiting: x.waiting,
          by_priority: x.byPriority,
          service_ms: x.serviceMs,
          estimated_wait_ms: x.estimatedWaitMs,
        })),
      })
    },
  )
}
