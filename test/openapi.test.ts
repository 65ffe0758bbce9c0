import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildSpec } from '../scripts/spec.js'
import { assetsFromDisk } from '../src/entry/node.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { root } from './runtimes/spawn.js'

describe('OpenAPI spec and API reference', () => {
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway({ server: { apiKeys: ['k'] } }, { assets: assetsFromDisk })
  })
  afterAll(() => gw.close())

  it('openapi/openapi.json is generated from the routes and committed up to date (run `npm run openapi`)', async () => {
    const committed = readFileSync(join(root, 'openapi', 'openapi.json'), 'utf8')
    expect(committed).toBe(await buildSpec())
  })

  it('serves the spec at /openapi.json without a key', async () => {
    const res = await fetch(`${gw.url}/openapi.json`)
    expect(res.status).toBe(200)
    const spec = await res.json()
    expect(spec.openapi).toBe('3.1.0')
    const ops = Object.values(spec.paths as Record<string, Record<string, { operationId?: string }>>).flatMap((p) => Object.values(p).map((o) => o.operationId))
    expect(ops).toEqual(expect.arrayContaining(['listModels', 'retrieveModel', 'createChatCompletion', 'createCompletion', 'health']))
    expect(new Set(ops).size).toBe(ops.length)
    expect(spec.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
  })

  it('serves an API reference page at /docs that loads only self-hosted assets', async () => {
    const res = await fetch(`${gw.url}/docs`)
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain('/scalar/standalone.js')
    expect(html).toContain('/openapi.json')
    expect(html).not.toMatch(/https?:\/\/(cdn|fonts|unpkg|proxy)\./)
    const js = await fetch(`${gw.url}/scalar/standalone.js`)
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toContain('javascript')
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000)
  })
})
