import { z } from 'zod'
import { GatewayError } from '../../errors.js'
import { type HttpClient, sendWithin } from '../shared/http.js'

/**
 * Service-account credentials → OAuth access tokens, the way Google's auth
 * libraries do it: an RS256-signed JWT (WebCrypto, so it runs on Workers too)
 * exchanged at the key's token URI with the jwt-bearer grant. Tokens are
 * cached until shortly before they expire; concurrent callers share one
 * exchange.
 */
export const ServiceAccount = z.looseObject({
  type: z.literal('service_account').optional(),
  project_id: z.string().optional(),
  private_key_id: z.string().optional(),
  private_key: z.string().includes('PRIVATE KEY', { message: 'must be a PEM private key' }),
  client_email: z.string().min(1),
  token_uri: z.string().url().default('https://oauth2.googleapis.com/token'),
})
export type ServiceAccount = z.output<typeof ServiceAccount>

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform'
/** Refresh this long before the token's stated expiry, so no request carries a token that dies in flight. */
const EXPIRY_MARGIN_MS = 5 * 60_000

const TokenAnswer = z.looseObject({ access_token: z.string().min(1), expires_in: z.number().positive(), token_type: z.string().optional() })

export interface TokenSource {
  token(signal: AbortSignal): Promise<string>
  /** Forgets the cached token (after the service rejected it). */
  invalidate(): void
}

export function serviceAccountTokens(provider: string, sa: ServiceAccount, http: HttpClient, opts: { scope?: string; now?: () => number; timeoutMs?: number } = {}): TokenSource {
  const now = opts.now ?? Date.now
  const scope = opts.scope ?? CLOUD_PLATFORM_SCOPE
  let key: Promise<CryptoKey> | undefined
  let cached: { token: string; refreshAt: number } | undefined
  let pending: Promise<string> | undefined

  async function exchange(signal: AbortSignal): Promise<string> {
    key ??= importPrivateKey(sa.private_key).catch((err) => {
      key = undefined
      throw new GatewayError('internal', `Provider "${provider}": the service account's private_key cannot be read (${(err as Error).message}).`, { cause: err })
    })
    const iat = Math.floor(now() / 1000)
    const header = { alg: 'RS256', typ: 'JWT', ...(sa.private_key_id ? { kid: sa.private_key_id } : {}) }
    const claims = { iss: sa.client_email, scope, aud: sa.token_uri, iat, exp: iat + 3600 }
    const unsigned = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', await key, new TextEncoder().encode(unsigned))
    const assertion = `${unsigned}.${b64url(new Uint8Array(signature))}`
    const body = `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:jwt-bearer')}&assertion=${assertion}`
    const res = await sendWithin(http, provider, sa.token_uri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body, signal }, opts.timeoutMs ?? 30_000)
    const text = await res.text().catch(() => '')
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    if (res.status >= 400) {
      const e = json as { error?: unknown; error_description?: unknown } | undefined
      const why = [e?.error, e?.error_description].filter((x) => typeof x === 'string').join(': ') || text.slice(0, 200)
      const server = res.status >= 500 || res.status === 429
      throw new GatewayError(server ? 'upstream' : 'auth', `Provider "${provider}" could not get an access token for ${sa.client_email} (${res.status}${why ? `: ${why}` : ''}).`, {
        status: 502,
        retryable: server,
        code: server ? null : 'provider_auth_error',
      })
    }
    const parsed = TokenAnswer.safeParse(json)
    if (!parsed.success) throw new GatewayError('upstream', `Provider "${provider}": the token endpoint answered without an access_token.`)
    cached = { token: parsed.data.access_token, refreshAt: now() + Math.max(0, parsed.data.expires_in * 1000 - EXPIRY_MARGIN_MS) }
    return parsed.data.access_token
  }

  return {
    token(signal) {
      if (cached && now() < cached.refreshAt) return Promise.resolve(cached.token)
      // One exchange for everyone waiting; it is not tied to the first caller's signal.
      pending ??= exchange(AbortSignal.timeout(opts.timeoutMs ?? 30_000)).finally(() => {
        pending = undefined
      })
      return abortable(pending, signal)
    },
    invalidate() {
      cached = undefined
    },
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new GatewayError('cancelled', 'The request was cancelled.'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new GatewayError('cancelled', 'The request was cancelled.'))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\\n/g, '').replace(/\s+/g, '')
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
  return crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'])
}

function b64url(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  let bin = ''
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i])
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
