import type { MiddlewareHandler } from 'hono'
import { newId } from '../core/ids.js'
import type { AppEnv } from '../routes/env.js'

const VALID = /^[\w.:-]{1,128}$/

/**
 * Takes the client's `x-request-id` when it is sane, or makes one, and puts it
 * on every answer as `x-request-id` (OpenAI's header) and `request-id`
 * (Anthropic's).
 */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id')
    const id = given && VALID.test(given) ? given : newId('req_')
    c.set('requestId', id)
    c.set('startedAt', performance.now())
    c.set('dialect', c.req.path.startsWith('/v1/messages') ? 'anthropic' : 'openai')
    await next()
    // On the answer's own headers: c.header() after the handler would rebuild the whole Response
    // (and on @hono/node-server first materialise its body stream), several times per request.
    let headers = c.res.headers
    try {
      headers.set('x-request-id', id)
    } catch {
      // Immutable headers (a Response passed through from fetch): copy it once.
      c.res = new Response(c.res.body, c.res)
      headers = c.res.headers
      headers.set('x-request-id', id)
    }
    headers.set('request-id', id)
    // Every answer says what the gateway cost; chat answers already carry the detailed timing.
    if (!headers.has('server-timing')) headers.set('server-timing', `gateway;dur=${(performance.now() - c.get('startedAt')).toFixed(2)}`)
  }
}
