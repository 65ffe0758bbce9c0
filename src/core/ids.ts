const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** A random id with a type prefix, as the real APIs use (`chatcmpl-…`, `msg_…`). */
export function newId(prefix: string, length = 24): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length))
  let out = prefix
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i] % 62]
  return out
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}
