import { GatewayError, isAbort, kindForStatus } from '../../errors.js'

/** The slice of an HTTP response providers read. */
export interface HttpResponse {
  status: number
  header(name: string): string | null
  text(): Promise<string>
  json(): Promise<unknown>
  body: AsyncIterable<Uint8Array>
  /** Releases the connection without reading the rest. */
  discard(): Promise<void>
}

export interface HttpRequestInit {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT'
  headers: Record<string, string>
  body?: string | Uint8Array
  signal?: AbortSignal
  /** `manual`: hand back 3xx answers instead of following them (the media fetcher checks every hop). undici's request never follows. */
  redirect?: 'manual'
  /**
   * Time allowed until the response headers, in ms; a long body after them is
   * never cut. A client that supports it natively (undici) uses no signal.
   */
  headersTimeoutMs?: number
}

/**
 * How providers talk HTTP. Any `fetch` can be adapted (Bun, Workers, tests);
 * on Node the entry passes a client built on undici's pooled `request`.
 */
export type HttpClient = (url: string, init: HttpRequestInit) => Promise<HttpResponse>

const EMPTY: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} }

export function fetchClient(f: (input: string, init: RequestInit) => Promise<Response> = (i, o) => fetch(i, o)): HttpClient {
  return async (url, init) => {
    const deadline = init.headersTimeoutMs === undefined ? undefined : headerDeadline(init.signal, init.headersTimeoutMs)
    let res: Response
    try {
      res = await f(url, { method: init.method, headers: init.headers, body: init.body as BodyInit | undefined, signal: deadline?.signal ?? init.signal, ...(init.redirect ? { redirect: init.redirect } : {}) })
    } finally {
      deadline?.headersReceived()
    }
    const body = res.body
    return {
      status: res.status,
      header: (name) => res.headers.get(name),
      text: () => res.text(),
      json: () => res.json(),
      body: body ? (body as unknown as AsyncIterable<Uint8Array>) : EMPTY,
      discard: async () => {
        await body?.cancel().catch(() => {})
      },
    }
  }
}

/** Wraps network failures (refused, reset, DNS, abort) into GatewayErrors naming the provider. */
export async function send(http: HttpClient, provider: string, url: string, init: HttpRequestInit): Promise<HttpResponse> {
  try {
    return await http(url, init)
  } catch (err) {
    throw networkError(provider, url, err, init.signal)
  }
}

export function networkError(provider: string, url: string, err: unknown, signal?: AbortSignal): GatewayError {
  if (signal?.aborted) {
    const reason = signal.reason
    if (reason instanceof GatewayError) return reason
    return new GatewayError('cancelled', 'The request was cancelled.', { cause: err })
  }
  const code = errorCode(err)
  if (code === HEADERS_TIMEOUT) {
    return new GatewayError('timeout', `Provider "${provider}" did not answer within ${(err as { timeoutMs?: number }).timeoutMs ?? '?'} ms.`, { cause: err })
  }
  if (isAbort(err)) return new GatewayError('timeout', `Provider "${provider}" timed out.`, { cause: err })
  const origin = safeOrigin(url)
  if (code === 'ECONNREFUSED') {
    return new GatewayError('unavailable', `Provider "${provider}" is not reachable at ${origin} (connection refused).`, { cause: err, code: 'provider_unreachable' })
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
    return new GatewayError('timeout', `Provider "${provider}" at ${origin} timed out.`, { cause: err })
  }
  return new GatewayError('upstream', `Provider "${provider}" at ${origin} failed: ${code ?? (err as Error)?.message ?? 'network error'}.`, { cause: err, code: 'provider_network_error' })
}

/** The first string `code` on an error or its causes (undici and Node nest them). */
export function errorCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** Scheme, host and port only: never paths with secrets or credentials. */
export function safeOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'the configured URL'
  }
}

/** Seconds from Retry-After (seconds or HTTP date) or retry-after-ms. */
export function retryAfterSeconds(res: HttpResponse): number | undefined {
  const ms = res.header('retry-after-ms')
  if (ms && !Number.isNaN(Number(ms))) return Math.max(0, Number(ms) / 1000)
  const ra = res.header('retry-after')
  if (!ra) return undefined
  const n = Number(ra)
  if (!Number.isNaN(n)) return Math.max(0, n)
  const date = Date.parse(ra)
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000)
}

/**
 * A GatewayError for a non-2xx upstream answer. The upstream's own message is
 * kept (it explains the problem to the client), prefixed with the provider id.
 */
export async function upstreamError(provider: string, res: HttpResponse, extract?: (body: unknown) => string | undefined): Promise<GatewayError> {
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* the body is lost; the status still says enough */
  }
  let message: string | undefined
  try {
    const body = JSON.parse(text) as unknown
    message = extract?.(body) ?? defaultExtract(body)
  } catch {
    message = text.slice(0, 500) || undefined
  }
  const kind = kindForStatus(res.status)
  const status = kind === 'invalid_request' || kind === 'not_found' || kind === 'rate_limit' || kind === 'payload_too_large' ? res.status : undefined
  return new GatewayError(kind, `Provider "${provider}" answered ${res.status}${message ? `: ${message}` : ''}`, {
    status: kind === 'auth' || kind === 'permission' ? 502 : status,
    retryAfter: retryAfterSeconds(res),
    code: kind === 'auth' || kind === 'permission' ? 'provider_auth_error' : null,
  })
}

function defaultExtract(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined
  const b = body as { error?: unknown; message?: unknown; detail?: unknown }
  if (typeof b.error === 'string') return b.error
  if (b.error && typeof b.error === 'object' && typeof (b.error as { message?: unknown }).message === 'string') return (b.error as { message: string }).message
  if (typeof b.message === 'string') return b.message
  if (typeof b.detail === 'string') return b.detail
  return undefined
}

/** The code of the error a header deadline fails with (carries `timeoutMs`). */
export const HEADERS_TIMEOUT = 'GATEWAY_HEADERS_TIMEOUT'

/** The error a header deadline fails with: networkError turns it into a timeout naming the provider. */
export function headersTimeoutError(ms: number): Error {
  return Object.assign(new Error(`No response headers within ${ms} ms.`), { name: 'TimeoutError', code: HEADERS_TIMEOUT, timeoutMs: ms })
}

/**
 * A signal that follows `parent` (when given) and also aborts when the
 * upstream has not answered with headers within `ms`. Call
 * `headersReceived()` once they are in: a long generation after that is
 * never cut by this timer. For clients without a native header timeout.
 */
function headerDeadline(parent: AbortSignal | undefined, ms: number): { signal: AbortSignal; headersReceived(): void } {
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(headersTimeoutError(ms)), ms)
  // AbortSignal.any holds its sources weakly: many calls on one request's signal add no listeners to it.
  return { signal: parent ? AbortSignal.any([parent, deadline.signal]) : deadline.signal, headersReceived: () => clearTimeout(timer) }
}

/** `send` with a deadline on the response headers only (see HttpRequestInit.headersTimeoutMs): a long body after them is never cut. */
export function sendWithin(http: HttpClient, provider: string, url: string, init: HttpRequestInit & { signal: AbortSignal }, timeoutMs: number): Promise<HttpResponse> {
  return send(http, provider, url, { ...init, headersTimeoutMs: timeoutMs })
}

/** A provider whose model list answers is healthy: the one probe most providers need. */
export async function healthFromModels(models: (signal?: AbortSignal) => Promise<unknown>, signal?: AbortSignal): Promise<{ ok: boolean; detail?: string }> {
  try {
    await models(signal)
    return { ok: true }
  } catch (err) {
    return { ok: false, detail: GatewayError.from(err).message }
  }
}
