import { GatewayError } from '../../errors.js'
import { decodeNdjson } from '../../streaming/decode.js'
import { errorCode, type HttpClient, networkError, safeOrigin } from '../shared/http.js'

/** One answer of the bridge, however it travelled (HTTP, or a reverse-mode socket). */
export interface BridgeReply {
  status: number
  header(name: string): string | null
  /** The JSON body of a non-streamed answer (every error, too). */
  json(): Promise<unknown>
  /** The events of a streamed chat answer, as parsed JSON values. */
  events(): AsyncIterable<unknown>
  /** Stops reading; the bridge cancels the model call. */
  discard(): Promise<void>
}

export interface BridgeTransport {
  /** `direct` or `reverse`, for messages and health. */
  readonly kind: 'direct' | 'reverse'
  call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<BridgeReply>
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_SOCKET'])

/** The sentence users need when nothing answers at the bridge URL. */
export function unreachable(provider: string, url: string, reverse: boolean, cause?: unknown): GatewayError {
  const hint = reverse ? ' No bridge is connected in reverse mode either (lmGateway.bridge.reverseUrl).' : ''
  return new GatewayError(
    'unavailable',
    `VS Code bridge is not reachable at ${safeOrigin(url)} (provider "${provider}") — is VS Code running with the LM Gateway Bridge extension?${hint}`,
    { code: 'bridge_unreachable', cause },
  )
}


/**
 * Protocol v1 over HTTP(S). `base` may carry a path prefix (tunnels mount the
 * bridge under one); the keep-alive pool is the HttpClient's.
 */
export function directTransport(opts: { provider: string; base: string; token: string; headers?: Record<string, string>; http: HttpClient; reverseEnabled: boolean }): BridgeTransport {
  const headers: Record<string, string> = { ...opts.headers, authorization: `Bearer ${opts.token}`, accept: 'application/json, application/x-ndjson' }
  const postHeaders = { ...headers, 'content-type': 'application/json' }
  return {
    kind: 'direct',
    async call(method, path, body, signal) {
      const url = opts.base + path
      let res
      try {
        res = await opts.http(url, { method, headers: method === 'POST' ? postHeaders : headers, body: method === 'POST' ? JSON.stringify(body) : undefined, signal })
      } catch (err) {
        const code = errorCode(err)
        if (!signal.aborted && code && NETWORK_CODES.has(code)) throw unreachable(opts.provider, opts.base, opts.reverseEnabled, err)
        throw networkError(opts.provider, url, err, signal)
      }
      return {
        status: res.status,
        header: (name) => res.header(name),
        json: async () => {
          const text = await res.text()
          try {
            return JSON.parse(text) as unknown
          } catch {
            return text
          }
        },
        events: () => readEvents(opts.provider, opts.base, res.body, signal),
        discard: () => res.discard(),
      }
    },
  }
}

/** NDJSON split at any byte is reassembled by decodeNdjson; a broken line or connection becomes a GatewayError. */
async function* readEvents(provider: string, base: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): AsyncGenerator<unknown> {
  try {
    yield* decodeNdjson(body)
  } catch (err) {
    if (err instanceof GatewayError || signal.aborted) throw err
    if (err instanceof SyntaxError) {
      throw new GatewayError('upstream', `The VS Code bridge (provider "${provider}") sent a malformed event line.`, { code: 'bridge_protocol_error', cause: err })
    }
    const e = networkError(provider, base, err, signal)
    throw new GatewayError('upstream', `The connection to the VS Code bridge (provider "${provider}") broke mid-answer: ${e.message}`, { code: 'bridge_connection_lost', cause: err })
  }
}
