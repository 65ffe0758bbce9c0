import type { RouteConfig } from '@hono/zod-openapi'
import type { Handler } from 'hono'
import type { AppEnv, GatewayApp } from './env.js'

/**
 * Registers a route's OpenAPI definition and mounts its handler. The handler
 * reads and validates its own body (see body.ts) so that every failure is
 * answered in the dialect's error shape, and JSON is parsed exactly once.
 */
export function defineRoute(app: GatewayApp, config: RouteConfig & { honoPath?: string }, handler: Handler<AppEnv>): void {
  const { honoPath, ...route } = config
  app.openAPIRegistry.registerPath(route)
  app.on(route.method.toUpperCase(), honoPath ?? route.path.replace(/\{([^}]+)\}/g, ':$1'), handler)
}

export function jsonContent<T>(schema: T, description: string) {
  return { content: { 'application/json': { schema } }, description }
}
