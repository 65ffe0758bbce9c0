/** Bearer-token check and token generation for the bridge's single shared secret. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { SecretStorageLike } from './vscode-api.js'

export const TOKEN_SECRET_KEY = 'lmGateway.bridge.token'

export function bearerToken(authorization: string | null): string | undefined {
  if (!authorization) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  return match?.[1]
}

/**
 * Constant time in the token's content and length: both sides are hashed to a
 * fixed size first, because timingSafeEqual itself throws on a length mismatch.
 */
export function tokenMatches(presented: string | undefined, expected: string | undefined): boolean {
  if (!presented || !expected) return false
  const a = createHash('sha256').update(presented).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/** The token survives restarts in SecretStorage (the OS keychain); it is created once. */
export async function ensureToken(secrets: SecretStorageLike): Promise<string> {
  const existing = await secrets.get(TOKEN_SECRET_KEY)
  if (existing) return existing
  const token = generateToken()
  await secrets.store(TOKEN_SECRET_KEY, token)
  return token
}
