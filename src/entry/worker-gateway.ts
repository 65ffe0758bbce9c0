import { createGateway, type Gateway } from '../app.js'
import { loadConfig } from '../config.js'
import { isDurableObjectNamespace } from '../pipeline/durable-object-limit-store.js'
import { isReverseCapable } from '../providers/vscode-bridge/index.js'
import { workerWebSocketUpgrade } from './worker-ws.js'

/** The Worker's env: config, assets, KV namespaces and Durable Object namespaces (wrangler.toml). */
export interface WorkerEnv {
  /** The whole gateway.config.json as a JSON string (a var or a secret). */
  GATEWAY_CONFIG_JSON?: string
  ASSETS?: { fetch(req: Request | string): Promise<Response> }
  /** Durable Object namespace holding reverse-mode bridge sockets, one object per vscode-bridge provider. */
  BRIDGE_RELAY?: unknown
  /** Durable Object namespace holding WebSocket API sockets, one object per API key (src/entry/worker-ws-sessions.ts). */
  WS_SESSIONS?: unknown
  [key: string]: unknown
}

function envStrings(env: WorkerEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v
  return out
}

/**
 * A gateway built from the Worker's bindings: by the worker entry (one per
 * isolate) and by each WsSessions object (its own, so that the sockets'
 * work belongs to the object).
 */
export async function buildWorkerGateway(env: WorkerEnv): Promise<Gateway> {
  const sessions = env.WS_SESSIONS
  const g = await createGateway(loadConfig(env.GATEWAY_CONFIG_JSON ? JSON.parse(env.GATEWAY_CONFIG_JSON) : undefined, envStrings(env)), {
    bindings: env,
    backgroundJobs: false,
    webSocket: workerWebSocketUpgrade(isDurableObjectNamespace(sessions) ? sessions : undefined),
    assets: env.ASSETS ? async (path) => {
      const res = await env.ASSETS!.fetch(new URL(`/${path}`, 'https://assets.local').toString())
      return res.ok ? res : null
    } : undefined,
  })
  // Bridge sockets live in the relay objects: every isolate's calls go there.
  const relay = env.BRIDGE_RELAY
  if (isDurableObjectNamespace(relay)) {
    for (const p of g.providers) {
      if (!isReverseCapable(p)) continue
      const id = relay.idFromName(p.id)
      p.reverse.hub.relay = () => relay.get(id)
    }
  }
  return g
}
