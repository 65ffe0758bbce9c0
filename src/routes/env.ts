import type { OpenAPIHono } from '@hono/zod-openapi'
import type { StreamingRuntime } from '../streaming/runtime.js'

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
    /** Stream settings, resume buffer and compressor (src/streaming/runtime.ts). */
    streaming: StreamingRuntime
    /** Length of a JSON answer's text, where the handler knows it: lets compression skip small answers without reading them back. */
    jsonLength: number
  }
}

export type GatewayApp = OpenAPIHono<AppEnv>
