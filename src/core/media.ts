/** `data:<mime>;base64,<data>` → its parts; null for anything else. */
export function parseDataUrl(url: string): { mimeType: string; data: string } | null {
  if (!url.startsWith('data:')) return null
  const comma = url.indexOf(',')
  if (comma === -1) return null
  const meta = url.slice(5, comma)
  if (!meta.endsWith(';base64')) return null
  return { mimeType: meta.slice(0, -7) || 'application/octet-stream', data: url.slice(comma + 1) }
}

export function isHttpUrl(url: string): boolean {
  return url.startsWith('https://') || url.startsWith('http://')
}

/** The media type without parameters, lower-cased (`Image/PNG; x=1` → `image/png`). */
export function bareMime(mime: string): string {
  return mime.split(';')[0].trim().toLowerCase()
}

/** Decoded size of base64 text, without decoding it. */
export function base64Bytes(data: string): number {
  let pad = 0
  if (data.endsWith('==')) pad = 2
  else if (data.endsWith('=')) pad = 1
  return Math.floor((data.length * 3) / 4) - pad
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

export function isBase64(data: string): boolean {
  return data.length % 4 === 0 && BASE64.test(data)
}

/** The first bytes of base64 data (enough for magic numbers), or null when they do not decode. */
export function base64Head(data: string, bytes = 48): Uint8Array | null {
  const chars = Math.min(data.length - (data.length % 4), Math.ceil(bytes / 3) * 4)
  try {
    const bin = atob(data.slice(0, chars))
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out
  } catch {
    return null
  }
}

export function bytesToBase64(chunks: Uint8Array | Uint8Array[]): string {
  let binary = ''
  for (const c of Array.isArray(chunks) ? chunks : [chunks]) for (let i = 0; i < c.length; i += 0x8000) binary += String.fromCharCode(...c.subarray(i, i + 0x8000))
  return btoa(binary)
}

export function base64ToBytes(data: string): Uint8Array {
  const bin = atob(data)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

function ascii(b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false
  return true
}

/**
 * What the bytes are, from their magic numbers: the media types clients send
 * to language models (images, PDF, office files, audio, video). Undefined
 * when the bytes match no signature known here.
 */
export function sniffMime(b: Uint8Array): string | undefined {
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 'PNG\r\n\x1a\n')) return 'image/png'
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg'
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'image/gif'
  if (ascii(b, 0, 'RIFF')) {
    if (ascii(b, 8, 'WEBP')) return 'image/webp'
    if (ascii(b, 8, 'WAVE')) return 'audio/wav'
    if (ascii(b, 8, 'AVI ')) return 'video/x-msvideo'
  }
  if (ascii(b, 0, '%PDF-')) return 'application/pdf'
  if (ascii(b, 0, 'PK\x03\x04')) return 'application/zip'
  if (b.length >= 4 && b[0] === 0xd0 && b[1] === 0xcf && b[2] === 0x11 && b[3] === 0xe0) return 'application/x-ole-storage'
  if (ascii(b, 0, 'ID3')) return 'audio/mpeg'
  if (ascii(b, 0, 'fLaC')) return 'audio/flac'
  if (ascii(b, 0, 'OggS')) return 'audio/ogg'
  if (ascii(b, 0, 'FLV')) return 'video/x-flv'
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'video/webm'
  if (ascii(b, 4, 'ftyp')) {
    const brand = String.fromCharCode(...b.subarray(8, 12))
    if (brand === 'qt  ') return 'video/quicktime'
    if (brand.startsWith('3g')) return 'video/3gpp'
    if (brand === 'M4A ' || brand === 'M4B ') return 'audio/mp4'
    if (brand.startsWith('hei') || brand.startsWith('mif1') || brand === 'heix') return 'image/heic'
    return 'video/mp4'
  }
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && (b[3] === 0xba || b[3] === 0xb3)) return 'video/mpeg'
  if (b.length >= 2 && b[0] === 0xff && (b[1] & 0xf6) === 0xf0) return 'audio/aac'
  if (b.length >= 2 && b[0] === 0xff && (b[1] & 0xe0) === 0xe0) return 'audio/mpeg'
  return undefined
}

/** Declared types and the sniffed types that may stand for them (containers shared by several names). */
const SAME: Record<string, string[]> = {
  'image/jpg': ['image/jpeg'],
  'image/heif': ['image/heic'],
  'audio/mp3': ['audio/mpeg'],
  'audio/wave': ['audio/wav'],
  'audio/x-wav': ['audio/wav'],
  'audio/vnd.wave': ['audio/wav'],
  'audio/webm': ['video/webm'],
  'audio/m4a': ['audio/mp4', 'video/mp4'],
  'audio/x-m4a': ['audio/mp4', 'video/mp4'],
  'audio/mp4': ['audio/mp4', 'video/mp4'],
  'audio/aac': ['audio/aac', 'audio/mpeg'],
  'audio/mpeg': ['audio/mpeg', 'audio/aac'],
  'video/mp4': ['video/mp4', 'audio/mp4'],
  'video/mov': ['video/quicktime', 'video/mp4'],
  'video/quicktime': ['video/quicktime', 'video/mp4'],
  'video/x-matroska': ['video/webm'],
  'video/mpg': ['video/mpeg'],
  'video/avi': ['video/x-msvideo'],
  'video/3gp': ['video/3gpp'],
  'video/x-flv': ['video/x-flv'],
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': ['application/zip'],
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': ['application/zip'],
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': ['application/zip'],
  'application/msword': ['application/x-ole-storage'],
  'application/vnd.ms-excel': ['application/x-ole-storage'],
}

/** Types whose bytes have a signature sniffMime knows: for these, bytes that match none are a lie. */
const SIGNED = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/pdf',
  'audio/wav',
  'audio/flac',
  'audio/ogg',
  'video/webm',
  'video/x-msvideo',
  ...Object.keys(SAME),
])

/**
 * Whether bytes sniffed as `sniffed` may be what the client declared. Types
 * with no known signature (text, csv, markdown …) always may: there is
 * nothing to check them against.
 */
export function mimeMatches(declared: string, sniffed: string | undefined): boolean {
  const d = bareMime(declared)
  if (!SIGNED.has(d)) return true
  if (sniffed === undefined) return false
  return sniffed === d || (SAME[d]?.includes(sniffed) ?? false)
}

/** A media type guessed from a file name or URL path, for sources that carry none. */
export function mimeFromName(name: string): string | undefined {
  const ext = name.split(/[?#]/)[0].toLowerCase().match(/\.([a-z0-9]+)$/)?.[1]
  return ext ? EXTENSIONS[ext] : undefined
}

const EXTENSIONS: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  pdf: 'application/pdf',
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  html: 'text/html',
  json: 'application/json',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  doc: 'application/msword',
  xls: 'application/vnd.ms-excel',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  m4a: 'audio/mp4',
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  mpeg: 'video/mpeg',
  mpg: 'video/mpeg',
  avi: 'video/x-msvideo',
  flv: 'video/x-flv',
}
