/**
 * Encryption at rest for cache entries: AES-256-GCM with WebCrypto (the same
 * code on Node, Bun and Workers). The key is derived once, with HKDF-SHA-256,
 * from the configured secret. Each entry gets a fresh 96-bit IV, and its
 * storage key is bound as additional data, so an entry moved to another key
 * (another API key's scope) does not decrypt.
 */
export interface Sealer {
  seal(plain: string, aad: string): Promise<string>
  /** Throws when the text was not sealed with this key for this aad. */
  open(sealed: string, aad: string): Promise<string>
}

const PREFIX = 'g1.'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(PREFIX)
}

export async function aesGcmSealer(secret: string): Promise<Sealer> {
  const material = await crypto.subtle.importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey'])
  const key = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('vscode-lm-gateway/cache'), info: encoder.encode('aes-256-gcm v1') },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  )
  return {
    async seal(plain, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(12))
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(aad) }, key, encoder.encode(plain)))
      return `${PREFIX}${toBase64(iv)}.${toBase64(ct)}`
    },
    async open(sealed, aad) {
      const dot = sealed.indexOf('.', PREFIX.length)
      if (!sealed.startsWith(PREFIX) || dot === -1) throw new Error('not a sealed cache entry')
      const iv = fromBase64(sealed.slice(PREFIX.length, dot))
      const ct = fromBase64(sealed.slice(dot + 1))
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(aad) }, key, ct)
      return decoder.decode(plain)
    },
  }
}

function toBase64(bytes: Uint8Array): string {
  let bin = ''
  // fromCharCode takes arguments, so go in chunks well under engines' argument limits.
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(bin)
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}
