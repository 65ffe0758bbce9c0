import { constantTimeEqual } from '../middleware/auth.js'
import { isReverseCapable, type ReverseEndpoint } from '../providers/vscode-bridge/index.js'
import type { BridgeHub, BridgeSocket, ReverseChannel } from '../providers/vscode-bridge/reverse.js'
import type { Provider } from '../providers/types.js'

export const BRIDGE_CONNECT_PATH = '/bridge/connect'

/**
 * GET /bridge/connect, runtime-neutral: which provider a dialling bridge
 * belongs to (by its bridge token, compared in constant time against every
 * vscode-bridge provider), and attaching its socket. The entries do the
 * upgrade itself (ws on Node; Bun.serve and Workers can reuse this).
 */
export interface BridgeConnector {
  /** Whether any provider accepts reverse connections. */
  readonly enabled: boolean
  /** The hub for a presented token, or undefined (answer 401). */
  authenticate(authorization: string | null | undefined): BridgeHub | undefined
  /** The socket is open: multiplex over it. Feed frames to `receive`, report close to `closed`. */
  attach(hub: BridgeHub, socket: BridgeSocket): ReverseChannel
  closeAll(): void
}

const encoder = new TextEncoder()

export function bridgeConnector(providers: Provider[], onChange?: (provider: string) => void): BridgeConnector {
  const endpoints: Array<{ endpoint: ReverseEndpoint; bytes: Uint8Array }> = []
  for (const p of providers) {
    if (!isReverseCapable(p)) continue
    endpoints.push({ endpoint: p.reverse, bytes: encoder.encode(p.reverse.token) })
    if (onChange) p.reverse.hub.onChange(() => onChange(p.id))
  }
  return {
    enabled: endpoints.length > 0,
    authenticate(authorization) {
      const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null
      if (!m) return undefined
      const presented = encoder.encode(m[1])
      let found: BridgeHub | undefined
      // Every token is compared, with no early exit.
      for (const e of endpoints) if (constantTimeEqual(presented, e.bytes) && !found) found = e.endpoint.hub
      return found
    },
    attach: (hub, socket) => hub.attach(socket),
    closeAll() {
      for (const e of endpoints) e.endpoint.hub.closeAll()
    },
  }
}
