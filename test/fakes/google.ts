import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { RecordedRequest } from '../helpers/upstream.js'
import { sleep } from '../helpers/upstream.js'

/**
 * The server half of Google's protocols, written independently of the
 * gateway's code: the OAuth 2.0 token endpoint's jwt-bearer grant (RS256
 * verified with node:crypto against the test's public key), Gemini's SSE
 * framing (`data: …\r\n\r\n`), and google.rpc.Status errors.
 */
let shared: ReturnType<typeof generateKeyPairSync> | undefined

/** A service-account key for tests; the RSA pair is generated once (it takes a while) unless `fresh`. */
export function testServiceAccount(tokenUri: string, fresh = false) {
  const pair = fresh ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : (shared ??= generateKeyPairSync('rsa', { modulusLength: 2048 }))
  const { privateKey, publicKey } = pair
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  return {
    publicKey,
    key: {
      type: 'service_account',
      project_id: 'test-project',
      private_key_id: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      private_key: pem,
      client_email: 'gateway@test-project.iam.gserviceaccount.com',
      client_id: '109876543210987654321',
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: tokenUri,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      universe_domain: 'googleapis.com',
    },
  }
}

const b64urlJson = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))

/**
 * Checks a token request as Google's token endpoint does: the grant type,
 * the JWT's RS256 signature, issuer, audience, scope and lifetime. Returns
 * why it is invalid, or null.
 */
export function verifyTokenRequest(req: RecordedRequest, publicKey: KeyObject | string, expected: { iss: string; aud: string; scope: string; kid?: string }, now = Date.now()): string | null {
  if (req.method !== 'POST') return 'method'
  if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return 'content-type'
  const form = new URLSearchParams(req.body)
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return 'grant_type'
  const jwt = form.get('assertion') ?? ''
  const [h, c, s] = jwt.split('.')
  if (!h || !c || !s) return 'assertion is not a JWT'
  const header = b64urlJson(h)
  const claims = b64urlJson(c)
  if (header.alg !== 'RS256' || header.typ !== 'JWT') return 'header'
  if (expected.kid && header.kid !== expected.kid) return 'kid'
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${c}`), key, Buffer.from(s, 'base64url'))) return 'Invalid JWT Signature.'
  if (claims.iss !== expected.iss) return 'iss'
  if (claims.aud !== expected.aud) return 'aud'
  if (claims.scope !== expected.scope) return 'scope'
  const t = Math.floor(now / 1000)
  if (typeof claims.iat !== 'number' || Math.abs(claims.iat - t) > 300) return 'iat'
  if (typeof claims.exp !== 'number' || claims.exp - claims.iat > 3600 || claims.exp <= t) return 'exp'
  return null
}

export function writeJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers }).end(JSON.stringify(value))
}

/** streamGenerateContent?alt=sse as Google sends it: `data: <json>` and CRLF CRLF, no [DONE]. */
export async function writeGeminiSse(res: ServerResponse, chunks: unknown[], delayMs = 0): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'content-disposition': 'attachment', 'x-content-type-options': 'nosniff' })
  for (const c of chunks) {
    if (res.destroyed) return
    res.write(`data: ${JSON.stringify(c)}\r\n\r\n`)
    if (delayMs) await sleep(delayMs)
  }
  res.end()
}

/** `/v1/projects/p/locations/l/publishers/google/models/m:method?alt=sse` or `/v1beta/models/m:method` → parts. */
export function modelCall(url: string): { prefix: string; model: string; method: string; sse: boolean } | null {
  const u = new URL(url, 'http://fake')
  const m = /^(.*)\/models\/([^/:]+):([A-Za-z]+)$/.exec(u.pathname)
  if (!m) return null
  return { prefix: m[1], model: decodeURIComponent(m[2]), method: m[3], sse: u.searchParams.get('alt') === 'sse' }
}
