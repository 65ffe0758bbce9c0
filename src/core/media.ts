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
