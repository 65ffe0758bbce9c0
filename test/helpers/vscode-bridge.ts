import { serveFetch, type ServedHandler } from '../../bridge/src/http.js'
import { createBridgeApp, type BridgeApp } from '../../bridge/src/server.js'
import { createFakeVscode, type FakeVscode, type FakeVscodeOptions } from '../fakes/vscode.js'

export interface RunningBridge {
  vscode: FakeVscode
  app: BridgeApp
  served: ServedHandler
  url: string
  /** The token the bridge accepts from now on (VS Code regenerated it, or a test breaks auth). */
  token: string
  close(): Promise<void>
}

/**
 * The real bridge extension's HTTP server (bridge/src) on a loopback port,
 * running against the fake `vscode` module: what the gateway talks to in tests.
 */
export async function startBridge(token: string, options: FakeVscodeOptions = {}): Promise<RunningBridge> {
  const vscode = createFakeVscode(options)
  const state = { token }
  const app = createBridgeApp(vscode, { getToken: () => state.token })
  const served = await serveFetch(app.fetch, { port: 0, host: '127.0.0.1' })
  return {
    vscode,
    app,
    served,
    url: served.url,
    get token() {
      return state.token
    },
    set token(value: string) {
      state.token = value
    },
    async close() {
      await served.close()
      app.dispose()
    },
  }
}
