/**
 * Incremental decoders for upstream streams: SSE (OpenAI-compatible, Vertex,
 * Anthropic-compatible) and NDJSON (Ollama, the VS Code bridge). They take
 * byte chunks and yield complete events; partial lines wait for more bytes.
 */
export interface SseEvent {
  event?: string
  data: string
  id?: string
}

export async function* decodeSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder()
  let buffer = ''
  let event: string | undefined
  let id: string | undefined
  let data: string[] = []
  const flush = (): SseEvent | undefined => {
    if (data.length === 0) {
      event = undefined
      return undefined
    }
    const out: SseEvent = { data: data.join('\n') }
    if (event !== undefined) out.event = event
    if (id !== undefined) out.id = id
    event = undefined
    data = []
    return out
  }
  const line = (raw: string): SseEvent | undefined => {
    if (raw === '') return flush()
    if (raw.charCodeAt(0) === 58 /* : */) return undefined
    const colon = raw.indexOf(':')
    const field = colon === -1 ? raw : raw.slice(0, colon)
    let value = colon === -1 ? '' : raw.slice(colon + 1)
    if (value.charCodeAt(0) === 32) value = value.slice(1)
    if (field === 'data') data.push(value)
    else if (field === 'event') event = value
    else if (field === 'id') id = value
    return undefined
  }
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let start = 0
    for (;;) {
      const nl = buffer.indexOf('\n', start)
      const cr = buffer.indexOf('\r', start)
      let end: number
      let next: number
      if (nl === -1 && cr === -1) break
      if (cr !== -1 && (nl === -1 || cr < nl)) {
        // A lone CR at the end of the buffer may be half of a CRLF: wait.
        if (cr === buffer.length - 1) break
        end = cr
        next = buffer.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1
      } else {
        end = nl
        next = nl + 1
      }
      const ev = line(buffer.slice(start, end))
      start = next
      if (ev) yield ev
    }
    buffer = buffer.slice(start)
  }
  buffer += decoder.decode()
  if (buffer) {
    const ev = line(buffer)
    if (ev) yield ev
  }
  const last = flush()
  if (last) yield last
}

export async function* decodeNdjson(body: AsyncIterable<Uint8Array>): AsyncGenerator<unknown> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const text = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (text) yield JSON.parse(text)
    }
  }
  buffer += decoder.decode()
  const rest = buffer.trim()
  if (rest) yield JSON.parse(rest)
}
