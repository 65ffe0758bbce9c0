import { GatewayError } from '../errors.js'
import { anthropicErrorBody } from '../dialects/anthropic/errors.js'
import { openAIErrorBody, openAIStatus } from '../dialects/openai/errors.js'
import { internalEnv, type InternalIdentity } from '../middleware/internal.js'
import { decodeSse } from '../streaming/decode.js'
import { clientCancel } from '../streaming/session.js'
import type { FrameId, RequestFrame, ResumeFrame } from './protocol.js'

export type AppFetch = (request: Request, env?: unknown) => Response | Promise<Response>

export interface ExchangeOptions {
  fetch: AppFetch
  identity: InternalIdentity
  /** Writes one serialised frame to the socket. */
  send(text: string): void
  /** Resolves when the socket's send buffer has room (undefined: it has room now). */
  room(): Promise<void> | undefined
}

/** Answer headers worth passing on: what served the request, limits, retry hints. */
const KEEP_HEADER = /^(x-request-id|x-gateway-[a-z0-9-]+|x-ratelimit-[a-z0-9-]+|retry-after|x-should-retry)$/

/** Status of an in-band stream error, from the error type both dialects put in it. */
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  rate_limit_exceeded: 429,
  cancelled: 499,
  api_error: 500,
  server_error: 500,
  upstream_error: 502,
  service_unavailable: 503,
  timeout_error: 504,
  overloaded_error: 529,
}

/** An error frame's `error`, in the dialect's own shape (the body HTTP would answer). */
export function errorBody(dialect: 'openai' | 'anthropic', err: GatewayError): { status: number; error: unknown } {
  return dialect === 'anthropic' ? { status: err.status, error: anthropicErrorBody(err) } : { status: openAIStatus(err), error: openAIErrorBody(err) }
}

export function dialectOfPath(path: string): 'openai' | 'anthropic' {
  return path.startsWith('/v1/messages') ? 'anthropic' : 'openai'
}

/** Frame-level header text: `{"id":<id>,"type":"` — every frame of an exchange starts with it. */
function idPrefix(id: FrameId | undefined): string {
  return id === undefined ? '{"type":"' : `{"id":${JSON.stringify(id)},"type":"`
}

/**
 * One request on a socket, run through the gateway's own fetch handler with
 * the socket's identity (exactly as a batch item is), so it takes the same
 * validation, cache, limits, queue, routing and usage records as over HTTP.
 * The answer becomes frames: JSON → one `response` (or `error`); SSE → an
 * `event` per SSE event, then `done` (or `error` for an in-band failure).
 */
export class Exchange {
  private readonly ac = new AbortController()
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  /** A terminal frame was sent (or the socket is gone): nothing more goes out. */
  private over = false
  private readonly prefix: string

  constructor(
    readonly id: FrameId,
    private readonly opts: ExchangeOptions,
  ) {
    this.prefix = idPrefix(id)
  }

  async request(frame: RequestFrame): Promise<void> {
    const dialect = dialectOfPath(frame.path)
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(frame.headers ?? {})) headers[k.toLowerCase()] = v
    const body = frame.body as { stream?: unknown; stream_options?: { progress?: unknown } } | undefined
    const streaming = frame.method === 'POST' && body?.stream === true
    // Queue frames come from the stream's progress frames; asked for unless the client said otherwise.
    const wantsProgress = body?.stream_options?.progress === true || /^(1|true)$/i.test(headers['x-gateway-progress'] ?? '')
    if (streaming && headers['x-gateway-progress'] === undefined) headers['x-gateway-progress'] = '1'
    let payload: string | undefined
    if (frame.method !== 'GET' && frame.body !== undefined) {
      payload = JSON.stringify(frame.body)
      headers['content-type'] = 'application/json'
    }
    await this.run(new Request(`http://gateway.internal${frame.path}`, { method: frame.method, headers, body: payload, signal: this.ac.signal }), dialect, wantsProgress)
  }

  /** Picks up a stream after a lost connection: GET /v1/streams/{id}, the same buffer as SSE resume. */
  async resume(frame: ResumeFrame): Promise<void> {
    const path = `/v1/streams/${encodeURIComponent(frame.stream_id)}`
    await this.run(new Request(`http://gateway.internal${path}`, { headers: { 'last-event-id': String(frame.last_event_id) }, signal: this.ac.signal }), 'openai', false)
  }

  /** The client cancelled: the upstream call is aborted now (no reconnect grace), and the request ends with a 499 error frame. */
  cancel(dialect: 'openai' | 'anthropic'): void {
    if (this.over) return
    const err = clientCancel()
    this.ac.abort(err)
    void this.reader?.cancel(err).catch(() => {})
    this.terminal('error', errorBody(dialect, err))
  }

  /**
   * The socket is gone: streams keep their reconnect grace (a `resume` on a
   * new socket picks them up); the rest stop. Without grace (the runtime
   * cannot keep working for a closed socket) streams stop too, so that their
   * resume buffer ends with what was generated.
   */
  drop(graceful: boolean): void {
    if (this.over) return
    this.over = true
    const reason = graceful ? new GatewayError('cancelled', 'The WebSocket connection closed.') : clientCancel()
    this.ac.abort(reason)
    void this.reader?.cancel(reason).catch(() => {})
  }

  private async run(request: Request, dialect: 'openai' | 'anthropic', forwardProgress: boolean): Promise<void> {
    let res: Response
    try {
      res = await this.opts.fetch(request, internalEnv(this.opts.identity))
    } catch (err) {
      return this.terminal('error', errorBody(dialect, GatewayError.from(err)))
    }
    if (this.over) return void res.body?.cancel().catch(() => {})
    const type = res.headers.get('content-type') ?? ''
    if (res.ok && res.body && type.startsWith('text/event-stream')) return this.stream(res, dialect, forwardProgress)
    const text = await res.text().catch(() => '')
    let body: unknown = text === '' ? null : text
    if (type.includes('json') && text) {
      try {
        body = JSON.parse(text)
      } catch {
        /* kept as text */
      }
    }
    const headers = keptHeaders(res.headers)
    if (res.status >= 400) this.terminal('error', { status: res.status, headers, error: body })
    else this.terminal('response', { status: res.status, headers, body })
  }

  private async stream(res: Response, dialect: 'openai' | 'anthropic', forwardProgress: boolean): Promise<void> {
    const streamId = res.headers.get('x-gateway-stream-id') ?? undefined
    const reader = res.body!.getReader()
    this.reader = reader
    const room = this.opts.room
    // Backpressure: the next chunk is read only once the socket has room, so a slow client stalls the upstream read.
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for (;;) {
        const wait = room()
        if (wait) await wait
        const r = await reader.read()
        if (r.done) return
        yield r.value
      }
    }
    const head = `${this.prefix}event"${streamId === undefined ? '' : `,"stream_id":${JSON.stringify(streamId)}`},"event":`
    let failure: { status: number; error: unknown } | undefined
    try {
      for await (const ev of decodeSse(chunks())) {
        if (this.over) break
        const data = ev.data
        if (data === '[DONE]') continue
        const name = ev.event ?? 'message'
        if (name === 'progress') {
          this.progress(data, forwardProgress ? head : undefined, ev.id)
          continue
        }
        if (name === 'error' || data.startsWith('{"error"')) {
          failure ??= inbandError(data, dialect)
          continue
        }
        // Our own encoders wrote this data as compact JSON: it is spliced in, not re-parsed.
        const json = data.charCodeAt(0) === 123 || data.charCodeAt(0) === 91 ? data : JSON.stringify(data)
        this.opts.send(`${head}${JSON.stringify(name)}${ev.id === undefined ? '' : `,"event_id":${Number(ev.id)}`},"data":${json}}`)
      }
    } catch (err) {
      failure ??= errorBody(dialect, GatewayError.from(err))
    }
    if (this.over) return
    if (failure) this.terminal('error', failure)
    else this.terminal('done', streamId === undefined ? {} : { stream_id: streamId })
  }

  /** A progress frame: `queued` becomes a `queue` frame; all are passed on as events when the client asked for progress. */
  private progress(data: string, head: string | undefined, eventId: string | undefined): void {
    let p: { phase?: string; position?: number; estimated_wait_ms?: number } | undefined
    try {
      const parsed = JSON.parse(data) as { progress?: typeof p } & typeof p
      p = parsed.progress ?? parsed
    } catch {
      return
    }
    if (p?.phase === 'queued' && typeof p.position === 'number') {
      this.opts.send(`${this.prefix}queue","position":${p.position},"wait_ms":${typeof p.estimated_wait_ms === 'number' ? Math.round(p.estimated_wait_ms) : 'null'}}`)
    }
    if (head) this.opts.send(`${head}"progress"${eventId === undefined ? '' : `,"event_id":${Number(eventId)}`},"data":${data}}`)
  }

  private terminal(type: 'response' | 'error' | 'done', fields: Record<string, unknown>): void {
    if (this.over) return
    this.over = true
    const rest = JSON.stringify(fields)
    this.opts.send(`${this.prefix}${type}"${rest === '{}' ? '}' : `,${rest.slice(1)}`}`)
  }
}

function keptHeaders(h: Headers): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  h.forEach((value, name) => {
    if (KEEP_HEADER.test(name)) (out ??= {})[name] = value
  })
  return out
}

/** An in-band stream error (OpenAI `{"error":…}`, Anthropic/Responses `event: error`) as an error frame's status and body. */
function inbandError(data: string, dialect: 'openai' | 'anthropic'): { status: number; error: unknown } {
  let parsed: { error?: { type?: string; code?: string }; type?: string; code?: string; message?: string; param?: unknown }
  try {
    parsed = JSON.parse(data)
  } catch {
    return errorBody(dialect, new GatewayError('upstream', 'The stream failed.'))
  }
  if (parsed.error && typeof parsed.error === 'object') {
    const t = parsed.error.type ?? parsed.error.code ?? ''
    return { status: STATUS_OF_TYPE[t] ?? 500, error: parsed }
  }
  // The Responses API's `error` event: {code, message, param}; given the OpenAI envelope for the frame.
  const code = parsed.code ?? null
  const status = STATUS_OF_TYPE[code ?? ''] ?? 500
  return { status, error: { error: { message: parsed.message ?? 'The stream failed.', type: status === 500 ? 'server_error' : (code ?? 'server_error'), param: parsed.param ?? null, code } } }
}
