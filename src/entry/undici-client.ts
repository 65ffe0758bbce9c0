import type { LookupFunction } from 'node:net'
import { Agent, request } from 'undici'
import type { HttpClient } from '../providers/shared/http.js'

/**
 * Node's upstream client: undici's `request` on a keep-alive pool, two to
 * three times cheaper per call than `fetch`. Timeouts are left to the
 * providers' signals so that long generations are never cut by the client.
 */
export function undiciClient(options: { lookup?: LookupFunction } = {}): HttpClient {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, headersTimeout: 0, bodyTimeout: 0, connections: 256, ...(options.lookup ? { connect: { lookup: options.lookup } } : {}) })
  return async (url, init) => {
    const res = await request(url, { method: init.method, headers: init.headers, body: init.body, signal: init.signal, dispatcher })
    const headers = res.headers
    return {
      status: res.statusCode,
      header(name) {
        const v = headers[name.toLowerCase()]
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
      },
      text: () => res.body.text(),
      json: () => res.body.json(),
      body: res.body,
      discard: async () => {
        // undici's body emits an AbortError 'error' when destroyed unread: without a listener it is an uncaught exception.
        res.body.on('error', () => {})
        res.body.destroy()
      },
    }
  }
}
