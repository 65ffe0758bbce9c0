import type { MiddlewareHandler } from 'hono'
import { GatewayError } from '../errors.js'
import { internalIdentity } from './internal.js'
import type { AppEnv } from '../routes/env.js'

export interface AuthOptions {
  keys: string[]
  /** Keys that may use admin endpoints; defaults to all keys. */
  adminKeys?: string[]
  /** Paths anyone may read (health, docs, the spec). */
  isPublic(method: string, path: string): boolean
}

interface KeyEntry {
  bytes: Uint8Array
  id: string
  admin: boolean
}

const encoder = new TextEncoder()

/**
 * API-key auth from `Authorization: Bearer` or `x-api-key`. Keys are compared
 * in constant time: every configured key is checked, without early exit, and
 * the time does not depend on where the first difference is.
 */
export async function auth(options: AuthOptions): Promise<MiddlewareHandler<AppEnv>> {
  const admin = new Set(options.adminKeys ?? options.keys)
  const entries: KeyEntry[] = await Promise.all(
    [...new Set([...options.keys, ...admin])].map(async (k) => ({ bytes: encoder.encode(k), id: await keyId(k), admin: admin.has(k) })),
  )
  const open = entries.length === 0
  return async (c, next) => {
    const internal = internalIdentity(c)
    if (internal) {
      c.set('keyId', internal.keyId)
      c.set('isAdmin', internal.isAdmin)
      return next()
    }
    if (open) {
      c.set('keyId', undefined)
      c.set('isAdmin', true)
      return next()
    }
    const presented = presentedKey(c.req.raw.headers)
    const match = presented === undefined ? undefined : findKey(entries, encoder.encode(presented))
    if (match) {
      c.set('keyId', match.id)
      c.set('isAdmin', match.admin)
      return next()
    }
    if (options.isPublic(c.req.method, c.req.path)) {
      c.set('keyId', undefined)
      c.set('isAdmin', false)
      return next()
    }
    throw new GatewayError(
      'auth',
      presented === undefined
        ? 'Missing API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>".'
        : 'Incorrect API key provided.',
      { code: 'invalid_api_key' },
    )
  }
}

export function presentedKey(headers: Headers): string | undefined {
  const authz = headers.get('authorization')
  if (authz) {
    const m = /^Bearer\s+(.+)$/i.exec(authz)
    if (m) return m[1].trim()
  }
  return headers.get('x-api-key') ?? headers.get('api-key') ?? webSocketKey(headers)
}

/** Browsers cannot set headers on a WebSocket handshake: the key may come as the offered subprotocol `bearer.<key>`. */
function webSocketKey(headers: Headers): string | undefined {
  const offered = headers.get('sec-websocket-protocol')
  if (!offered || headers.get('upgrade')?.toLowerCase() !== 'websocket') return undefined
  for (const p of offered.split(',')) {
    const t = p.trim()
    if (t.length > 7 && t.slice(0, 7).toLowerCase() === 'bearer.') return t.slice(7)
  }
  return undefined
}

function findKey(entries: KeyEntry[], presented: Uint8Array): KeyEntry | undefined {
  let found: KeyEntry | undefined
  for (const e of entries) if (constantTimeEqual(presented, e.bytes) && !found) found = e
  return found
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length
  const n = b.length
  for (let i = 0; i < n; i++) diff |= (a.length ? a[i % a.length] : 0) ^ b[i]
  return diff === 0
}

/** The id of a key in logs, analytics and cache scopes: a hash prefix, never the key. */
export async function keyId(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(key)))
  let hex = ''
  for (let i = 0; i < 8; i++) hex += digest[i].toString(16).padStart(2, '0')
  return `key_${hex}`
}
