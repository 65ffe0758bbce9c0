import type { GatewayError } from '../errors.js'

/**
 * Errors the gateway raises about itself (its own rate limits, a full queue)
 * rather than about a target. The router still falls back on them, but they
 * say nothing about the target's health, so circuit breakers ignore them.
 */
const local = new WeakSet<GatewayError>()

export function localError<E extends GatewayError>(err: E): E {
  local.add(err)
  return err
}

export function isLocal(err: GatewayError): boolean {
  return local.has(err)
}
