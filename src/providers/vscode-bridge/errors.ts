import { GatewayError } from '../../errors.js'
import { safeOrigin } from '../shared/http.js'
import type { BridgeReply } from './transport.js'
import { WireError } from './wire.js'

/**
 * "Try again in 7 seconds", "wait 1 minute": VS Code's Blocked errors carry
 * Copilot's wording and no header, so the wait is read from the message.
 */
export function retryAfterFromMessage(message: string): number | undefined {
  const m = /(?:try again|retry|wait)\D{0,24}?(\d+(?:\.\d+)?)\s*(seconds?|secs?|s\b|minutes?|mins?|m\b)/i.exec(message)
  if (!m) return undefined
  const n = Number(m[1])
  return /^m/i.test(m[2]) ? n * 60 : n
}

function retryAfterHeader(reply: BridgeReply): number | undefined {
  const v = reply.header('retry-after')
  if (!v) return undefined
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

/** A refusal by VS Code itself (a LanguageModelError code), before or during a stream. */
export function languageModelError(provider: string, code: string, message: string, retryAfter?: number): GatewayError {
  switch (code) {
    case 'NoPermissions':
      return new GatewayError('permission', message || 'VS Code has not allowed the LM Gateway Bridge to use this model: allow it in VS Code (Accounts › Manage Language Model Access), then retry.', {
        code: 'vscode_no_permission',
      })
    case 'Blocked':
      return new GatewayError('rate_limit', `VS Code blocked the request (provider "${provider}"): ${message || 'quota or rate limit'}`, {
        code: 'vscode_blocked',
        retryAfter: retryAfter ?? retryAfterFromMessage(message),
      })
    case 'NotFound':
      return new GatewayError('not_found', `${message || 'No such VS Code language model.'} (provider "${provider}"; GET /v1/models lists the models)`, { code: 'model_not_found', param: 'model' })
    default:
      return new GatewayError('upstream', `The VS Code language model failed (provider "${provider}"): ${message || 'unknown error'}`, { code: 'vscode_model_error' })
  }
}

/** A non-2xx answer of the bridge as the error the client should see. */
export async function bridgeError(provider: string, base: string, reply: BridgeReply): Promise<GatewayError> {
  let body: unknown
  try {
    body = await reply.json()
  } catch {
    body = undefined
  }
  const parsed = WireError.safeParse(body)
  const code = parsed.success ? (parsed.data.error.code ?? '') : ''
  const message = parsed.success ? (parsed.data.error.message ?? '') : ''
  const origin = safeOrigin(base)
  const status = reply.status
  if (status === 401) {
    return new GatewayError(
      'auth',
      `The VS Code bridge at ${origin} (provider "${provider}") rejected the gateway's bridge token. This is the bridge token, not your API key: in VS Code run "LM Gateway Bridge: Copy token" and set it as VSCODE_BRIDGE_TOKEN (or the provider's "token").`,
      { status: 502, code: 'bridge_auth_failed' },
    )
  }
  if (!parsed.success) {
    // Not the bridge talking: a tunnel or proxy page (cloudflared 502/530, a login page …).
    const what = typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''
    return new GatewayError('upstream', `The VS Code bridge URL ${origin} (provider "${provider}") answered ${status} without a bridge error; is the URL (and its path) the bridge's, and is the tunnel up${what}`, {
      code: 'bridge_unexpected_answer',
      retryable: status >= 500,
    })
  }
  if (status === 403 || status === 429 || (status === 404 && code === 'NotFound') || (status === 502 && code === 'Unknown')) {
    return languageModelError(provider, status === 403 ? 'NoPermissions' : status === 429 ? 'Blocked' : code, message, retryAfterHeader(reply))
  }
  if (status === 404) {
    return new GatewayError('upstream', `The VS Code bridge at ${origin} (provider "${provider}") has no such route (${message}); check the URL's path and update the extension.`, { code: 'bridge_route_missing', retryable: false })
  }
  if (status === 400) return new GatewayError('invalid_request', `VS Code refused the request: ${message}`, { code: code === 'unsupported_content' ? 'unsupported_content' : 'invalid_request' })
  if (status === 413) return new GatewayError('payload_too_large', `The request is too large for the VS Code bridge: ${message}`)
  if (status === 499) return new GatewayError('cancelled', 'The request was cancelled.')
  return new GatewayError('upstream', `The VS Code bridge (provider "${provider}") answered ${status}: ${message || code}`, { code: 'bridge_error' })
}
