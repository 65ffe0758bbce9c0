/**
 * VS Code entry point: the only file that imports the real `vscode` module.
 * Everything else receives it as a parameter (see controller.ts).
 */
import * as vscode from 'vscode'
import WebSocket from 'ws'
import { BridgeController } from './controller.js'

let controller: BridgeController | undefined

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('LM Gateway Bridge', { log: true })
  context.subscriptions.push(output)
  controller = new BridgeController(vscode, context, { WebSocket, log: (line) => output.info(line) })
  context.subscriptions.push(controller)
  await controller.start()
}

export async function deactivate(): Promise<void> {
  await controller?.stop()
  controller = undefined
}
