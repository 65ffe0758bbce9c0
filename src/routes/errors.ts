import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { anthropicErrorBody } from '../dialects/anthropic/errors.js'
import { openAIErrorBody, openAIStatus } from '../dialects/openai/errors.js'
import { GatewayError, kindForStatus } from '../errors.js'
import type { Logger } from '../logger.js'
import type { AppEnv, Dialect } from './env.js'
import { limitHeaders } from './limit-headers.js'

export function dialectOf(c: Context<AppEnv>): Dialect {
  return c.get('dialect') ?? (c.req.path.startsWith('/v1/messages') ? 'anthropic' : 'openai')
}

export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof HTTPException) return new GatewayError(kindForStatus(err.status), err.message || 'Bad request.', { status: err.status })
  return GatewayError.from(err)
}

/** The error answer in the dialect's own shape, with the headers clients act on. */
export function errorResponse(c: Context<AppEnv>, err: unknown, logger: Logger): Response {
  const e = toGatewayError(err)
  if (e.kind === 'internal') logger.error('internal error', { requestId: c.get('requestId'), error: String((e.cause as Error)?.stack ?? e.cause ?? e.message) })
  else if (e.status >= 500) logger.warn('request failed', { requestId: c.get('requestId'), kind: e.kind, status: e.status, error: e.message })
  const headers: Record<string, string> = { 'x-should-retry': String(e.retryable) }
  if (e.retryAfter !== undefined) headers['retry-after'] = String(Math.ceil(e.retryAfter))
  if (e.kind === 'rate_limit') Object.assign(headers, limitHeaders(c.get('meta'), true))
  const requestId = c.get('requestId') ?? null
  if (requestId) {
    headers['x-request-id'] = requestId
    headers['request-id'] = requestId
  }
  if (dialectOf(c) === 'anthropic') return c.json(anthropicErrorBody(e, requestId), e.status as never, headers)
  return c.json(openAIErrorBody(e), openAIStatus(e) as never, headers)
}
