import type { Context } from 'hono'

/**
 * Requests the gateway sends to itself (batch items, adapters) carry the
 * identity of the caller they run for in the fetch `env`, under a symbol no
 * HTTP request can set. They pass auth as that caller and skip the IP gate.
 */
export const INTERNAL = Symbol.for('vscode-lm-gateway.internal')

export interface InternalIdentity {
  keyId: string | undefined
  isAdmin: boolean
}

export function internalIdentity(c: Context): InternalIdentity | undefined {
  const env = c.env as Record<symbol, unknown> | undefined
  return env && typeof env === 'object' ? (env[INTERNAL] as InternalIdentity | undefined) : undefined
}

/** The env to pass to `app.fetch` for an internal request. */
export function internalEnv(identity: InternalIdentity): Record<symbol, InternalIdentity> {
  return { [INTERNAL]: identity }
}
