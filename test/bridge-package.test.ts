/**
 * The bridge as shipped: `npm run package -w bridge` must produce a .vsix whose
 * manifest contributes the commands and settings, and whose bundle activates.
 */
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { inflateRawSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import type { AddressInfo } from 'node:net'
import { createFakeVscode } from './fakes/vscode.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const vsixPath = join(root, 'bridge', 'lm-gateway-bridge.vsix')
const bundlePath = join(root, 'bridge', 'out', 'extension.js')

type Json = Record<string, any>

/** Reads one entry of a zip archive (a .vsix is one) from its central directory. */
function readZipEntry(zip: Buffer, name: string): Buffer | undefined {
  const EOCD = 0x06054b50
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i
      break
    }
  }
  if (eocd < 0) throw new Error('not a zip archive')
  const entries = zip.readUInt16LE(eocd + 10)
  let offset = zip.readUInt32LE(eocd + 16)
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('corrupt central directory')
    const method = zip.readUInt16LE(offset + 10)
    const compressedSize = zip.readUInt32LE(offset + 20)
    const nameLength = zip.readUInt16LE(offset + 28)
    const extraLength = zip.readUInt16LE(offset + 30)
    const commentLength = zip.readUInt16LE(offset + 32)
    const localOffset = zip.readUInt32LE(offset + 42)
    const entryName = zip.toString('utf8', offset + 46, offset + 46 + nameLength)
    if (entryName === name) {
      const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28)
      const data = zip.subarray(dataStart, dataStart + compressedSize)
      if (method === 0) return Buffer.from(data)
      if (method === 8) return inflateRawSync(data)
      throw new Error(`unsupported zip compression method ${method}`)
    }
    offset += 46 + nameLength + extraLength + commentLength
  }
  return undefined
}

function hasUnzip(): boolean {
  return spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0
}

describe('bridge packaging', () => {
  beforeAll(async () => {
    await promisify(execFile)('npm', ['run', 'package', '-w', 'bridge'], { cwd: root, timeout: 120_000 })
  }, 130_000)

  it('produces bridge/lm-gateway-bridge.vsix with the bundle and no sources', () => {
    expect(existsSync(vsixPath)).toBe(true)
    const zip = readFileSync(vsixPath)
    expect(readZipEntry(zip, 'extension/out/extension.js')).toBeDefined()
    expect(readZipEntry(zip, 'extension/src/server.ts')).toBeUndefined()
    expect(readZipEntry(zip, 'extension/LICENSE.txt')?.toString('utf8')).toContain('MIT License')
  })

  it('ships a manifest with the entry point, commands and settings', () => {
    const zip = readFileSync(vsixPath)
    const fromJs = readZipEntry(zip, 'extension/package.json')!.toString('utf8')
    const text = hasUnzip()
      ? spawnSync('unzip', ['-p', vsixPath, 'extension/package.json'], { encoding: 'utf8' }).stdout
      : fromJs
    expect(text).toBe(fromJs)
    const manifest = JSON.parse(text) as Json
    expect(manifest.name).toBe('vscode-lm-gateway-bridge')
    expect(manifest.main).toBe('./out/extension.js')
    expect(manifest.activationEvents).toEqual(['onStartupFinished'])
    expect(manifest.engines.vscode).toMatch(/^\^1\.\d+/)
    const commands = manifest.contributes.commands as Json[]
    expect(commands.map((c) => c.command).sort()).toEqual([
      'lmGateway.bridge.copyToken',
      'lmGateway.bridge.restart',
      'lmGateway.bridge.showStatus',
    ])
    const copy = commands.find((c) => c.command === 'lmGateway.bridge.copyToken')!
    expect(`${copy.category}: ${copy.title}`).toBe('LM Gateway Bridge: Copy token')
    const properties = manifest.contributes.configuration.properties as Json
    expect(properties['lmGateway.bridge.port']).toMatchObject({ type: 'integer', default: 3775 })
    expect(properties['lmGateway.bridge.host']).toMatchObject({ type: 'string', default: '127.0.0.1' })
    expect(properties['lmGateway.bridge.reverseUrl']).toMatchObject({ type: 'string', default: '' })
  })

  it('bundles an extension that activates and serves against a fake vscode', async () => {
    // A stand-in gateway, to see the bundled `ws` client dial out in reverse mode.
    const gateway = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((resolve) => gateway.once('listening', () => resolve()))
    const dialled = new Promise<string | undefined>((resolve) =>
      gateway.once('connection', (_ws, req) => resolve(req.headers.authorization)),
    )
    const reverseUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`
    const vscode = createFakeVscode({ settings: { 'lmGateway.bridge.port': 0, 'lmGateway.bridge.reverseUrl': reverseUrl } })
    vscode.fake.addModel({ id: 'm' })
    // The bundle does require('vscode'): answer it with the fake, only for this load.
    const loader = Module as unknown as { _load(request: string, ...rest: unknown[]): unknown }
    const originalLoad = loader._load
    loader._load = function (request: string, ...rest: unknown[]) {
      return request === 'vscode' ? vscode : originalLoad.call(this, request, ...rest)
    }
    let extension: { activate(context: unknown): Promise<void>; deactivate(): Promise<void> }
    try {
      const require = createRequire(import.meta.url)
      delete require.cache[bundlePath]
      extension = require(bundlePath) as typeof extension
    } finally {
      loader._load = originalLoad
    }
    const context = vscode.fake.createExtensionContext()
    await extension.activate(context)
    try {
      const port = /:(\d+)/.exec(vscode.fake.statusBarItems[0]!.text)?.[1]
      expect(port).toBeDefined()
      const token = await context.secrets.get('lmGateway.bridge.token')
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'secret prompt text' }] }),
      })
      expect(await res.text()).toContain('"type":"end"')
      const log = vscode.fake.outputChannels[0]!.lines.join('\n')
      expect(log).toContain('listening on http://127.0.0.1:')
      expect(log).not.toContain('secret prompt text')
      expect(await dialled).toBe(`Bearer ${token}`)
    } finally {
      await extension.deactivate()
      for (const client of gateway.clients) client.terminate()
      await new Promise<void>((resolve) => gateway.close(() => resolve()))
    }
  })
})
