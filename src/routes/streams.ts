import { z } from '@hono/zod-openapi'
import { GatewayError } from '../errors.js'
import { SseConnection } from '../streaming/connection.js'
import { retryLine, SSE_HEADERS } from '../streaming/sse.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { ErrorResponse } from '../dialects/openai/schemas.js'

const STREAM_ID = /^str_[A-Za-z0-9]{1,64}$/
const EVENT_ID = /^\d{1,15}$/

/**
 * GET /v1/streams/{id}: resumes a stream after a lost connection. The client
 * sends the last event id it saw (`Last-Event-ID`, as EventSource does, or
 * `?last_event_id=`) and gets the frames after it, byte for byte as first
 * sent, then follows the stream live if it is still running; no second model
 * call is made. Streams stay resumable for `streaming.resumeWindowSec` after
 * they end, for the API key that started them.
 */
export function streamRoutes(app: GatewayApp): void {
  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/streams/{id}',
      operationId: 'resumeStream',
      tags: ['Streams'],
      summary: 'Resume a streamed answer after a lost connection (Last-Event-ID), without a second model call',
      security: [{ bearerAuth: [] }],
      request: {
        params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, description: 'The x-gateway-stream-id header of the original answer', example: 'str_Q2x3Vb8kPz0aYt7LmN4cR1sE' }) }),
        query: z.object({ last_event_id: z.string().optional().openapi({ description: 'The id of the last event received (the Last-Event-ID header takes precedence); 0 or absent replays from the start' }) }),
      },
      responses: {
        200: { description: 'The rest of the stream, in the dialect of the original answer', content: { 'text/event-stream': { schema: z.string() } } },
        400: jsonContent(ErrorResponse, 'Malformed Last-Event-ID'),
        401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
        404: jsonContent(ErrorResponse, 'Unknown stream, or its resume window has passed'),
      },
    },
    async (c) => {
      const rt = c.get('streaming')
      if (!rt?.store) throw new GatewayError('not_found', 'Resumable streams are disabled on this gateway (streaming.resume is false).', { code: 'stream_resume_disabled' })
      const raw = c.req.header('last-event-id') ?? c.req.query('last_event_id') ?? '0'
      const lastId = raw.trim()
      if (!EVENT_ID.test(lastId)) {
        throw new GatewayError('invalid_request', `Invalid Last-Event-ID "${raw.slice(0, 40)}": expected the numeric id of an event of this stream.`, { param: 'last_event_id', code: 'invalid_value' })
      }
      const id = c.req.param('id') ?? ''
      const notFound = () => new GatewayError('not_found', `No resumable stream "${id.slice(0, 80)}": the id is unknown, belongs to another API key, or its resume window has passed.`, { code: 'stream_not_found', param: 'id' })
      if (!STREAM_ID.test(id)) throw notFound()
      const conn = new SseConnection({ heartbeatMs: rt.config.heartbeatSec * 1000, onCancel: () => {} })
      conn.write(retryLine(rt.config.retryMs))
      const found = await rt.store.resume(id, c.get('keyId'), Number(lastId), conn)
      if (found === 'not_found') {
        conn.end()
        throw notFound()
      }
      return new Response(conn.body, { status: 200, headers: { ...SSE_HEADERS, 'x-gateway-stream-id': id, 'x-request-id': c.get('requestId'), 'request-id': c.get('requestId') } })
    },
  )
}
