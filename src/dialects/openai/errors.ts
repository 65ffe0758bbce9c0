import type { GatewayError } from '../../errors.js'

const TYPES: Record<GatewayError['kind'], string> = {
  invalid_request: 'invalid_request_error',
  auth: 'authentication_error',
  permission: 'permission_error',
  not_found: 'invalid_request_error',
  payload_too_large: 'invalid_request_error',
  rate_limit: 'rate_limit_error',
  overloaded: 'server_error',
  timeout: 'timeout_error',
  upstream: 'upstream_error',
  unavailable: 'service_unavailable',
  cancelled: 'cancelled',
  internal: 'server_error',
}

/** OpenAI's error envelope: all four keys present, `param` and `code` nullable. */
export function openAIErrorBody(err: GatewayError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: err.message, type: TYPES[err.kind], param: err.param, code: err.code ?? defaultCode(err) } }
}

/** OpenAI has no 529; overloaded answers 503 as OpenAI does. */
export function openAIStatus(err: GatewayError): number {
  return err.status === 529 ? 503 : err.status
}

function defaultCode(err: GatewayError): string | null {
  switch (err.kind) {
    case 'auth':
      return 'invalid_api_key'
    case 'not_found':
      return 'not_found'
    case 'rate_limit':
      return 'rate_limit_exceeded'
    case 'payload_too_large':
      return 'request_too_large'
    default:
      return null
  }
}
