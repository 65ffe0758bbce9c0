/** The status bar entry: where the bridge listens and how many model calls are running. */
import type { HostApi, StatusBarItemLike } from './vscode-api.js'

export interface StatusView {
  state: 'starting' | 'listening' | 'stopped' | 'failed'
  url?: string
  port?: number
  inflight: number
  reverse?: string
  detail?: string
}

export class BridgeStatusBar {
  private readonly item: StatusBarItemLike

  constructor(api: HostApi, command: string) {
    this.item = api.window.createStatusBarItem(api.StatusBarAlignment.Right, 100)
    this.item.command = command
    this.item.show()
  }

  render(view: StatusView): void {
    const busy = view.inflight > 0 ? ` $(sync~spin) ${view.inflight}` : ''
    if (view.state === 'listening') {
      this.item.text = `$(radio-tower) LM Bridge :${view.port}${busy}`
      const reverse = view.reverse ? `\nReverse: ${view.reverse}` : ''
      this.item.tooltip = `LM Gateway Bridge on ${view.url}\n${view.inflight} request(s) in flight${reverse}`
    } else if (view.state === 'failed') {
      this.item.text = '$(warning) LM Bridge'
      this.item.tooltip = `LM Gateway Bridge is not running: ${view.detail ?? 'unknown error'}`
    } else {
      this.item.text = `$(circle-slash) LM Bridge${busy}`
      this.item.tooltip = `LM Gateway Bridge is ${view.state}`
    }
  }

  dispose(): void {
    this.item.dispose()
  }
}
