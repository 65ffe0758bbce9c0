import { GatewayError, kindForStatus, type ErrorKind } from '../../errors.js'
import { retryAfterSeconds, type HttpResponse } from '../shared/http.js'

/**
 * Google API errors (`{"error":{"code","message","status","details"}}`, the
 * google.rpc.Status JSON mapping) → gateway kinds. Credential problems are
 * the operator's: 502, never retried. Gemini reports a bad API key as 400
 * INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID, so the reason wins.
 */
const BY_STATUS: Record<string, ErrorKind> = {
  INVALID_ARGUMENT: 'invalid_request',
  FAILED_PRECONDITION: 'invalid_request',
  OUT_OF_RANGE: 'invalid_request',
  UNAUTHENTICATED: 'auth',
  PERMISSION_DENIED: 'permission',
  NOT_FOUND: 'not_found',
  RESOURCE_EXHAUSTED: 'rate_limit',
  UNAVAILABLE: 'unavailable',
  INTERNAL: 'upstream',
  UNKNOWN: 'upstream',
  DEADLINE_EXCEEDED: 'timeout',
  CANCELLED: 'upstream',
  ABORTED: 'upstream',
}

const AUTH_REASONS = new Set(['API_KEY_INVALID', 'API_KEY_EXPIRED', 'ACCESS_TOKEN_EXPIRED', 'ACCESS_TOKEN_TYPE_UNSUPPORTED', 'CREDENTIALS_MISSING'])

interface GoogleStatus {
  code?: number
  message?: string
  status?: string
  details?: Array<{ '@type'?: string; reason?: string; retryDelay?: string }>
}

/** Reads `{"error":…}` or, from some streaming endpoints, `[{"error":…}]`. */
export function googleStatusOf(body: unknown): GoogleStatus | undefined {
  const b = Array.isArray(body) ? body[0] : body
  const e = (b as { error?: unknown } | undefined)?.error
  return e && typeof e === 'object' ? (e as GoogleStatus) : undefined
}

export function googleError(provider: string, label: string, httpStatus: number | undefined, e: GoogleStatus | undefined, retryAfter?: number): GatewayError {
  const reason = e?.details?.find((d) => typeof d.reason === 'string')?.reason
  let kind: ErrorKind = (e?.status && BY_STATUS[e.status]) || kindForStatus(httpStatus ?? e?.code ?? 500)
  if (reason && AUTH_REASONS.has(reason)) kind = 'auth'
  const delay = e?.details?.find((d) => typeof d.retryDelay === 'string')?.retryDelay
  const fromDetails = delay ? Number.parseFloat(delay) : undefined
  const status = httpStatus ?? e?.code
  const blamesOperator = kind === 'auth' || kind === 'permission'
  const text = `Provider "${provider}" (${label})${status ? ` answered ${status}` : ' failed mid-stream'}${e?.status ? ` ${e.status}` : ''}${e?.message ? `: ${e.message}` : ''}`
  return new GatewayError(kind, text, {
    status: blamesOperator ? 502 : kind === 'invalid_request' ? 400 : undefined,
    code: blamesOperator ? 'provider_auth_error' : (reason ?? e?.status ?? null),
    retryAfter: fromDetails !== undefined && Number.isFinite(fromDetails) ? fromDetails : retryAfter,
  })
}

export async function googleHttpError(provider: string, label: string, res: HttpResponse): Promise<GatewayError> {
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* the status still classifies it */
  }
  let e: GoogleStatus | undefined
  try {
    e = googleStatusOf(JSON.parse(text))
  } catch {
    e = text ? { message: text.slice(0, 300) } : undefined
  }
  return googleError(provider, label, res.status, e, retryAfterSeconds(res))
}
