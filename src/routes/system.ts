import { Scalar } from '@scalar/hono-api-reference'
import { z } from '@hono/zod-openapi'
import type { BreakerStatus } from '../pipeline/breaker.js'
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
  /** Circuit-breaker states of routing targets. */
  breakers?: () => BreakerStatus[]
}

const Health = z
  .object({
    status: z.enum(['ok', 'degraded']),
    version: z.string(),
    uptime_s: z.number(),
    providers: z.array(z.object({ id: z.string(), type: z.string(), ok: z.boolean(), detail: z.string().optional(), latency_ms: z.number() })),
    breakers: z
      .array(
        z.object({
          target: z.string().openapi({ example: 'openai/gpt-4o' }),
          state: z.enum(['closed', 'open', 'half_open']),
          consecutive_failures: z.number().int(),
          retry_in_ms: z.number().int().optional().openapi({ description: 'Until an open circuit lets a probe through.' }),
        }),
      )
      .openapi({ description: 'Circuit breakers of the routing targets used so far; an open one makes the status degraded.' }),
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
      const breakers = (deps.breakers?.() ?? []).map((b) => ({ target: b.target, state: b.state, consecutive_failures: b.consecutiveFailures, ...(b.retryInMs !== undefined ? { retry_in_ms: Math.ceil(b.retryInMs) } : {}) }))
      const status = providers.every((p) => p.ok) && breakers.every((b) => b.state !== 'open') ? 'ok' : 'degraded'
      return c.json({ status, version: deps.version, uptime_s: Math.round((Date.now() - started) / 1000), providers, breakers })
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
