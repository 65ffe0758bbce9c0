/** The extension's settings (contributed in bridge/package.json under `lmGateway.bridge`). */
import type { HostApi } from './vscode-api.js'

export const SETTINGS_SECTION = 'lmGateway.bridge'
export const DEFAULT_PORT = 3775
export const DEFAULT_HOST = '127.0.0.1'

export interface BridgeSettings {
  port: number
  host: string
  /** Empty: reverse mode off. */
  reverseUrl: string
}

export function readSettings(api: HostApi): BridgeSettings {
  const config = api.workspace.getConfiguration(SETTINGS_SECTION)
  const port = config.get<number>('port', DEFAULT_PORT)
  const host = config.get<string>('host', DEFAULT_HOST).trim()
  return {
    // 0 picks a free port: useful in tests, harmless otherwise.
    port: Number.isInteger(port) && port >= 0 && port <= 65535 ? port : DEFAULT_PORT,
    host: host === '' ? DEFAULT_HOST : host,
    reverseUrl: config.get<string>('reverseUrl', '').trim(),
  }
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h)
}
