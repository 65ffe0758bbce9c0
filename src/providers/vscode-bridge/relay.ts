import { z } from 'zod'
import { GatewayError, type ErrorKind } from '../../errors.js'
import { decodeNdjson } from '../../streaming/decode.js'
import { unreachable, type BridgeReply, type BridgeTransport } from './transport.js'

/**
 * Reverse mode where the socket cannot live in the process that serves the
 * request (Cloudflare Workers: the bridge's WebSocket is held by one Durable
 * Object, requests arrive in any isolate). Calls travel isolate → object as
 * HTTP on the object's stub; the object relays them over the socket with the
 * same ReverseChannel multiplexer Node uses (src/entry/worker-bridge-relay.ts).
 *
 * The relay protocol, internal to one deployment:
 * - `GET  /connect` (Upgrade: websocket): hand the bridge's socket to the object.
 * - `*    /call/<protocol v1 path>`: one call; the answer is the bridge's status
 *   and JSON body, or an NDJSON stream of events; a failure inside the relay is
 *   `x-lmgw-relay-error` + the GatewayError as JSON, or a last NDJSON line
 *   `{"relay_error":{…}}` mid-stream.
 * - `POST /cancel`: stop call `x-lmgw-call` (the caller went away).
 * Every answer carries `x-lmgw-relay: connected|absent` and a generation that
 * changes whenever a bridge connects, leaves or reports new models.
 */
export const RELAY_ORIGIN = 'https://bridge-relay.internal'
export const RELAY_HEADERS = {
  state: 'x-lmgw-relay',
  generation: 'x-lmgw-relay-generation',
  call: 'x-lmgw-call',
  error: 'x-lmgw-relay-error',
  provider: 'x-lmgw-provider',
  ping: 'x-lmgw-ping-interval',
} as const

/** What the gateway needs of a Durable Object stub (or anything answering like one). */
export interface RelayStub {
  fetch(input: string | Request, init?: RequestInit): Promise<Response>
}

const RelayedError = z.object({ kind: z.string(), message: z.string(), code: z.string().nullable().optional(), status: z.number().int().optional() })

export function encodeRelayError(err: GatewayError): { kind: ErrorKind; message: string; code: string | null; status: number } {
  return { kind: err.kind, message: err.message, code: err.code, status: err.status }
}

function decodeRelayError(raw: unknown, provider: string): GatewayError {
  const parsed = RelayedError.safeParse(raw)
  if (!parsed.success) return new GatewayError('upstream', `The bridge relay of provider "${provider}" failed.`, { code: 'bridge_protocol_error' })
  const e = parsed.data
  return new GatewayError(e.kind as ErrorKind, e.message, { code: e.code ?? null, status: e.status })
}

export interface RelayTransportOptions {
  provider: string
  /** A stub per call: workerd binds a stub to the request that made it. */
  stub: () => RelayStub
  /** Used when no bridge is connected to the relay: the provider's URL (a tunnel). */
  fallback: BridgeTransport
  /** That URL, for the error when neither answers. */
  url: string
  /** A bridge connected, left or changed its models since the last call seen here. */
  onChange?(): void
}

/** Protocol v1 calls through the relay object; falls back to `fallback` while no bridge is connected. */
export function relayTransport(opts: RelayTransportOptions): BridgeTransport {
  let generation: string | null = null
  let connected = true
  const seen = (res: Response) => {
    connected = res.headers.get(RELAY_HEADERS.state) !== 'absent'
    const g = res.headers.get(RELAY_HEADERS.generation)
    if (g !== null && generation !== null && g !== generation) opts.onChange?.()
    if (g !== null) generation = g
  }
  return {
    /** As of the last answer: `direct` while calls fall back to the URL. */
    get kind() {
      return connected ? 'reverse' : 'direct'
    },
    async call(method, path, body, signal) {
      if (signal.aborted) throw abortReason(signal)
      const key = crypto.randomUUID()
      let finished = false
      const cancel = () => {
        if (finished) return
        finished = true
        signal.removeEventListener('abort', cancel)
        // The object may not see the caller's abort; tell it, so the bridge stops the model.
        opts.stub().fetch(`${RELAY_ORIGIN}/cancel`, { method: 'POST', headers: { [RELAY_HEADERS.call]: key } }).then((r) => r.body?.cancel(), () => {})
      }
      const done = () => {
        finished = true
        signal.removeEventListener('abort', cancel)
      }
      signal.addEventListener('abort', cancel, { once: true })
      let res: Response
      try {
        res = await opts.stub().fetch(`${RELAY_ORIGIN}/call${path}`, {
          method,
          headers: { [RELAY_HEADERS.call]: key, [RELAY_HEADERS.provider]: opts.provider, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          body: method === 'POST' ? JSON.stringify(body) : undefined,
        })
      } catch (err) {
        done()
        if (signal.aborted) throw abortReason(signal)
        throw new GatewayError('unavailable', `The bridge relay of provider "${opts.provider}" could not be reached: ${(err as Error).message}`, { code: 'bridge_relay_unreachable', cause: err })
      }
      seen(res)
      if (res.headers.get(RELAY_HEADERS.state) === 'absent') {
        done()
        await res.body?.cancel().catch(() => {})
        try {
          return await opts.fallback.call(method, path, body, signal)
        } catch (err) {
          // workerd reports a refused connection as a bare "Network connection lost": say what is missing.
          if (signal.aborted || (err instanceof GatewayError && err.code === 'bridge_unreachable')) throw err
          throw unreachable(opts.provider, opts.url, true, err)
        }
      }
      if (res.headers.get(RELAY_HEADERS.error) !== null) {
        done()
        throw decodeRelayError(await res.json().catch(() => null), opts.provider)
      }
      const streamed = res.headers.get('content-type') === 'application/x-ndjson'
      if (!streamed) done()
      const provider = opts.provider
      return {
        status: res.status,
        header: (name) => res.headers.get(name),
        json: async () => {
          const text = await res.text()
          try {
            return JSON.parse(text) as unknown
          } catch {
            return text
          }
        },
        events: () =>
          (async function* () {
            let ended = false
            try {
              for await (const line of decodeNdjson((res.body ?? emptyBody()) as unknown as AsyncIterable<Uint8Array>)) {
                const relayed = (line as { relay_error?: unknown } | null)?.relay_error
                if (relayed !== undefined) throw decodeRelayError(relayed, provider)
                yield line
              }
              ended = true
            } finally {
              if (ended) done()
              else cancel()
            }
          })(),
        discard: async () => {
          cancel()
          await res.body?.cancel().catch(() => {})
        },
      } satisfies BridgeReply
    },
  }
}

function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => c.close() })
}

function abortReason(signal: AbortSignal): GatewayError {
  return signal.reason instanceof GatewayError ? signal.reason : new GatewayError('cancelled', 'The request was cancelled.')
}
