/**
 * How failures leave the bridge: an HTTP status plus `{error:{code,message}}`
 * before a stream starts, or one `{type:"error"}` event once it has.
 */
import type { LmErrorCode } from './protocol.js'

export class BridgeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'BridgeError'
  }
}

const LM_CODES: ReadonlySet<string> = new Set(['NoPermissions', 'Blocked', 'NotFound'])

const CONSENT_HINT =
  'VS Code has not allowed this extension to use the language model. In VS Code, accept the ' +
  '"LM Gateway Bridge wants to use the language model" prompt, or allow it under Accounts › ' +
  'Manage Language Model Access, then retry.'

/**
 * LanguageModelError is matched by shape, not instanceof: the class differs
 * between VS Code versions and the error may cross the extension-host boundary.
 */
export function languageModelErrorCode(err: unknown): LmErrorCode | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && LM_CODES.has(code)) return code as LmErrorCode
  return undefined
}

/** VS Code signals cancellation with an error named "Canceled". */
export function isCancellation(err: unknown): boolean {
  return err instanceof Error && (err.name === 'Canceled' || err.name === 'AbortError')
}

function messageOf(err: unknown): string {
  if (err instanceof Error && err.message) return err.message
  return 'The language model request failed'
}

/** Maps anything vscode.lm throws before streaming starts onto a status and code. */
export function toBridgeError(err: unknown): BridgeError {
  if (err instanceof BridgeError) return err
  const code = languageModelErrorCode(err)
  if (code === 'NoPermissions') return new BridgeError(403, code, `${CONSENT_HINT} (${messageOf(err)})`)
  if (code === 'Blocked') return new BridgeError(429, code, messageOf(err))
  if (code === 'NotFound') return new BridgeError(404, code, messageOf(err))
  if (isCancellation(err)) return new BridgeError(499, 'Cancelled', 'The request was cancelled')
  // VS Code (and Copilot) reject malformed conversations with plain "Invalid request…" Errors.
  if (err instanceof Error && /^invalid (request|role)/i.test(err.message)) {
    return new BridgeError(400, 'invalid_request', err.message)
  }
  return new BridgeError(502, 'Unknown', messageOf(err))
}

/** The event that ends a stream whose model failed after the first part. */
export function toErrorEvent(err: unknown): { type: 'error'; code: LmErrorCode; message: string } {
  const code = languageModelErrorCode(err) ?? 'Unknown'
  const message = code === 'NoPermissions' ? CONSENT_HINT : messageOf(err)
  return { type: 'error', code, message }
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  })
}

export function errorResponse(err: BridgeError): Response {
  return jsonResponse(err.status, { error: { code: err.code, message: err.message } })
}
