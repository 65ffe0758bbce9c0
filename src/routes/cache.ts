import { z } from '@hono/zod-openapi'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import { GatewayError } from '../errors.js'
import type { CacheStage } from '../pipeline/cache.js'
import { validate } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

export interface CacheRouteDeps {
  /** Undefined when the response cache is disabled: the route answers a clear error. */
  cache?: CacheStage
}

const InvalidateQuery = z.object({
  model: z.string().min(1).optional().openapi({ param: { name: 'model', in: 'query' }, description: 'Only entries of this model (the name clients send)', example: 'mock/mock-1' }),
  key_id: z
    .string()
    .regex(/^(key_[0-9a-f]{16}|open)$/, 'expected an API key id such as key_0123456789abcdef (as in logs and analytics), or "open"')
    .optional()
    .openapi({ param: { name: 'key_id', in: 'query' }, description: "Only one API key's entries: its id as in logs and analytics; `open` on a gateway without keys" }),
})

const CacheInvalidation = z
  .object({
    object: z.literal('cache.invalidation'),
    deleted: z.number().int().describe('How many cached answers were removed'),
    model: z.string().nullable(),
    key_id: z.string().nullable(),
  })
  .openapi('CacheInvalidation')

export function cacheRoutes(app: GatewayApp, deps: CacheRouteDeps): void {
  defineRoute(
    app,
    {
      method: 'delete',
      path: '/v1/cache',
      operationId: 'invalidateCache',
      tags: ['Cache'],
      summary: 'Remove cached answers: all of them, one model’s, or one API key’s (filters combine). Admin key.',
      security: [{ bearerAuth: [] }],
      request: { query: InvalidateQuery },
      responses: {
        200: jsonContent(CacheInvalidation, 'What was removed'),
        400: jsonContent(ErrorResponse, 'Invalid filter'),
        401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
        403: jsonContent(ErrorResponse, 'Not an admin key'),
        404: jsonContent(ErrorResponse, 'The response cache is disabled'),
      },
    },
    async (c) => {
      if (!c.get('isAdmin')) throw new GatewayError('permission', 'This needs an admin key (server.adminKeys).', { code: 'admin_required' })
      if (!deps.cache) throw new GatewayError('not_found', 'The response cache is disabled on this gateway: set "cache": {"enabled": true} in gateway.config.json.', { code: 'cache_disabled' })
      const q = validate(InvalidateQuery, c.req.query())
      const deleted = await deps.cache.invalidate({ model: q.model, keyId: q.key_id })
      return c.json({ object: 'cache.invalidation' as const, deleted, model: q.model ?? null, key_id: q.key_id ?? null })
    },
  )
}
