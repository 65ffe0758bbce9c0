/**
 * The extension's lifecycle: token, settings, HTTP server, reverse socket,
 * status bar and commands. Takes the `vscode` module as a parameter so tests
 * drive it with the fake; extension.ts only wires in the real one.
 */
import { ensureToken } from './auth.js'
import { serveFetch, type ServedHandler } from './http.js'
import { connectReverse, type ReverseConnection, type ReverseSocketConstructor } from './reverse.js'
import { createBridgeApp, type BridgeApp } from './server.js'
import { isLoopback, readSettings, SETTINGS_SECTION } from './settings.js'
import { BridgeStatusBar, type StatusView } from './status-bar.js'
import type { DisposableLike, ExtensionContextLike, HostApi } from './vscode-api.js'

export const COMMANDS = {
  copyToken: 'lmGateway.bridge.copyToken',
  showStatus: 'lmGateway.bridge.showStatus',
  restart: 'lmGateway.bridge.restart',
} as const

export interface ControllerDeps {
  /** A `ws`-compatible client; reverse mode stays off without one. */
  WebSocket?: ReverseSocketConstructor
  /** Operational lines only (addresses, states, error codes), never request content. */
  log?(line: string): void
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export class BridgeController implements DisposableLike {
  private token: string | undefined
  private app: BridgeApp | undefined
  private served: ServedHandler | undefined
  private reverse: ReverseConnection | undefined
  private view: StatusView = { state: 'stopped', inflight: 0 }
  private readonly statusBar: BridgeStatusBar
  private readonly disposables: DisposableLike[] = []
  /** start/stop run one at a time, so a settings change during startup cannot double-bind. */
  private transition: Promise<void> = Promise.resolve()

  constructor(
    private readonly api: HostApi,
    private readonly context: ExtensionContextLike,
    private readonly deps: ControllerDeps = {},
  ) {
    this.statusBar = new BridgeStatusBar(api, COMMANDS.showStatus)
    this.disposables.push(
      api.commands.registerCommand(COMMANDS.copyToken, () => this.copyToken()),
      api.commands.registerCommand(COMMANDS.showStatus, () => this.showStatus()),
      api.commands.registerCommand(COMMANDS.restart, () => this.restartWithNotice()),
      api.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SETTINGS_SECTION)) void this.restart()
      }),
    )
  }

  /** Where the server listens, once started. */
  get address(): { url: string; host: string; port: number } | undefined {
    return this.served && { url: this.served.url, host: this.served.host, port: this.served.port }
  }

  get reverseState(): string | undefined {
    return this.reverse?.state
  }

  start(): Promise<void> {
    return this.serialize(() => this.doStart())
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop())
  }

  restart(): Promise<void> {
    return this.serialize(async () => {
      await this.doStop()
      await this.doStart()
    })
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose()
    void this.stop().finally(() => this.statusBar.dispose())
  }

  private serialize(op: () => Promise<void>): Promise<void> {
    this.transition = this.transition.then(op, op)
    return this.transition
  }

  private render(patch: Partial<StatusView> = {}): void {
    this.view = { ...this.view, ...patch }
    this.statusBar.render(this.view)
  }

  private log(line: string): void {
    this.deps.log?.(line)
  }

  private async ensureToken(): Promise<string> {
    this.token ??= await ensureToken(this.context.secrets)
    return this.token
  }

  private async doStart(): Promise<void> {
    const token = await this.ensureToken()
    const settings = readSettings(this.api)
    this.render({ state: 'starting', detail: undefined })
    if (!isLoopback(settings.host)) {
      void this.api.window.showWarningMessage(
        `LM Gateway Bridge listens on ${settings.host}, which is not a loopback address: anyone who can reach this ` +
          'machine and holds the token can use your VS Code language models. Prefer 127.0.0.1 plus a tunnel or reverse mode.',
      )
    }
    const app = createBridgeApp(this.api, {
      getToken: () => this.token,
      onInflightChange: (inflight) => this.render({ inflight }),
    })
    try {
      this.served = await serveFetch(app.fetch, { port: settings.port, host: settings.host })
    } catch (err) {
      app.dispose()
      const detail = `cannot listen on ${settings.host}:${settings.port} (${errorMessage(err)})`
      this.log(`bridge ${detail}`)
      this.render({ state: 'failed', detail })
      void this.api.window.showWarningMessage(
        `LM Gateway Bridge ${detail}. Change the setting lmGateway.bridge.port, then run "LM Gateway Bridge: Restart".`,
      )
      return
    }
    this.app = app
    this.log(`bridge listening on ${this.served.url}`)
    this.render({ state: 'listening', url: this.served.url, port: this.served.port, reverse: undefined })
    if (settings.reverseUrl) this.startReverse(settings.reverseUrl, token, app)
  }

  private startReverse(url: string, token: string, app: BridgeApp): void {
    if (!this.deps.WebSocket) {
      this.log('reverse mode requested but no WebSocket client is available')
      return
    }
    try {
      this.reverse = connectReverse({
        url,
        token,
        handler: app.fetch,
        WebSocket: this.deps.WebSocket,
        modelsChanged: (listener) => this.api.lm.onDidChangeChatModels(listener),
        onStateChange: (state, detail) => {
          this.log(`reverse ${state}${detail ? `: ${detail}` : ''}`)
          this.render({ reverse: state })
        },
      })
    } catch (err) {
      void this.api.window.showWarningMessage(`LM Gateway Bridge: invalid lmGateway.bridge.reverseUrl (${errorMessage(err)})`)
    }
  }

  private async doStop(): Promise<void> {
    this.reverse?.close()
    this.reverse = undefined
    const served = this.served
    this.served = undefined
    // Closing drops open connections, which cancels their model calls.
    await served?.close()
    this.app?.dispose()
    this.app = undefined
    if (served) this.log('bridge stopped')
    this.render({ state: 'stopped', inflight: 0, reverse: undefined })
  }

  private async copyToken(): Promise<void> {
    await this.api.env.clipboard.writeText(await this.ensureToken())
    void this.api.window.showInformationMessage(
      'LM Gateway Bridge token copied. Give it to the gateway as VSCODE_BRIDGE_TOKEN.',
    )
  }

  private async showStatus(): Promise<void> {
    let message: string
    if (this.served && this.app) {
      const models = await this.app.catalog.list().catch(() => [])
      const reverse = this.reverse ? `, reverse mode ${this.reverse.state}` : ''
      message =
        `LM Gateway Bridge (protocol v1) on ${this.served.url}: ${this.app.inflight()} request(s) in flight, ` +
        `${models.length} model(s) available${reverse}.`
    } else {
      message = `LM Gateway Bridge is not running${this.view.detail ? `: ${this.view.detail}` : ''}.`
    }
    const choice = await this.api.window.showInformationMessage(message, 'Copy token', 'Restart')
    if (choice === 'Copy token') await this.copyToken()
    else if (choice === 'Restart') await this.restartWithNotice()
  }

  private async restartWithNotice(): Promise<void> {
    await this.restart()
    if (this.served) void this.api.window.showInformationMessage(`LM Gateway Bridge restarted on ${this.served.url}.`)
  }
}
