import type { WebSocketUpgrade } from '../ws/upgrade.js'

/** The slice of the Workers runtime's WebSocket the API uses. */
interface WorkerSocket {
  accept(): void
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (e: { data: string | ArrayBuffer }) => void): void
  addEventListener(type: 'close', listener: (e: { code: number; reason: string }) => void): void
  addEventListener(type: 'error', listener: () => void): void
}
declare const WebSocketPair: { new (): { 0: WorkerSocket; 1: WorkerSocket } }

/**
 * The Workers handshake (GatewayDeps.webSocket): a WebSocketPair, the
 * server end accepted in this isolate, the client end returned in a 101.
 * Workers expose neither the send-buffer size nor protocol pings: there is no
 * backpressure on the socket (workerd buffers), and liveness uses
 * `{"type":"ping"}` frames the client answers.
 */
export const workerWebSocketUpgrade: WebSocketUpgrade = (_c, accept) => {
  const pair = new WebSocketPair()
  const client = pair[0]
  const server = pair[1]
  server.accept()
  const handlers = accept.open({
    send: (text) => server.send(text),
    close: (code, reason) => server.close(code, reason),
    // No way to drop a connection without a closing handshake here.
    terminate: () => server.close(4408, 'no answer to ping'),
    outlivesClose: false,
  })
  server.addEventListener('message', (e) => handlers.message(typeof e.data === 'string' ? e.data : new Uint8Array(e.data), typeof e.data !== 'string'))
  server.addEventListener('close', (e) => {
    handlers.closed(e.code, e.reason)
    try {
      server.close(1000, 'closed')
    } catch {
      /* already closed */
    }
  })
  server.addEventListener('error', () => handlers.closed(1006, 'socket error'))
  const headers: Record<string, string> = accept.protocol ? { 'sec-websocket-protocol': accept.protocol } : {}
  return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit)
}
