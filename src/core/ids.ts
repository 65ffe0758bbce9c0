const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

// Random bytes are drawn in blocks: one getRandomValues call per id costs more than the id.
const POOL = new Uint8Array(4096)
let used = POOL.length

/** A random id with a type prefix, as the real APIs use (`chatcmpl-…`, `msg_…`). */
export function newId(prefix: string, length = 24): string {
  if (used + length > POOL.length) {
    crypto.getRandomValues(POOL)
    used = 0
  }
  let out = prefix
  for (let i = 0; i < length; i++) out += ALPHABET[POOL[used++] % 62]
  return out
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}
