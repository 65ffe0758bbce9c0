#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `npx vscode-lm-gateway` needs no build step.
import { register } from 'tsx/esm/api'
register()
const { main } = await import('../src/cli/index.ts')
await main(process.argv.slice(2))
