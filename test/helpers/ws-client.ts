import WebSocket from 'ws'

/** A server frame as the client sees it. */
export type Frame = { type: string; id?: string | number; [k: string]: any }

export interface WsClient {
  ws: WebSocket
  /** Every frame received so far, in order. */
  frames: Frame[]
  /** The subprotocol the server chose. */
  protocol: string
  send(frame: unknown): void
  sendRaw(text: string | Buffer, binary?: boolean): void
  /** Resolves with the first frame (received or to come) matching `pred` after index `from`. */
  next(pred: (f: Frame) => boolean, timeoutMs?: number, from?: number): Promise<Frame>
  /** All frames of request `id` until its terminal frame (done, response or error). */
  until(id: string | number, timeoutMs?: number, from?: number): Promise<Frame[]>
  closed: Promise<{ code: number; reason: string }>
  close(): void
}

const TERMINAL = new Set(['done', 'response', 'error'])

/** Opens a socket with the `ws` package (Node 20 has no global WebSocket) and collects its frames. */
export function connectWs(url: string, opts: { key?: string; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WsClient> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.key) headers.authorization = `Bearer ${opts.key}`
  const ws = new WebSocket(url.replace(/^http/, 'ws'), opts.protocols ?? [], { headers })
  const frames: Frame[] = []
  const waiters = new Set<() => void>()
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()))
    for (const w of [...waiters]) w()
  })
  const client: WsClient = {
    ws,
    frames,
    get protocol() {
      return ws.protocol
    },
    send: (frame) => ws.send(JSON.stringify(frame)),
    sendRaw: (text, binary = false) => ws.send(text, { binary }),
    next(pred, timeoutMs = 5000, from = 0) {
      return new Promise((resolve, reject) => {
        let scanned = from
        const check = () => {
          for (; scanned < frames.length; scanned++) {
            if (!pred(frames[scanned])) continue
            waiters.delete(check)
            clearTimeout(timer)
            return resolve(frames[scanned])
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no matching frame within ${timeoutMs} ms; last frames: ${JSON.stringify(frames.slice(-3)).slice(0, 600)}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    async until(id, timeoutMs = 10_000, from = 0) {
      await client.next((f) => f.id === id && TERMINAL.has(f.type), timeoutMs, from)
      return frames.filter((f) => f.id === id)
    },
    closed,
    close: () => ws.close(),
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)))
  })
}

/** The text of an OpenAI chat stream's event frames, or of an Anthropic stream's text deltas. */
export function streamedText(frames: Frame[]): string {
  let text = ''
  for (const f of frames) {
    if (f.type !== 'event') continue
    if (f.data?.choices) text += f.data.choices[0]?.delta?.content ?? ''
    else if (f.data?.type === 'content_block_delta' && f.data.delta?.type === 'text_delta') text += f.data.delta.text
    else if (f.data?.type === 'response.output_text.delta') text += f.data.delta
  }
  return text
}
