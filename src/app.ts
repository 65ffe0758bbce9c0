import { BatchRunner } from './jobs/batches.js'
import { createDispatch } from './jobs/dispatch.js'
import { FileStore } from './jobs/files.js'
import { syncBatchRoutes } from './routes/batch.js'
import { batchRoutes } from './routes/batches.js'
import { fileRoutes } from './routes/files.js'
import { parseFineTuningConfig } from './jobs/fine-tuning/config.js'
import { fineTuningUpstream, type FineTuningUpstream } from './jobs/fine-tuning/pass-through.js'
import { FineTuneRunner } from './jobs/fine-tuning/runner.js'
import { validateFineTuneFile } from './jobs/fine-tuning/training-file.js'
import { AdapterStore } from './pipeline/adapter-store.js'
import { adapterStage, type Embed } from './pipeline/adapters.js'
import { fineTuningRoutes } from './routes/fine-tuning.js'
import { ConfigError } from './config.js'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { cors } from 'hono/cors'
import type { GatewayConfig } from './config.js'
import { GatewayError } from './errors.js'
import { createLogger, type Logger } from './logger.js'
import { createAnalytics, type Analytics } from './analytics/index.js'
import { parseAnalyticsConfig } from './analytics/config.js'
import { BREAKER_STATE, gatewayMetrics, MetricsRegistry, type GatewayMetrics } from './analytics/metrics.js'
import { recordMetrics } from './analytics/metrics-sink.js'
import { auth, keyId } from './middleware/auth.js'
import { clientIp } from './middleware/client-ip.js'
import { usageMiddleware, type UsageSink } from './middleware/usage.js'
import { requestId } from './middleware/request-id.js'
import { compression } from './middleware/compress.js'
import { createStreaming, type StreamingRuntime } from './streaming/runtime.js'
import type { Compressor } from './streaming/compress.js'
import { streamRoutes } from './routes/streams.js'
import { cacheStage, parseCacheConfig } from './pipeline/cache.js'
import { modelNameResolver } from './pipeline/model-names.js'
import { ModelCatalog, Router } from './pipeline/router.js'
import { RequestQueue, withPriority } from './pipeline/queue.js'
import { keyRateLimit, RateLimiter } from './pipeline/rate-limit.js'
import { gateTarget } from './pipeline/target-gate.js'
import { mediaStage, mediaTarget, parseMediaConfig } from './pipeline/media.js'
import type { ResolveHost } from './providers/shared/inline-media.js'
import { usageTap } from './pipeline/usage.js'
import { createProviders } from './providers/registry.js'
import { fetchClient, type HttpClient } from './providers/shared/http.js'
import type { Provider } from './providers/types.js'
import type { AppEnv, GatewayApp } from './routes/env.js'
import { analyticsRoutes, DASHBOARD_ASSETS } from './routes/analytics.js'
import { cacheRoutes } from './routes/cache.js'
import { errorResponse } from './routes/errors.js'
import { embeddingRoutes } from './routes/embeddings.js'
import { anthropicRoutes } from './routes/anthropic.js'
import { openAIRoutes } from './routes/openai.js'
import { queueRoutes } from './routes/queue.js'
import { responsesRoutes } from './routes/responses.js'
import { systemRoutes } from './routes/system.js'
import { openStorage, type GatewayStorage } from './storage/index.js'
import { BRIDGE_CONNECT_PATH, bridgeConnector, type BridgeConnector } from './ws/bridge-connect.js'
import { wsRoutes } from './routes/ws.js'
import { NoticeHub } from './ws/notices.js'
import { parseWebSocketConfig } from './ws/options.js'
import { WS_PATH } from './ws/protocol.js'
import { WsServer } from './ws/server.js'
import type { WebSocketUpgrade } from './ws/upgrade.js'

export const VERSION = '0.1.0'

export interface GatewayDeps {
  /** Clock of rate limits, queue and circuit breakers (ms); tests drive it. */
  now?: () => number
  /** Upstream HTTP client; defaults to the runtime's fetch. */
  http?: HttpClient
  /** Run background jobs (batches, fine-tuning) in this process as they are created, and resume unfinished ones at start (default); Workers run them from a Cron Trigger instead. */
  backgroundJobs?: boolean
  /** The connection's peer address, from the runtime (for the IP allowlist). */
  remoteAddress?: (c: Context) => string | undefined
  logger?: Logger
  /** Bundled static files (docs UI). */
  assets?: (path: string) => Promise<Response | null>
  /** Extra providers (tests, embedders) added after the configured ones. */
  providers?: Provider[]
  /** The runtime's response compressor (Node, Bun: zlib); none on Workers, where the platform compresses. */
  compressor?: Compressor
  /** The Worker's env: KV namespaces for `cloudflare-kv-binding` storage mounts. */
  bindings?: Record<string, unknown>
  /** The runtime's WebSocket handshake for GET /v1/ws (src/entry/*-ws.ts); without it the route answers 426. */
  webSocket?: WebSocketUpgrade
  /** Resolves DNS names for the media fetcher's SSRF guard (node:dns on Node and Bun; none on Workers). */
  resolveHost?: ResolveHost
  /** The client for linked media; defaults to `http` (Node's entry passes one whose connections re-check the address). */
  mediaHttp?: HttpClient
}

export interface Gateway {
  files: FileStore
  batches: BatchRunner
  /** Fine-tuning jobs: in-context adapters and pass-through (src/jobs/fine-tuning/). */
  fineTunes: FineTuneRunner
  app: GatewayApp
  fetch: (request: Request, env?: unknown, ctx?: unknown) => Response | Promise<Response>
  router: Router
  providers: Provider[]
  /** The storage mounts (cache, analytics, files, jobs, streams); see src/storage/index.ts. */
  storage: GatewayStorage
  config: GatewayConfig
  logger: Logger
  /** Stream settings, the resume buffer (streams: mount) and the compressor. */
  streaming: StreamingRuntime
  /** Prometheus instruments stages report into (queue depth, cache lookups …); served at /metrics. */
  metrics: GatewayMetrics
  /** Usage analytics, when `analytics.enabled`. */
  analytics?: Analytics
  /** Bridges dialling in (reverse mode, GET /bridge/connect); the entry does the WebSocket upgrade. */
  bridges: BridgeConnector
  /** Open sockets of the WebSocket API (GET /v1/ws); undefined when `websocket.enabled` is false. */
  webSockets: WsServer | undefined
  openapi(): unknown
  close(): Promise<void>
}

// GET /v1/ws checks the key itself after auth ran: a bad key is a 4401 close, not an HTTP 401.
const PUBLIC = new Set(['/health', '/openapi.json', '/docs', '/scalar/standalone.js', '/', BRIDGE_CONNECT_PATH, WS_PATH, ...Object.keys(DASHBOARD_ASSETS)])

/** The composition root: config → providers → pipeline → routes. The one place that shows the whole flow. */
export async function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const logger = deps.logger ?? createLogger(config.server.logLevel)
  const http = deps.http ?? fetchClient()
  const providers = [...createProviders(config.providers, { http }), ...(deps.providers ?? [])]
  const now = deps.now ?? Date.now
  // Per-target limits and the queue sit below the router, where the resolved provider/model is known.
  const limiter = await RateLimiter.create(config.limits, { now, keyId, logger, bindings: deps.bindings })
  const queue = await RequestQueue.create(config.queue, { now, keyId })
  // A bridge connecting, leaving or reporting new models makes the model list stale.
  let notices: NoticeHub | undefined
  const bridges = bridgeConnector(providers, (provider) => {
    catalog.invalidate()
    notices?.modelsChanged(provider)
  })
  const media = parseMediaConfig(config.media, config.server.allowRemoteMedia)
  const catalog = new ModelCatalog(providers.map((p) => gateTarget(mediaTarget(p, media), limiter, queue)))
  const router = new Router({ catalog, aliases: config.models, modelMap: config.modelMap, routing: config.routing, now, nearest: modelNameResolver(config.compat.modelNames, (signal) => catalog.list(signal)), media: media.conversions })
  const storage = await openStorage(config.storage, { bindings: deps.bindings, logger })
  const files = new FileStore(storage.mount('files'))
  // Fine-tuned `ft:` models run on their base model with their in-context adapter applied, in every dialect.
  const fineTuning = parseFineTuningConfig(config.fineTuning)
  const embed: Embed = async (model, input, ctx) => (await router.embed({ model, input }, ctx)).embeddings
  const adapterStore = new AdapterStore(storage.mount('jobs'))
  await adapterStore.load()
  const adapters = adapterStage(router, { store: adapterStore, embed, logger })
  // API-key limits and the request's priority are settled once per client request, above routing.
  // Media (file_id references, allowed links, sizes, types) is settled once per request, above routing, after the key's limits.
  const withMedia = mediaStage(adapters, { config: media, remote: { http: deps.mediaHttp ?? http, resolveHost: deps.resolveHost }, files: async (id, key) => {
      const f = await files.base64(id, key)
      return { data: f.data, filename: f.file.filename }
    },
  })
  const admitted = keyRateLimit(withPriority(withMedia, queue), limiter)
  const streaming = createStreaming(config.streaming, { storage: storage.mount('streams'), compressor: deps.compressor, logger })
  // Pipeline stages (cache, limits, queue, usage) wrap the router here, outermost first.
  const cacheConfig = parseCacheConfig(config.cache)
  const cache = cacheConfig.enabled ? cacheStage(admitted, { config: cacheConfig, store: storage.mount('cache'), logger, now }) : undefined
  const pipeline: Provider = usageTap(cache ?? admitted)

  // Usage: every API request becomes one record (counts and timings, never content) for /metrics and, opted in, the analytics rollups.
  const analyticsConfig = parseAnalyticsConfig(config.analytics)
  const metrics = gatewayMetrics(new MetricsRegistry())
  metrics.registry.onCollect(() => {
    for (const b of router.breakerStates()) metrics.breakerState.set({ target: b.target }, BREAKER_STATE[b.state])
    for (const [provider, waiting] of queue.depthByProvider()) metrics.queueDepth.set({ provider }, waiting)
  })
  const analytics = analyticsConfig.enabled
    ? createAnalytics({
        config: analyticsConfig,
        storage: storage.mount('analytics'),
        storageDescription: storage.describe.analytics,
        logger,
        premiumProviders: config.providers.filter((p) => p.type === 'vscode-bridge').map((p) => p.id),
        onWriteFailure: () => metrics.analyticsDropped.inc(),
      })
    : undefined
  const sinks: UsageSink[] = [(r, meta) => recordMetrics(metrics, r, meta)]
  if (analytics) sinks.push((r) => analytics.record(r))

  const app: GatewayApp = new OpenAPIHono<AppEnv>()
  app.onError((err, c) => errorResponse(c, err, logger))
  app.notFound((c) => errorResponse(c, new GatewayError('not_found', `Unknown route: ${c.req.method} ${c.req.path}`, { code: 'unknown_route' }), logger))

  app.use('*', requestId())
  const compress = streaming.compressor ? compression({ compressor: streaming.compressor, minBytes: streaming.config.compression.minBytes }) : undefined
  app.use('*', (c, next) => {
    c.set('streaming', streaming)
    return compress ? compress(c, next) : next()
  })
  const ipGate = clientIp({ trustedProxies: config.server.trustedProxies, ipAllow: config.server.ipAllow, remoteAddress: deps.remoteAddress })
  if (ipGate) app.use('*', ipGate)
  if (config.server.cors.origins.length) {
    const origins = config.server.cors.origins
    app.use('*', cors({ origin: origins.includes('*') ? '*' : origins, exposeHeaders: ['x-request-id', 'request-id', 'x-gateway-model', 'x-gateway-cache', 'x-gateway-conversions', 'server-timing'], maxAge: 600 }))
  }
  app.use('*', usageMiddleware({ track: (path) => path.startsWith('/v1/') && !path.startsWith('/v1/analytics') && path !== WS_PATH, sinks, onStart: () => metrics.inflight.inc() }))
  app.use(
    '*',
    await auth({
      keys: config.server.apiKeys,
      adminKeys: config.server.adminKeys,
      isPublic: (method, path) => PUBLIC.has(path) || (method === 'HEAD' && path === '/'),
    }),
  )

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'A gateway API key (also accepted as x-api-key).' })

  let openapiDoc: unknown
  const openapi = () =>
    (openapiDoc ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'vscode-lm-gateway',
        version: VERSION,
        description: 'OpenAI- and Anthropic-compatible gateway to VS Code language models and other backends.',
        license: { name: 'MIT' },
      },
      servers: [{ url: 'http://127.0.0.1:4000', description: 'Local gateway' }],
    }))

  app.get(BRIDGE_CONNECT_PATH, () => {
    throw new GatewayError('invalid_request', 'GET /bridge/connect is the VS Code bridge\'s reverse-mode WebSocket: it needs an Upgrade: websocket request, which this runtime or proxy did not pass on.', { status: 426, code: 'upgrade_required' })
  })
  systemRoutes(app, { providers, version: VERSION, assets: deps.assets, openapi, breakers: () => router.breakerStates() })
  queueRoutes(app, { queue })
  streamRoutes(app)
  analyticsRoutes(app, { analytics, metrics: analyticsConfig.metrics ? metrics.registry : undefined, dashboard: analyticsConfig.dashboard, assets: deps.assets })
  openAIRoutes(app, { pipeline, router, bodyLimit: config.server.bodyLimit, allowRemoteMedia: media.remote.enabled, ownModels: (key) => adapters.modelsFor(key) })
  embeddingRoutes(app, { pipeline, bodyLimit: config.server.bodyLimit })
  cacheRoutes(app, { cache })
  anthropicRoutes(app, { pipeline, router, bodyLimit: config.server.bodyLimit, allowRemoteMedia: media.remote.enabled, repairToolPairs: config.compat.repairToolPairs, expand: adapters.expand })
  responsesRoutes(app, { pipeline, bodyLimit: config.server.bodyLimit, allowRemoteMedia: media.remote.enabled, repairToolPairs: config.compat.repairToolPairs })

  // Batch work re-enters the gateway's own fetch handler, so every item takes the full pipeline.
  const dispatch = createDispatch((request, env) => app.fetch(request, env))
  const batches = new BatchRunner({
    jobs: storage.mount('jobs'),
    files,
    dispatch,
    concurrency: config.batch.concurrency,
    leaseSec: config.batch.leaseSec,
    logger,
    startOnCreate: deps.backgroundJobs !== false,
    sweep: deps.backgroundJobs !== false,
  })
  syncBatchRoutes(app, { dispatch, bodyLimit: config.server.bodyLimit, maxItems: config.batch.maxItems })
  fileRoutes(app, { files, maxBytes: config.files.maxBytes, validateFineTune: validateFineTuneFile })
  batchRoutes(app, { runner: batches, bodyLimit: config.server.bodyLimit })
  const upstreams = new Map<string, FineTuningUpstream>()
  for (const id of fineTuning.passThrough) {
    const p = config.providers.find((x) => x.id === id)
    if (!p) throw new ConfigError(`invalid gateway config:\n  - fineTuning.passThrough: no provider has the id "${id}"`)
    upstreams.set(id, fineTuningUpstream(p, http))
  }
  const fineTunes = new FineTuneRunner({
    jobs: storage.mount('jobs'),
    files,
    adapters: adapterStore,
    dispatch,
    resolveTarget: async (model, signal) => {
      const [t] = await router.resolve(model, signal)
      return { provider: t.provider.id, model: t.model }
    },
    embed: fineTuning.embeddingModel ? embed : undefined,
    config: fineTuning,
    upstreams,
    logger,
    startOnCreate: deps.backgroundJobs !== false,
    sweep: deps.backgroundJobs !== false,
  })
  fineTuningRoutes(app, { runner: fineTunes, files, bodyLimit: config.server.bodyLimit })
  // WebSocket request frames re-enter the same fetch handler, as batch items do: one pipeline for every transport.
  const wsConfig = parseWebSocketConfig(config.websocket, config.server.bodyLimit)
  if (wsConfig.enabled && wsConfig.notices.enabled) {
    notices = new NoticeHub(
      { models: async () => (await router.models()).map((m) => m.id), health: () => router.breakerStates() },
      { healthPollMs: wsConfig.notices.healthPollMs, modelsPollMs: wsConfig.notices.modelsPollSec * 1000, logger },
    )
  }
  const webSockets = wsConfig.enabled ? new WsServer({ config: wsConfig, fetch: (request, env) => app.fetch(request, env), notices, logger }) : undefined
  wsRoutes(app, { server: webSockets, upgrade: deps.webSocket })

  const resumed = deps.backgroundJobs === false ? 0 : await batches.resume()
  if (resumed) logger.info('resuming unfinished batches', { count: resumed })
  const resumedJobs = deps.backgroundJobs === false ? 0 : await fineTunes.resume()
  if (resumedJobs) logger.info('resuming unfinished fine-tuning jobs', { count: resumedJobs })

  return {
    app,
    fetch: (request, env, ctx) => app.fetch(request, env, ctx as never),
    router,
    providers,
    storage,
    streaming,
    metrics,
    analytics,
    config,
    logger,
    openapi,
    bridges,
    webSockets,
    files,
    batches,
    fineTunes,
    async close() {
      await batches.close()
      await fineTunes.close()
      bridges.closeAll()
      webSockets?.closeAll()
      await analytics?.close().catch((err: Error) => logger.warn('analytics flush on close failed', { error: err.message }))
      await storage.close()
      await limiter.close()
    },
  }
}
