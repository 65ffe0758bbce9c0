/**
 * Protocol v1 as one fetch handler (itty-router). It knows nothing about
 * sockets: http.ts serves it on a port, reverse.ts over a WebSocket.
 */
import { Router, type IRequest } from 'itty-router'
import { bearerToken, tokenMatches } from './auth.js'
import { streamChat } from './chat.js'
import { countTokens } from './count-tokens.js'
import { computeEmbeddings, embeddingsSupported, embeddingsUnsupported } from './embeddings.js'
import { BridgeError, errorResponse, jsonResponse, toBridgeError } from './errors.js'
import { InflightCounter } from './inflight.js'
import { describeModel, ModelCatalog } from './models.js'
import { PROTOCOL_VERSION, parseChatBody, parseCountTokensBody, parseEmbeddingsBody } from './protocol.js'
import type { LmApi } from './vscode-api.js'

export interface BridgeAppOptions {
  /** Read on every request, so a regenerated token applies without a restart. */
  getToken(): string | undefined
  /** Called with the number of model calls in progress whenever it changes. */
  onInflightChange?(count: number): void
}

export interface BridgeApp {
  fetch(request: Request): Promise<Response>
  readonly catalog: ModelCatalog
  inflight(): number
  dispose(): void
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json()
  } catch {
    throw new BridgeError(400, 'invalid_request', 'The body must be valid JSON')
  }
}

function unauthorized(): Response {
  return jsonResponse(
    401,
    { error: { code: 'unauthorized', message: 'Missing or wrong bearer token (VS Code: "LM Gateway Bridge: Copy token")' } },
    { 'www-authenticate': 'Bearer' },
  )
}

export function createBridgeApp(api: LmApi, options: BridgeAppOptions): BridgeApp {
  const catalog = new ModelCatalog(api)
  const inflight = new InflightCounter(options.onInflightChange)

  /** Runs a short model call (not a stream) inside the in-flight count. */
  async function tracked<T>(work: () => Promise<T>): Promise<T> {
    const release = inflight.acquire()
    try {
      return await work()
    } finally {
      release()
    }
  }

  async function findModel(id: string) {
    try {
      return await catalog.find(id)
    } catch (err) {
      throw toBridgeError(err)
    }
  }

  const router = Router<IRequest, []>({
    before: [
      (request) => (tokenMatches(bearerToken(request.headers.get('authorization')), options.getToken()) ? undefined : unauthorized()),
    ],
    catch: (err) => {
      if (err instanceof BridgeError) return errorResponse(err)
      // Unexpected: report without details, which could echo request content.
      return errorResponse(new BridgeError(500, 'internal_error', 'The bridge failed to handle the request'))
    },
  })

  router.get('/v1/health', () => jsonResponse(200, { ok: true, bridge: PROTOCOL_VERSION, vscode: api.version }))

  router.get('/v1/models', async () => {
    try {
      const models = await catalog.list()
      return jsonResponse(200, { models: models.map(describeModel) })
    } catch (err) {
      throw toBridgeError(err)
    }
  })

  router.post('/v1/chat', async (request) => {
    const body = parseChatBody(await readJson(request))
    const model = await findModel(body.model)
    return streamChat(api, model, body, request.signal, inflight.acquire())
  })

  router.post('/v1/count-tokens', async (request) => {
    const body = parseCountTokensBody(await readJson(request))
    const model = await findModel(body.model)
    const tokens = await tracked(() => countTokens(api, model, body, request.signal))
    return jsonResponse(200, { tokens })
  })

  router.post('/v1/embeddings', async (request) => {
    // Unsupported is the answer whatever the body, so callers can probe cheaply.
    if (!embeddingsSupported(api)) throw embeddingsUnsupported(api)
    const body = parseEmbeddingsBody(await readJson(request))
    const embeddings = await tracked(() => computeEmbeddings(api, body, request.signal))
    return jsonResponse(200, { embeddings })
  })

  router.all('*', () => errorResponse(new BridgeError(404, 'not_found', 'No such route in bridge protocol v1')))

  return {
    fetch: async (request) => (await router.fetch(request)) as Response,
    catalog,
    inflight: () => inflight.value,
    dispose: () => catalog.dispose(),
  }
}
