import { z } from '@hono/zod-openapi'
import type { BatchRunner } from '../jobs/batches.js'
import { BATCH_ENDPOINTS } from '../jobs/dispatch.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { listQuery, page } from './files.js'

const Ts = z.number().int().nullable()

export const BatchSchema = z
  .object({
    id: z.string(),
    object: z.literal('batch'),
    endpoint: z.string(),
    errors: z.object({ object: z.literal('list'), data: z.array(z.object({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().int().nullable() })) }).nullable(),
    input_file_id: z.string(),
    completion_window: z.string(),
    status: z.enum(['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled']),
    output_file_id: z.string().nullable(),
    error_file_id: z.string().nullable(),
    created_at: z.number().int(),
    in_progress_at: Ts,
    expires_at: z.number().int(),
    finalizing_at: Ts,
    completed_at: Ts,
    failed_at: Ts,
    expired_at: Ts,
    cancelling_at: Ts,
    cancelled_at: Ts,
    request_counts: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }),
    metadata: z.record(z.string(), z.string()).nullable(),
  })
  .openapi('Batch')

const CreateBatch = z
  .looseObject({
    input_file_id: z.string().min(1),
    endpoint: z.enum(BATCH_ENDPOINTS),
    completion_window: z.string().default('24h'),
    metadata: z.record(z.string(), z.string()).nullable().optional(),
  })
  .openapi('CreateBatchRequest')

const Error = z.object({ error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }) })
const security = [{ bearerAuth: [] }]
const batchId = z.object({ batch_id: z.string().openapi({ param: { name: 'batch_id', in: 'path' } }) })

/** OpenAI's Batches API, run by the background BatchRunner. */
export function batchRoutes(app: GatewayApp, deps: { runner: BatchRunner; bodyLimit: number }): void {
  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/batches',
      operationId: 'createBatch',
      tags: ['Batches'],
      summary: 'Start a batch from an uploaded JSONL file (purpose "batch")',
      security,
      request: { body: { content: { 'application/json': { schema: CreateBatch } }, required: true } },
      responses: { 200: jsonContent(BatchSchema, 'The batch, validating'), 400: jsonContent(Error, 'Invalid request') },
    },
    async (c) => {
      const body = await readJson(c, CreateBatch, deps.bodyLimit)
      return c.json(await deps.runner.create(body, c.get('keyId')))
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/batches',
      operationId: 'listBatches',
      tags: ['Batches'],
      summary: 'Your batches, newest first (cursor pagination with after/limit)',
      security,
      request: { query: z.object({ after: z.string().optional(), limit: z.string().optional() }) },
      responses: { 200: jsonContent(z.object({ object: z.literal('list'), data: z.array(BatchSchema), has_more: z.boolean(), first_id: z.string().nullable(), last_id: z.string().nullable() }), 'A page of batches') },
    },
    async (c) => {
      const { after, limit } = listQuery(c.req.query(), 100)
      return c.json(page(await deps.runner.list(c.get('keyId'), { after, limit })))
    },
  )

  defineRoute(
    app,
    { method: 'get', path: '/v1/batches/{batch_id}', operationId: 'retrieveBatch', tags: ['Batches'], summary: 'One batch, with its status and counts', security, request: { params: batchId }, responses: { 200: jsonContent(BatchSchema, 'The batch'), 404: jsonContent(Error, 'No such batch') } },
    async (c) => c.json(await deps.runner.get(c.req.param('batch_id') ?? '', c.get('keyId'))),
  )

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/batches/{batch_id}/cancel',
      operationId: 'cancelBatch',
      tags: ['Batches'],
      summary: 'Cancel a batch: running items finish, the rest are not run',
      security,
      request: { params: batchId },
      responses: { 200: jsonContent(BatchSchema, 'The batch, cancelling'), 404: jsonContent(Error, 'No such batch'), 409: jsonContent(Error, 'Already finished') },
    },
    async (c) => c.json(await deps.runner.cancel(c.req.param('batch_id') ?? '', c.get('keyId'))),
  )
}
