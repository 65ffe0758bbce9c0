import type { ImagePart, Message } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import type { HttpClient } from './http.js'

/** Most bytes one linked image may have; the APIs that take inline images cap them near this. */
export const MAX_MEDIA_BYTES = 20 * 1024 * 1024

/**
 * For backends that take images only inline (Ollama): downloads every image
 * given by URL and returns the messages with base64 data instead. Links only
 * reach a provider when the gateway allows remote media (server.allowRemoteMedia).
 */
export async function inlineImageUrls(messages: Message[], http: HttpClient, signal: AbortSignal, maxBytes = MAX_MEDIA_BYTES): Promise<Message[]> {
  const pending: Array<Promise<void>> = []
  const out = messages.map((m, i): Message => {
    if (!m.content.some(hasUrl)) return m
    const content = m.content.map((p, j) => {
      if (!hasUrl(p)) return p
      const part: ImagePart = { ...p }
      pending.push(
        download(http, p.url!, signal, maxBytes, `messages[${i}].content[${j}]`).then((media) => {
          part.data = media.data
          part.mimeType = media.mimeType
          delete part.url
        }),
      )
      return part
    })
    return { ...m, content }
  })
  await Promise.all(pending)
  return out
}

function hasUrl(p: Message['content'][number]): p is ImagePart {
  return p.type === 'image' && !p.data && typeof p.url === 'string'
}

async function download(http: HttpClient, url: string, signal: AbortSignal, maxBytes: number, param: string): Promise<{ mimeType: string; data: string }> {
  const fail = (why: string) => new GatewayError('invalid_request', `${param}: the image at ${url} could not be used: ${why}.`, { param, code: 'invalid_image_url' })
  let res
  try {
    res = await http(url, { method: 'GET', headers: { accept: 'image/*' }, signal })
  } catch (err) {
    if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.', { cause: err })
    throw fail('it could not be downloaded')
  }
  if (res.status >= 400) {
    await res.discard()
    throw fail(`the server answered ${res.status}`)
  }
  const mimeType = (res.header('content-type') ?? '').split(';')[0].trim()
  if (!mimeType.startsWith('image/')) {
    await res.discard()
    throw fail(`it is not an image (content-type ${mimeType || 'missing'})`)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += chunk.byteLength
    if (size > maxBytes) {
      await res.discard()
      throw fail(`it is larger than ${maxBytes} bytes`)
    }
    chunks.push(chunk)
  }
  return { mimeType, data: base64(chunks) }
}

function base64(chunks: Uint8Array[]): string {
  let binary = ''
  for (const c of chunks) for (let i = 0; i < c.length; i += 0x8000) binary += String.fromCharCode(...c.subarray(i, i + 0x8000))
  return btoa(binary)
}
