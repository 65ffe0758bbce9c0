import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'
import { root } from './runtimes/spawn.js'

describe('configuration', () => {
  it('defaults to loopback:4000 and the mock provider when nothing is configured', () => {
    const c = loadConfig(undefined, {})
    expect(c.server).toMatchObject({ host: '127.0.0.1', port: 4000, apiKeys: [], bodyLimit: 20 * 1024 * 1024 })
    expect(c.providers).toEqual([{ id: 'mock', type: 'mock' }])
  })

  it('builds providers, keys and port from environment variables alone', () => {
    const c = loadConfig(undefined, {
      PORT: '5001',
      GATEWAY_API_KEYS: 'a, b',
      VSCODE_BRIDGE_TOKEN: 'tok',
      OLLAMA_BASE_URL: 'http://127.0.0.1:11434',
      OPENAI_COMPATIBLE_BASE_URL: 'http://127.0.0.1:8000/v1',
      OPENAI_COMPATIBLE_API_KEY: 'sk',
    })
    expect(c.server.port).toBe(5001)
    expect(c.server.apiKeys).toEqual(['a', 'b'])
    expect(c.providers.map((p) => p.type)).toEqual(['vscode-bridge', 'ollama', 'openai-compatible'])
    expect(c.providers[0]).toMatchObject({ url: 'http://127.0.0.1:3775', token: 'tok' })
  })

  it('substitutes ${ENV} and ${ENV:-default} in every string, and names a missing variable', () => {
    const c = loadConfig({ server: { apiKeys: ['${KEY}', '${OTHER:-fallback}'] } }, { KEY: 'secret' })
    expect(c.server.apiKeys).toEqual(['secret', 'fallback'])
    expect(() => loadConfig({ providers: [{ id: 'x', type: 'mock', token: '${NOPE}' }] }, {})).toThrow(/providers\[0\]\.token: environment variable NOPE is not set/)
  })

  it('names the bad field in a readable error', () => {
    expect(() => loadConfig({ server: { port: 'eighty' } }, {})).toThrow(ConfigError)
    expect(() => loadConfig({ server: { port: 'eighty' } }, {})).toThrow(/server\.port: Invalid input: expected number/)
    expect(() => loadConfig({ providers: [{ id: 'a', type: 'mock' }, { id: 'a', type: 'mock' }] }, {})).toThrow(/duplicate provider id "a"/)
    expect(() => loadConfig({ models: { fast: { targets: [] } } }, {})).toThrow(/models\.fast\.targets/)
    expect(() => loadConfig({}, { PORT: 'x' })).toThrow(/PORT: not a port number/)
  })

  it('accepts the example config', () => {
    const raw = JSON.parse(readFileSync(join(root, 'gateway.config.example.json'), 'utf8'))
    const c = loadConfig(raw, {})
    expect(c.providers.map((p) => p.id)).toEqual(['vscode', 'ollama', 'mock'])
    expect(c.server.apiKeys).toEqual(['change-me'])
  })

  it('exits non-zero at start with the bad field named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmgw-cfg-'))
    const file = join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ server: { port: 99999 } }))
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/entry/node.ts'], { cwd: root, env: { ...process.env, GATEWAY_CONFIG: file }, encoding: 'utf8', timeout: 30_000 })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('server.port')
    writeFileSync(file, '{ not json')
    const run2 = spawnSync(process.execPath, ['--import', 'tsx', 'src/entry/node.ts'], { cwd: root, env: { ...process.env, GATEWAY_CONFIG: file }, encoding: 'utf8', timeout: 30_000 })
    expect(run2.status).toBe(1)
    expect(run2.stderr).toContain('is not valid JSON')
  })
})
