/**
 * Thinking signatures are only valid at the provider that made them: a
 * foreign one makes Anthropic answer 400 ("Invalid signature"). Providers
 * therefore hand signatures out tagged with their own id, and dialects read
 * the tag back into `ThinkingPart.provider`, so that a provider can forward
 * its own signatures and drop everyone else's. The tag is opaque to clients.
 */
const PREFIX = 'gw1:'

export function tagSignature(provider: string, signature: string): string {
  return `${PREFIX}${provider}:${signature}`
}

/** Splits a client-sent signature into the producing provider (when tagged) and the raw signature. */
export function readSignature(value: string): { provider?: string; signature: string } {
  if (!value.startsWith(PREFIX)) return { signature: value }
  const colon = value.indexOf(':', PREFIX.length)
  if (colon === -1) return { signature: value }
  return { provider: value.slice(PREFIX.length, colon), signature: value.slice(colon + 1) }
}
