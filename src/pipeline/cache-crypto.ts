import { nodeCrypto } from './node-crypto.js'

/**
 * Encryption at rest for cache entries: AES-256-GCM. The key is derived once,
 * with HKDF-SHA-256 (WebCrypto), from the configured secret; entries are sealed
 * with node:crypto where the runtime has it (synchronous) and WebCrypto
 * elsewhere, in one format. Each entry gets a fresh 96-bit IV, and its
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

/** `impl: 'webcrypto'` forces the portable path (tests check both read each other's entries). */
export async function aesGcmSealer(secret: string, impl: 'auto' | 'webcrypto' = 'auto'): Promise<Sealer> {
  const material = await crypto.subtle.importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveBits'])
  const raw = new Uint8Array(
    await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('vscode-lm-gateway/cache'), info: encoder.encode('aes-256-gcm v1') }, material, 256),
  )
  const [encrypt, decrypt] = nodeCrypto && impl === 'auto' ? nodeCipher(raw) : await webCipher(raw)
  return {
    async seal(plain, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(12))
      return `${PREFIX}${toBase64(iv)}.${toBase64(await encrypt(iv, encoder.encode(aad), encoder.encode(plain)))}`
    },
    async open(sealed, aad) {
      const dot = sealed.indexOf('.', PREFIX.length)
      if (!sealed.startsWith(PREFIX) || dot === -1) throw new Error('not a sealed cache entry')
      const plain = await decrypt(fromBase64(sealed.slice(PREFIX.length, dot)), encoder.encode(aad), fromBase64(sealed.slice(dot + 1)))
      return decoder.decode(plain)
    },
  }
}

/** Ciphertext is followed by the 16-byte tag, as WebCrypto writes it, so both implementations read each other's entries. */
type Cipher = (iv: Uint8Array<ArrayBuffer>, aad: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) => Uint8Array<ArrayBuffer> | Promise<Uint8Array<ArrayBuffer>>

async function webCipher(raw: Uint8Array<ArrayBuffer>): Promise<[Cipher, Cipher]> {
  const key = await crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt'])
  return [
    async (iv, aad, data) => new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad }, key, data)),
    async (iv, aad, data) => new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: aad }, key, data)),
  ]
}

function nodeCipher(raw: Uint8Array<ArrayBuffer>): [Cipher, Cipher] {
  const node = nodeCrypto!
  return [
    (iv, aad, data) => {
      const c = node.createCipheriv('aes-256-gcm', raw, iv)
      c.setAAD(aad)
      return concat([c.update(data), c.final(), c.getAuthTag()])
    },
    (iv, aad, data) => {
      if (data.length < 16) throw new Error('sealed cache entry is truncated')
      const d = node.createDecipheriv('aes-256-gcm', raw, iv)
      d.setAAD(aad)
      d.setAuthTag(data.subarray(data.length - 16))
      return concat([d.update(data.subarray(0, data.length - 16)), d.final()])
    },
  ]
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
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
