import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { root } from './runtimes/spawn.js'

/**
 * The TypeScript SDK generated from openapi/openapi.json (as `npm run sdk`
 * does) type-checks and works against a running gateway.
 */
describe('generated TypeScript SDK', () => {
  let gw: RunningGateway
  let out: string
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['sdk-key'] } })
    const tmp = join(root, 'test', '.tmp')
    execFileSync('mkdir', ['-p', tmp])
    out = mkdtempSync(join(tmp, 'sdk-'))
    execFileSync(join(root, 'node_modules', '.bin', 'openapi-ts'), ['-i', './openapi/openapi.json', '-o', out, '-c', '@hey-api/client-fetch', '--no-log-file', '-s'], { cwd: root, stdio: 'pipe' })
  }, 120_000)
  afterAll(() => gw?.close())

  it('type-checks under strict TypeScript', () => {
    writeFileSync(
      join(out, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM', 'DOM.Iterable'], skipLibCheck: true }, include: ['**/*.ts'] }),
    )
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', out], { stdio: 'pipe' })
  }, 120_000)

  it('calls the gateway: models, chat, health', async () => {
    const sdk = await import(join(out, 'index.ts'))
    const { createClient } = await import(join(out, 'client', 'index.ts'))
    const client = createClient({ baseUrl: gw.url, headers: { authorization: 'Bearer sdk-key' } })
    const models = await sdk.listModels({ client })
    expect(models.response.status).toBe(200)
    expect(models.data.data.map((m: { id: string }) => m.id)).toContain('mock/mock-1')
    const chat = await sdk.createChatCompletion({ client, body: { model: 'mock-1', messages: [{ role: 'user', content: 'typed hello' }] } })
    expect(chat.data.choices[0].message.content).toBe('typed hello')
    const bad = await sdk.createChatCompletion({ client, body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } })
    expect(bad.response.status).toBe(404)
    expect(bad.error.error.code).toBe('model_not_found')
    const health = await sdk.health({ client })
    expect(health.data.status).toBe('ok')
  })
})
