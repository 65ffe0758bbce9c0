import type { Context } from 'hono'
import { z } from '@hono/zod-openapi'
import type { Analytics, AnalyticsQueryInput } from '../analytics/index.js'
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from '../analytics/metrics.js'
import { AnalyticsDeleted, AnalyticsQuery, AnalyticsSummary, AnalyticsTimeseries } from '../analytics/schemas.js'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import { GatewayError } from '../errors.js'
import { validate } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { AppEnv, GatewayApp } from './env.js'

export interface AnalyticsRouteDeps {
  /** Undefined when analytics are disabled: the routes answer a clear error. */
  analytics?: Analytics
  /** Undefined when /metrics is disabled. */
  metrics?: MetricsRegistry
  dashboard: boolean
  assets?: (path: string) => Promise<Response | null>
}

/** The dashboard's files: public URL → bundled asset and its type. */
export const DASHBOARD_ASSETS: Record<string, { path: string; type: string }> = {
  '/dashboard': { path: 'dashboard/index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { path: 'dashboard/app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { path: 'dashboard/app.css', type: 'text/css; charset=utf-8' },
  '/dashboard/uplot.js': { path: 'uplot/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/uplot.css': { path: 'uplot/uPlot.min.css', type: 'text/css; charset=utf-8' },
}

/**
 * The page holds an admin key in sessionStorage, so it runs nothing but its
 * own files and talks to nothing but this origin.
 */
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
}

const errors = {
  400: jsonContent(ErrorResponse, 'Invalid query'),
  401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
  403: jsonContent(ErrorResponse, 'Not an admin key'),
  404: jsonContent(ErrorResponse, 'Analytics are disabled'),
}

const security = [{ bearerAuth: [] }]

function requireAdmin(c: Context<AppEnv>): void {
  if (!c.get('isAdmin')) throw new GatewayError('permission', 'This needs an admin key (server.adminKeys).', { code: 'admin_required' })
}

function enabled(analytics: Analytics | undefined): Analytics {
  if (!analytics) throw new GatewayError('not_found', 'Analytics are disabled on this gateway: set "analytics": {"enabled": true} in gateway.config.json.', { code: 'analytics_disabled' })
  return analytics
}

function parseTime(value: string | undefined, param: string): number | undefined {
  if (value === undefined || value === '') return undefined
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
  if (!Number.isFinite(n)) throw new GatewayError('invalid_request', `Invalid value for '${param}': expected an ISO 8601 date or epoch milliseconds, got "${value.slice(0, 40)}".`, { param, code: 'invalid_value' })
  return n
}

function readQuery(c: Context<AppEnv>): AnalyticsQueryInput {
  const q = validate(AnalyticsQuery, c.req.query())
  return { range: q.range, from: parseTime(q.from, 'from'), to: parseTime(q.to, 'to'), granularity: q.granularity, groupBy: q.group_by }
}

export function analyticsRoutes(app: GatewayApp, deps: AnalyticsRouteDeps): void {
  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/analytics/summary',
      operationId: 'analyticsSummary',
      tags: ['Analytics'],
      summary: 'Totals over a window (requests, tokens, latency p50/p95, errors, estimated cost), optionally broken down by model, provider, key or endpoint. Admin key.',
      security,
      request: { query: AnalyticsQuery },
      responses: { 200: jsonContent(AnalyticsSummary, 'The summary'), ...errors },
    },
    async (c) => {
      requireAdmin(c)
      const analytics = enabled(deps.analytics)
      return c.json(await analytics.summary(readQuery(c)), 200, { 'cache-control': 'no-store' })
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/analytics/timeseries',
      operationId: 'analyticsTimeseries',
      tags: ['Analytics'],
      summary: 'The same numbers per time bucket, as column arrays, optionally one set per group. Admin key.',
      security,
      request: { query: AnalyticsQuery },
      responses: { 200: jsonContent(AnalyticsTimeseries, 'The time series'), ...errors },
    },
    async (c) => {
      requireAdmin(c)
      const analytics = enabled(deps.analytics)
      return c.json(await analytics.timeseries(readQuery(c)), 200, { 'cache-control': 'no-store' })
    },
  )

  defineRoute(
    app,
    {
      method: 'delete',
      path: '/v1/analytics',
      operationId: 'deleteAnalytics',
      tags: ['Analytics'],
      summary: 'Deletes all collected analytics data. Admin key.',
      security,
      responses: { 200: jsonContent(AnalyticsDeleted, 'Everything was deleted'), 401: errors[401], 403: errors[403], 404: errors[404] },
    },
    async (c) => {
      requireAdmin(c)
      const documents = await enabled(deps.analytics).wipe()
      return c.json({ deleted: true as const, documents })
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      tags: ['System'],
      summary: 'Prometheus metrics (text format 0.0.4): requests, latency histograms, tokens, errors, queue depth, cache lookups, breaker states. Admin key.',
      security,
      responses: {
        200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } },
        401: errors[401],
        403: errors[403],
        404: jsonContent(ErrorResponse, 'Metrics are disabled'),
      },
    },
    async (c) => {
      requireAdmin(c)
      if (!deps.metrics) throw new GatewayError('not_found', 'Metrics are disabled on this gateway (analytics.metrics: false).', { code: 'metrics_disabled' })
      return c.body(deps.metrics.render(), 200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' })
    },
  )

  // The page and its files carry no data: they are public, and every API call they make needs the admin key.
  for (const [url, asset] of Object.entries(DASHBOARD_ASSETS)) {
    app.get(url, async (c) => {
      if (!deps.analytics || !deps.dashboard) {
        return c.text('The analytics dashboard is disabled on this gateway: set "analytics": {"enabled": true} in gateway.config.json.', 404)
      }
      const res = await deps.assets?.(asset.path)
      if (!res) return c.text(`The dashboard asset ${asset.path} is not bundled in this deployment.`, 404)
      const headers: Record<string, string> = { 'content-type': asset.type, 'cache-control': url === '/dashboard' ? 'no-store' : 'public, max-age=300', 'x-content-type-options': 'nosniff' }
      return new Response(res.body, { status: 200, headers: url === '/dashboard' ? { ...headers, ...PAGE_HEADERS } : headers })
    })
  }
}
