import { Scalar } from '@scalar/hono-api-reference'
import { z } from '@hono/zod-openapi'
import type { Provider } from '../providers/types.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

export interface SystemRouteDeps {
  providers: Provider[]
  version: string
  /** Serves bundled static files (the docs UI); null when absent. */
  assets?: (path: string) => Promise<Response | null>
  /** The OpenAPI document, built once on first use. */
  openapi: () => unknown
}

const Health = z
  .object({
    status: z.enum(['ok', 'degraded']),
    version: z.string(),
    uptime_s: z.number(),
    providers: z.array(z.object({ id: z.string(), type: z.string(), ok: z.boolean(), detail: z.string().optional(), latency_ms: z.number() })),
  })
  .openapi('Health')

export function systemRoutes(app: GatewayApp, deps: SystemRouteDeps): void {
  const started = Date.now()

  defineRoute(
    app,
    {
      method: 'get',
      path: '/health',
      operationId: 'health',
      tags: ['System'],
      summary: "Liveness and each provider's reachability (no secrets)",
      responses: { 200: jsonContent(Health, 'Gateway health') },
    },
    async (c) => {
      const providers = await Promise.all(
        deps.providers.map(async (p) => {
          const t0 = performance.now()
          const signal = AbortSignal.timeout(3000)
          const h = p.health ? await p.health(signal).catch((e: Error) => ({ ok: false, detail: e.message })) : { ok: true }
          return { id: p.id, type: p.type, ok: h.ok, ...('detail' in h && h.detail ? { detail: h.detail } : {}), latency_ms: Math.round(performance.now() - t0) }
        }),
      )
      const status = providers.every((p) => p.ok) ? 'ok' : 'degraded'
      return c.json({ status, version: deps.version, uptime_s: Math.round((Date.now() - started) / 1000), providers })
    },
  )

  app.get('/openapi.json', (c) => c.json(deps.openapi() as object))

  app.get(
    '/docs',
    Scalar({
      url: '/openapi.json',
      cdn: '/scalar/standalone.js',
      withDefaultFonts: false,
      pageTitle: 'vscode-lm-gateway API',
      agent: { disabled: true },
    } as never),
  )

  app.get('/scalar/standalone.js', async (c) => {
    const res = await deps.assets?.('scalar/standalone.js')
    return res ?? c.text('The docs UI asset is not bundled in this deployment.', 404)
  })

  // Claude Code probes the base URL with HEAD / before its first request.
  app.on(['GET', 'HEAD'], '/', (c) => c.json({ name: 'vscode-lm-gateway', version: deps.version, docs: '/docs', openapi: '/openapi.json' }))
}
