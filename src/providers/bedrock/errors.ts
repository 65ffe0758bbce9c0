import { GatewayError, kindForStatus, type ErrorKind } from '../../errors.js'
import { retryAfterSeconds, type HttpResponse } from '../shared/http.js'

/**
 * Bedrock's error types (the `x-amzn-errortype` header or `__type`, and the
 * `:exception-type` of event-stream exceptions, which are camelCase) mapped to
 * gateway kinds. Credential problems are the gateway operator's, not the
 * client's: they answer 502 and are never retried.
 */
const KINDS: Record<string, ErrorKind> = {
  throttlingexception: 'rate_limit',
  servicequotaexceededexception: 'rate_limit',
  accessdeniedexception: 'auth',
  unrecognizedclientexception: 'auth',
  invalidsignatureexception: 'auth',
  incompletesignatureexception: 'auth',
  missingauthenticationtokenexception: 'auth',
  expiredtokenexception: 'auth',
  validationexception: 'invalid_request',
  serializationexception: 'invalid_request',
  resourcenotfoundexception: 'not_found',
  modelnotreadyexception: 'unavailable',
  serviceunavailableexception: 'unavailable',
  modeltimeoutexception: 'timeout',
  internalserverexception: 'upstream',
  modelerrorexception: 'upstream',
  modelstreamerrorexception: 'upstream',
}

/** `ValidationException:http://internal.amazon.com/coral/…` or `com.amazon…#ValidationException` → `ValidationException`. */
export function errorTypeName(raw: string | null | undefined): string | undefined {
  if (!raw) return undefined
  let t = raw.split(':')[0]
  const hash = t.lastIndexOf('#')
  if (hash !== -1) t = t.slice(hash + 1)
  return t.trim() || undefined
}

/** `type` is an error type name in either case style (`ThrottlingException`, `throttlingException`). */
export function bedrockError(provider: string, type: string | undefined, status: number | undefined, message: string | undefined, retryAfter?: number): GatewayError {
  const kind: ErrorKind = (type && KINDS[type.toLowerCase()]) || (status ? kindForStatus(status) : 'upstream')
  const text = `Provider "${provider}" (Bedrock)${status ? ` answered ${status}` : ' failed mid-stream'}${type ? ` ${type}` : ''}${message ? `: ${message}` : ''}`
  const blamesOperator = kind === 'auth' || kind === 'permission'
  return new GatewayError(kind, text, {
    status: blamesOperator ? 502 : kind === 'invalid_request' ? 400 : undefined,
    code: blamesOperator ? 'provider_auth_error' : (type ?? null),
    retryAfter,
  })
}

/** A non-2xx Bedrock HTTP answer → GatewayError. */
export async function bedrockHttpError(provider: string, res: HttpResponse): Promise<GatewayError> {
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* the status and header still classify it */
  }
  let message: string | undefined
  let bodyType: string | undefined
  try {
    const body = JSON.parse(text) as { message?: unknown; Message?: unknown; __type?: unknown }
    const m = body.message ?? body.Message
    if (typeof m === 'string') message = m
    if (typeof body.__type === 'string') bodyType = body.__type
  } catch {
    message = text.slice(0, 300) || undefined
  }
  const type = errorTypeName(res.header('x-amzn-errortype') ?? bodyType)
  return bedrockError(provider, type, res.status, message, retryAfterSeconds(res))
}
