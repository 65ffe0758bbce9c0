import type { GatewayError } from '../../errors.js'

const TYPES: Record<GatewayError['kind'], string> = {
  invalid_request: 'invalid_request_error',
  auth: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  payload_too_large: 'request_too_large',
  rate_limit: 'rate_limit_error',
  overloaded: 'overloaded_error',
  timeout: 'timeout_error',
  upstream: 'api_error',
  unavailable: 'api_error',
  cancelled: 'api_error',
  internal: 'api_error',
}

/** Anthropic's error envelope `{type:"error", error:{type,message}, request_id}`. */
export function anthropicErrorBody(err: GatewayError, requestId: string | null = null): { type: 'error'; error: { type: string; message: string }; request_id: string | null } {
  return { type: 'error', error: { type: TYPES[err.kind], message: err.message }, request_id: requestId }
}
