import type { OpenAPIHono } from '@hono/zod-openapi'

export type Dialect = 'openai' | 'anthropic'

/** Per-request values set by middleware. */
export type AppEnv = {
  Variables: {
    requestId: string
    /** Hash-derived id of the API key used; undefined when the gateway is open. */
    keyId: string | undefined
    isAdmin: boolean
    dialect: Dialect
    /** Request start, for server-timing. */
    startedAt: number
    /** The request's shared ctx.meta (created by the usage middleware; see src/pipeline/usage.ts). */
    meta: Record<string, unknown>
  }
}

export type GatewayApp = OpenAPIHono<AppEnv>
