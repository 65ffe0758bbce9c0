import { createGateway, type Gateway } from '../app.js'
import { loadConfig } from '../config.js'
import { workerWebSocketUpgrade } from './worker-ws.js'

interface Env {
  /** The whole gateway.config.json as a JSON string (a var or a secret). */
  GATEWAY_CONFIG_JSON?: string
  ASSETS?: { fetch(req: Request | string): Promise<Response> }
  [key: string]: unknown
}

let gateway: Promise<Gateway> | undefined

function envStrings(env: Env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v
  return out
}

/** One gateway per isolate, built on first request from the Worker's bindings. */
export default {
  async fetch(request: Request, env: Env, ctx: unknown): Promise<Response> {
    gateway ??= createGateway(loadConfig(env.GATEWAY_CONFIG_JSON ? JSON.parse(env.GATEWAY_CONFIG_JSON) : undefined, envStrings(env)), {
      bindings: env,
      webSocket: workerWebSocketUpgrade,
      assets: env.ASSETS ? async (path) => {
        const res = await env.ASSETS!.fetch(new URL(`/${path}`, 'https://assets.local').toString())
        return res.ok ? res : null
      } : undefined,
    })
    return (await gateway).fetch(request, env, ctx)
  },
}
