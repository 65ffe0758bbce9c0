/**
 * Reverse mode: the bridge dials the gateway (wss://<gateway>/bridge/connect)
 * and answers protocol v1 requests multiplexed over that one WebSocket, so a
 * gateway in the cloud reaches a laptop behind NAT without a tunnel.
 *
 * Each request frame becomes a Request for the same fetch handler the HTTP
 * server uses; the frame protocol is documented in bridge/README.md.
 */
import type { FetchHandler } from './http.js'

/** The subset of a `ws` client socket used here (the browser WebSocket cannot send headers). */
export interface ReverseSocket {
  readonly readyState: number
  readonly bufferedAmount?: number
  send(data: string): void
  close(code?: number, reason?: string): void
  terminate?(): void
  on(event: 'open', listener: () => void): unknown
  on(event: 'message', listener: (data: unknown) => void): unknown
  on(event: 'close', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
}

export type ReverseSocketConstructor = new (url: string, options: { headers: Record<string, string> }) => ReverseSocket

export type ReverseState = 'connecting' | 'open' | 'waiting' | 'closed'

export interface ReverseOptions {
  /** Gateway origin (https://, wss://) or the full /bridge/connect URL. */
  url: string
  /** The bridge token: authenticates the socket and the requests carried over it. */
  token: string
  handler: FetchHandler
  WebSocket: ReverseSocketConstructor
  /** First reconnect delay; doubles per failed attempt up to maxDelayMs. */
  minDelayMs?: number
  maxDelayMs?: number
  /** Application-level ping; a missing pong within one interval drops the socket. */
  pingIntervalMs?: number
  onStateChange?(state: ReverseState, detail?: string): void
  /**
   * VS Code's onDidChangeChatModels: each change is announced to the gateway
   * with a `{type:"models_changed"}` frame so it refreshes its model list at once.
   */
  modelsChanged?: (listener: () => void) => { dispose(): unknown }
}

export interface ReverseConnection {
  readonly state: ReverseState
  close(): void
}

type FrameId = string | number

type BridgeFrame =
  | { id: FrameId; type: 'response'; status: number; headers?: Record<string, string>; body: unknown }
  | { id: FrameId; type: 'chunk'; data: unknown }
  | { id: FrameId; type: 'end' }
  | { type: 'ping' }
  | { type: 'pong' }
  | { type: 'models_changed' }

const OPEN = 1
/** Above this many unsent bytes the relay pauses reading the model stream. */
const HIGH_WATER_BYTES = 1024 * 1024

export function reverseEndpoint(url: string): string {
  const endpoint = new URL(url)
  if (endpoint.protocol === 'https:') endpoint.protocol = 'wss:'
  else if (endpoint.protocol === 'http:') endpoint.protocol = 'ws:'
  if (endpoint.protocol !== 'wss:' && endpoint.protocol !== 'ws:') {
    throw new Error(`Reverse URL must be ws(s):// or http(s)://, got ${endpoint.protocol}`)
  }
  if (endpoint.pathname === '' || endpoint.pathname === '/') endpoint.pathname = '/bridge/connect'
  return endpoint.toString()
}

function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8')
  if (Array.isArray(data) && data.every((d) => Buffer.isBuffer(d))) return Buffer.concat(data).toString('utf8')
  return undefined
}

function parseFrame(data: unknown): Record<string, unknown> | undefined {
  const text = frameText(data)
  if (text === undefined) return undefined
  try {
    const frame: unknown = JSON.parse(text)
    return typeof frame === 'object' && frame !== null && !Array.isArray(frame) ? (frame as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function isFrameId(value: unknown): value is FrameId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function connectReverse(options: ReverseOptions): ReverseConnection {
  const endpoint = reverseEndpoint(options.url)
  const minDelay = options.minDelayMs ?? 500
  const maxDelay = options.maxDelayMs ?? 30_000
  const pingInterval = options.pingIntervalMs ?? 30_000
  const inflight = new Map<string, AbortController>()

  let state: ReverseState = 'connecting'
  let socket: ReverseSocket | undefined
  let attempt = 0
  let stopped = false
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  // One subscription for the connection's whole life; it notifies whichever socket is open.
  const modelsSubscription = options.modelsChanged?.(() => {
    if (socket) send(socket, { type: 'models_changed' })
  })

  function setState(next: ReverseState, detail?: string): void {
    state = next
    options.onStateChange?.(next, detail)
  }

  function send(ws: ReverseSocket, frame: BridgeFrame): void {
    if (ws.readyState === OPEN) ws.send(JSON.stringify(frame))
  }

  function abortAll(): void {
    for (const controller of inflight.values()) controller.abort()
    inflight.clear()
  }

  function scheduleReconnect(detail?: string): void {
    if (stopped) return
    // Full jitter halves the thundering herd when a gateway restarts under many bridges.
    const ceiling = Math.min(maxDelay, minDelay * 2 ** attempt)
    const wait = ceiling / 2 + Math.random() * (ceiling / 2)
    attempt++
    setState('waiting', detail)
    retryTimer = setTimeout(dial, wait)
  }

  function startHeartbeat(ws: ReverseSocket, alive: { value: boolean }): void {
    pingTimer = setInterval(() => {
      if (!alive.value) {
        if (ws.terminate) ws.terminate()
        else ws.close(4000, 'pong timeout')
        return
      }
      alive.value = false
      send(ws, { type: 'ping' })
    }, pingInterval)
  }

  async function relayStream(ws: ReverseSocket, id: FrameId, body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.getReader()
    const onAbort = (): void => void reader.cancel().catch(() => {})
    // A cancel frame may have arrived while the handler was still awaiting the first part.
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    const decoder = new TextDecoder()
    let buffered = ''
    const flushLines = (final: boolean): void => {
      const lines = buffered.split('\n')
      buffered = final ? '' : (lines.pop() ?? '')
      for (const line of lines) {
        if (line.trim() === '') continue
        send(ws, { id, type: 'chunk', data: JSON.parse(line) as unknown })
      }
    }
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (signal.aborted) return
        if (done) break
        buffered += decoder.decode(value, { stream: true })
        flushLines(false)
        while ((ws.bufferedAmount ?? 0) > HIGH_WATER_BYTES && ws.readyState === OPEN && !signal.aborted) await delay(5)
      }
      buffered += decoder.decode()
      flushLines(true)
      send(ws, { id, type: 'end' })
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  async function serve(ws: ReverseSocket, frame: Record<string, unknown>): Promise<void> {
    const id = frame.id
    if (!isFrameId(id)) return
    const key = String(id)
    const reject = (status: number, code: string, message: string): void =>
      send(ws, { id, type: 'response', status, body: { error: { code, message } } })
    if (inflight.has(key)) return reject(409, 'duplicate_id', `Request id ${key} is already in flight`)
    const { method, path, body } = frame
    if (typeof method !== 'string' || typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
      return reject(400, 'invalid_frame', 'A request frame needs a method and an absolute path')
    }
    const controller = new AbortController()
    inflight.set(key, controller)
    try {
      const upper = method.toUpperCase()
      const withBody = upper !== 'GET' && upper !== 'HEAD' && body !== undefined
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}` }
      if (withBody) headers['content-type'] = 'application/json'
      const request = new Request(new URL(path, 'http://127.0.0.1'), {
        method: upper,
        headers,
        body: withBody ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
        signal: controller.signal,
      })
      const response = await options.handler(request)
      const contentType = response.headers.get('content-type') ?? ''
      if (response.ok && contentType.startsWith('application/x-ndjson') && response.body) {
        await relayStream(ws, id, response.body, controller.signal)
        return
      }
      const text = await response.text()
      if (controller.signal.aborted) return
      let parsed: unknown = text
      try {
        parsed = text === '' ? null : JSON.parse(text)
      } catch {
        // not JSON: relayed as the raw string
      }
      const responseHeaders: Record<string, string> = {}
      response.headers.forEach((value, name) => {
        responseHeaders[name] = value
      })
      send(ws, { id, type: 'response', status: response.status, headers: responseHeaders, body: parsed })
    } catch {
      if (!controller.signal.aborted) reject(500, 'internal_error', 'The bridge failed to handle the request')
    } finally {
      if (inflight.get(key) === controller) inflight.delete(key)
    }
  }

  function onMessage(ws: ReverseSocket, data: unknown, alive: { value: boolean }): void {
    alive.value = true
    const frame = parseFrame(data)
    if (!frame) return
    switch (frame.type) {
      case 'ping':
        return send(ws, { type: 'pong' })
      case 'request':
        void serve(ws, frame)
        return
      case 'cancel':
        if (isFrameId(frame.id)) {
          inflight.get(String(frame.id))?.abort()
          inflight.delete(String(frame.id))
        }
        return
      default:
        // pong and unknown frame types need no answer.
        return
    }
  }

  function dial(): void {
    retryTimer = undefined
    if (stopped) return
    setState('connecting')
    let ws: ReverseSocket
    try {
      ws = new options.WebSocket(endpoint, { headers: { authorization: `Bearer ${options.token}` } })
    } catch (err) {
      scheduleReconnect(err instanceof Error ? err.message : String(err))
      return
    }
    socket = ws
    const alive = { value: true }
    let lastError: string | undefined
    ws.on('open', () => {
      attempt = 0
      setState('open')
      startHeartbeat(ws, alive)
    })
    ws.on('message', (data) => onMessage(ws, data, alive))
    // 'close' always follows 'error' on a ws socket; reconnecting happens there.
    ws.on('error', (err) => {
      lastError = err.message
    })
    ws.on('close', () => {
      if (socket !== ws) return
      socket = undefined
      clearInterval(pingTimer)
      abortAll()
      if (stopped) setState('closed')
      else scheduleReconnect(lastError ?? 'connection closed')
    })
  }

  dial()

  return {
    get state() {
      return state
    },
    close() {
      if (stopped) return
      stopped = true
      clearTimeout(retryTimer)
      clearInterval(pingTimer)
      abortAll()
      modelsSubscription?.dispose()
      const ws = socket
      socket = undefined
      ws?.close(1000, 'bridge stopped')
      setState('closed')
    },
  }
}
