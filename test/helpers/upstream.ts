import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
  json(): any
}

export type UpstreamHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>

export interface FakeUpstream {
  url: string
  requests: RecordedRequest[]
  /** Requests whose client went away before the answer finished (upstream saw the abort). */
  aborted: number
  /** Open sockets right now: a leak check. */
  openSockets(): number
  /** Connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  readonly connections: number
  handle(handler: UpstreamHandler): void
  close(): Promise<void>
}

/**
 * A real HTTP server on loopback standing in for a provider. Handlers write
 * the exact bytes of the real service's wire format (see test/fixtures).
 */
export async function startUpstream(handler?: UpstreamHandler): Promise<FakeUpstream> {
  let current: UpstreamHandler = handler ?? ((_, res) => void res.writeHead(404).end())
  const requests: RecordedRequest[] = []
  const sockets = new Set<import('node:net').Socket>()
  const state = { aborted: 0, connections: 0 }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const rec: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, json: () => JSON.parse(body) }
    requests.push(rec)
    res.on('close', () => {
      if (!res.writableFinished) state.aborted++
    })
    try {
      await current(rec, res)
    } catch {
      if (!res.headersSent) res.writeHead(500).end()
      else res.destroy()
    }
  })
  server.on('connection', (s) => {
    state.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return state.connections
    },
    get aborted() {
      return state.aborted
    },
    openSockets: () => sockets.size,
    handle(h) {
      current = h
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * Polls until `condition` holds. The timeout only bounds a failure (it names
 * what never happened); it is no margin a passing run depends on.
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now()
  while (!condition()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(5)
  }
}

/** Writes SSE events the way OpenAI does: `data: <json>\n\n`, then `data: [DONE]`. */
export async function writeSse(res: ServerResponse, events: unknown[], opts: { delayMs?: number; done?: boolean; event?: (e: any) => string | undefined } = {}): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  for (const e of events) {
    if (res.destroyed) return
    const name = opts.event?.(e)
    res.write(`${name ? `event: ${name}\n` : ''}data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`)
    if (opts.delayMs) await sleep(opts.delayMs)
  }
  if (opts.done !== false) res.write('data: [DONE]\n\n')
  res.end()
}
