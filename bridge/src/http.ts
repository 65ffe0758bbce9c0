/**
 * Serves a fetch handler with node:http. The VS Code extension host is plain
 * Node, so no framework adapter is bundled: this converts IncomingMessage to a
 * Request, streams the Response back honouring backpressure, and aborts the
 * Request's signal when the client hangs up before the answer is complete.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FetchHandler = (request: Request) => Promise<Response>

export interface ServeOptions {
  port: number
  host: string
  /** Bodies carry base64 images, so the default is generous. */
  maxBodyBytes?: number
}

export interface ServedHandler {
  readonly server: Server
  readonly host: string
  readonly port: number
  readonly url: string
  /** Stops listening and drops open connections, which cancels their model calls. */
  close(): Promise<void>
}

const DEFAULT_MAX_BODY = 32 * 1024 * 1024

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      // Keep reading (and discarding) so the 413 can still be written; `connection: close` ends it.
      if (size > limit) reject(new BodyTooLarge())
      else chunks.push(chunk)
    })
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))))
    req.on('error', reject)
  })
}

async function toRequest(req: IncomingMessage, signal: AbortSignal, maxBody: number): Promise<Request> {
  const method = req.method ?? 'GET'
  // The Host header is client-controlled and irrelevant to routing: a fixed origin avoids parsing it.
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  const headers = new Headers()
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    try {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
    } catch {
      // A header undici refuses cannot matter to the protocol: drop it.
    }
  }
  const hasBody = method !== 'GET' && method !== 'HEAD'
  const body = hasBody ? await readBody(req, maxBody) : undefined
  return new Request(url, { method, headers, body, signal })
}

function waitForDrainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

async function writeResponse(response: Response, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  res.writeHead(response.status, headers)
  if (!response.body || req.method === 'HEAD') {
    res.end()
    return
  }
  const reader = response.body.getReader()
  // Cancelling the reader reaches the handler's stream (and its model call) even mid-read.
  const onAbort = (): void => void reader.cancel().catch(() => {})
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done || signal.aborted) break
      if (!res.write(value)) await waitForDrainOrClose(res)
    }
    res.end()
  } catch {
    res.destroy()
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function plainError(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
  })
}

async function handle(handler: FetchHandler, req: IncomingMessage, res: ServerResponse, maxBody: number): Promise<void> {
  const abort = new AbortController()
  res.on('error', () => abort.abort())
  res.on('close', () => {
    if (!res.writableFinished) abort.abort()
  })
  let response: Response
  try {
    response = await handler(await toRequest(req, abort.signal, maxBody))
  } catch (err) {
    response =
      err instanceof BodyTooLarge
        ? plainError(413, 'payload_too_large', `The body exceeds ${maxBody} bytes`)
        : plainError(500, 'internal_error', 'The bridge failed to handle the request')
  }
  if (abort.signal.aborted) {
    // The client is gone; still release whatever the handler holds.
    await response.body?.cancel().catch(() => {})
    return
  }
  await writeResponse(response, req, res, abort.signal)
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

export function serveFetch(handler: FetchHandler, options: ServeOptions): Promise<ServedHandler> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY
  const server = createServer((req, res) => void handle(handler, req, res, maxBody))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      const { port } = server.address() as AddressInfo
      resolve({
        server,
        host: options.host,
        port,
        url: `http://${urlHost(options.host)}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}
