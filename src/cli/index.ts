import { setupCommands } from './setup.js'

/**
 * `vscode-lm-gateway [command]`. With no command (or `start`) it runs the
 * gateway; other commands print set-ups for clients.
 */
export interface Command {
  summary: string
  run(args: string[]): Promise<void>
}

export const commands: Record<string, Command> = {
  start: {
    summary: 'Run the gateway (default). Flags: --host H, --port N; env: GATEWAY_CONFIG, PORT, HOST, GATEWAY_API_KEYS',
    async run(args) {
      const flag = (name: string) => {
        const i = args.indexOf(`--${name}`)
        return i === -1 ? undefined : args[i + 1]
      }
      if (flag('port')) process.env.PORT = flag('port')
      if (flag('host')) process.env.HOST = flag('host')
      const { startNode } = await import('../entry/node.js')
      await startNode()
    },
  },
  ...setupCommands,
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log('Usage: vscode-lm-gateway [command] [options]\n')
    for (const [n, c] of Object.entries(commands)) console.log(`  ${n.padEnd(12)} ${c.summary}`)
    return
  }
  const command = !name || name.startsWith('--') ? commands.start : commands[name]
  if (!command) {
    console.error(`Unknown command "${name}". Run with --help for the list.`)
    process.exit(2)
  }
  await command.run(!name || name.startsWith('--') ? argv : rest)
}
