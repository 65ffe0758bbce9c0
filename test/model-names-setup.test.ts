import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { claudeCodeEnv, codexConfig, envBlock, pickModels, setupCommands } from '../src/cli/setup.js'
import { parseClaude, undated } from '../src/pipeline/model-names.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'

describe('model names from the field', () => {
  it('reads dated, aliased and Copilot-style Claude ids', () => {
    expect(parseClaude('claude-sonnet-4-5-20250929')).toEqual({ family: 'sonnet', version: 4.5 })
    expect(parseClaude('claude-haiku-4-5-20251001')).toEqual({ family: 'haiku', version: 4.5 })
    expect(parseClaude('claude-opus-4-1-20250805')).toEqual({ family: 'opus', version: 4.1 })
    expect(parseClaude('claude-sonnet-4-20250514')).toEqual({ family: 'sonnet', version: 4 })
    expect(parseClaude('claude-3-5-haiku-latest')).toEqual({ family: 'haiku', version: 3.5 })
    expect(parseClaude('claude-3-7-sonnet-20250219')).toEqual({ family: 'sonnet', version: 3.7 })
    expect(parseClaude('claude-sonnet-4.5')).toEqual({ family: 'sonnet', version: 4.5 })
    expect(parseClaude('claude-opus-41')).toEqual({ family: 'opus', version: 4.1 })
    expect(parseClaude('claude-3.5-sonnet')).toEqual({ family: 'sonnet', version: 3.5 })
    expect(parseClaude('us.anthropic.claude-sonnet-4-5-20250929-v1:0')).toEqual({ family: 'sonnet', version: 4.5 })
    expect(parseClaude('claude-sonnet-4-5-20250929[1m]')).toEqual({ family: 'sonnet', version: 4.5 })
    expect(parseClaude('gpt-4o')).toBeUndefined()
    expect(undated('gpt-4o-2024-08-06')).toBe('gpt-4o')
  })

  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({
      providers: [
        { id: 'vscode', type: 'mock', models: ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'claude-sonnet-4.5', 'claude-opus-41', 'claude-3.5-sonnet'] },
        { id: 'local', type: 'mock', models: ['llama3.2'] },
      ],
      compat: { modelNames: { map: { 'claude-3-haiku-*': 'local/llama3.2' } } },
    })
  })
  afterAll(() => gw?.close())

  const served = async (model: string) => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) })
    return { status: res.status, served: res.headers.get('x-gateway-model'), model: ((await res.json()) as { model?: string }).model }
  }

  it.each([
    ['claude-sonnet-4-5-20250929', 'vscode/claude-sonnet-4.5'],
    ['claude-sonnet-4-20250514', 'vscode/claude-sonnet-4'],
    ['claude-opus-4-1-20250805', 'vscode/claude-opus-41'],
    ['claude-3-5-sonnet-20241022', 'vscode/claude-3.5-sonnet'],
    // No Haiku served: the nearest tier (Sonnet) stands in.
    ['claude-haiku-4-5-20251001', 'vscode/claude-sonnet-4.5'],
    ['claude-3-haiku-20240307', 'local/llama3.2'],
    ['gpt-4o-2024-08-06', 'vscode/gpt-4o'],
  ])('%s → %s, answering with the asked name', async (asked, expected) => {
    const r = await served(asked)
    expect(r.status).toBe(200)
    expect(r.served).toBe(expected)
    expect(r.model).toBe(asked)
  })

  it('still 404s names that match nothing, and can be turned off', async () => {
    expect((await served('totally-unknown-model')).status).toBe(404)
    const off = await startGateway({ providers: [{ id: 'vscode', type: 'mock', models: ['claude-sonnet-4.5'] }], compat: { modelNames: false } })
    const res = await fetch(`${off.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-sonnet-4-5-20250929', messages: [{ role: 'user', content: 'hi' }] }) })
    expect(res.status).toBe(404)
    await off.close()
  })

  it('resolves dated ids in GET /v1/models/{id}', async () => {
    const res = await fetch(`${gw.baseURL}/models/claude-sonnet-4-5-20250929`)
    expect(res.status).toBe(200)
  })
})

describe('claude-code and codex set-up commands', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['sk-gw'] }, providers: [{ id: 'vscode', type: 'mock', models: ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'claude-sonnet-4.5', 'claude-haiku-4.5', 'text-embedding-3-small'] }] })
  })
  afterAll(() => gw?.close())

  it('picks the main and fast tiers', () => {
    expect(pickModels(['vscode/gpt-4o-mini', 'vscode/claude-sonnet-4', 'vscode/claude-sonnet-4.5', 'vscode/claude-haiku-4.5'])).toEqual({ main: 'vscode/claude-sonnet-4.5', fast: 'vscode/claude-haiku-4.5' })
    expect(pickModels(['x/text-embedding-3-small', 'x/gpt-4o-mini', 'x/gpt-4o'])).toEqual({ main: 'x/gpt-4o', fast: 'x/gpt-4o-mini' })
    expect(pickModels(['local/llama3.2'])).toEqual({ main: 'local/llama3.2', fast: 'local/llama3.2' })
  })

  it('builds the Claude Code env from the gateway’s models, and the block works with the Anthropic SDK env', async () => {
    const env = await claudeCodeEnv({ url: gw.url, key: 'sk-gw' })
    expect(env).toMatchObject({ ANTHROPIC_BASE_URL: gw.url, ANTHROPIC_AUTH_TOKEN: 'sk-gw', ANTHROPIC_MODEL: 'vscode/claude-sonnet-4.5', ANTHROPIC_SMALL_FAST_MODEL: 'vscode/claude-haiku-4.5' })
    expect(envBlock(env)).toContain(`export ANTHROPIC_BASE_URL=${gw.url}`)
    // The models it names are served by the gateway.
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ANTHROPIC_AUTH_TOKEN}` }, body: JSON.stringify({ model: env.ANTHROPIC_SMALL_FAST_MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }) })
    expect(res.status).toBe(200)
    await expect(claudeCodeEnv({ url: gw.url })).rejects.toThrow(/--key/)
    expect(await claudeCodeEnv({ url: 'http://127.0.0.1:9', model: 'a', fastModel: 'b' })).toMatchObject({ ANTHROPIC_MODEL: 'a', ANTHROPIC_SMALL_FAST_MODEL: 'b' })
  })

  it('writes Claude Code settings.json (merging) and a Codex config.toml with the Responses wire API', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'setup-'))
    const settings = join(dir, 'settings.json')
    await writeFile(settings, JSON.stringify({ permissions: { allow: ['Bash(ls)'] }, env: { KEEP: '1' } }))
    await setupCommands['claude-code'].run(['--url', gw.url, '--key', 'sk-gw', '--write', settings])
    const written = JSON.parse(await readFile(settings, 'utf8'))
    expect(written.permissions).toEqual({ allow: ['Bash(ls)'] })
    expect(written.env).toMatchObject({ KEEP: '1', ANTHROPIC_MODEL: 'vscode/claude-sonnet-4.5' })

    const { toml, env } = await codexConfig({ url: `${gw.url}`, key: 'sk-gw' })
    expect(toml).toContain('wire_api = "responses"')
    expect(toml).toContain(`base_url = "${gw.url}/v1"`)
    expect(toml).toContain('env_key = "VSCODE_LM_GATEWAY_KEY"')
    expect(toml).toMatch(/^model = "vscode\/claude-sonnet-4.5"/)
    expect(env).toEqual({ VSCODE_LM_GATEWAY_KEY: 'sk-gw' })
    const config = join(dir, 'config.toml')
    await writeFile(config, '[tui]\nnotifications = true\n')
    await setupCommands.codex.run(['--url', gw.url, '--key', 'sk-gw', '--write', config])
    const text = await readFile(config, 'utf8')
    expect(text.indexOf('model_provider')).toBeLessThan(text.indexOf('[tui]'))
    await expect(setupCommands.codex.run(['--url', gw.url, '--key', 'sk-gw', '--write', config])).rejects.toThrow(/already has/)
  })
})
