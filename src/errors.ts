/**
 * The one error type of the gateway. Providers, pipeline stages and dialects
 * throw it; each dialect encodes it into its own wire shape.
 */
export type ErrorKind =
  | 'invalid_request'
  | 'auth'
  | 'permission'
  | 'not_found'
  | 'payload_too_large'
  | 'rate_limit'
  | 'overloaded'
  | 'timeout'
  | 'upstream'
  | 'unavailable'
  | 'cancelled'
  | 'internal'

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  auth: 401,
  permission: 403,
  not_found: 404,
  payload_too_large: 413,
  rate_limit: 429,
  overloaded: 529,
  timeout: 504,
  upstream: 502,
  unavailable: 503,
  cancelled: 499,
  internal: 500,
}

const RETRYABLE: Record<ErrorKind, boolean> = {
  invalid_request: false,
  auth: false,
  permission: false,
  not_found: false,
  payload_too_large: false,
  rate_limit: true,
  overloaded: true,
  timeout: true,
  upstream: true,
  unavailable: true,
  cancelled: false,
  internal: false,
}

export interface GatewayErrorOptions {
  status?: number
  retryable?: boolean
  /** The request field at fault, e.g. `messages[0].content`. */
  param?: string | null
  /** A machine-readable code, e.g. `model_not_found`. */
  code?: string | null
  /** Seconds the client should wait before retrying. */
  retryAfter?: number
  cause?: unknown
}

export class GatewayError extends Error {
  readonly kind: ErrorKind
  readonly status: number
  readonly retryable: boolean
  readonly param: string | null
  readonly code: string | null
  readonly retryAfter?: number

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatewayError'
    this.kind = kind
    this.status = options.status ?? STATUS[kind]
    this.retryable = options.retryable ?? RETRYABLE[kind]
    this.param = options.param ?? null
    this.code = options.code ?? null
    this.retryAfter = options.retryAfter
  }

  static is(value: unknown): value is GatewayError {
    return value instanceof GatewayError
  }

  /** Turns anything thrown into a GatewayError without leaking internals. */
  static from(value: unknown): GatewayError {
    if (value instanceof GatewayError) return value
    if (isAbort(value)) return new GatewayError('cancelled', 'The request was cancelled.', { cause: value })
    return new GatewayError('internal', 'Internal gateway error.', { cause: value })
  }
}

export function isAbort(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    ((value as { name?: string }).name === 'AbortError' || (value as { name?: string }).name === 'TimeoutError')
  )
}

/** Maps an upstream HTTP status to an error kind, for providers that speak HTTP. */
export function kindForStatus(status: number): ErrorKind {
  if (status === 400 || status === 422) return 'invalid_request'
  if (status === 401) return 'auth'
  if (status === 403) return 'permission'
  if (status === 404) return 'not_found'
  if (status === 408) return 'timeout'
  if (status === 413) return 'payload_too_large'
  if (status === 429) return 'rate_limit'
  if (status === 503) return 'unavailable'
  if (status === 529) return 'overloaded'
  if (status === 504) return 'timeout'
  return status >= 500 ? 'upstream' : 'invalid_request'
}
