import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import { parse } from 'yaml'
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

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator()
    const result = await validator.validate(JSON.parse(readFileSync(join(root, 'openapi', 'openapi.json'), 'utf8')))
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('serves the OpenAI-compatible operations at the paths and methods of OpenAI’s own spec', () => {
    const ours = JSON.parse(readFileSync(join(root, 'openapi', 'openapi.json'), 'utf8')) as { paths: Record<string, Record<string, unknown>> }
    const theirs = parse(readFileSync(join(root, '..', 'shared', 'reference', 'openai-openapi.yaml'), 'utf8')) as { paths: Record<string, Record<string, unknown>> }
    const openaiPaths = ['/v1/models', '/v1/models/{model}', '/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses', '/v1/files', '/v1/batches', '/v1/fine_tuning/jobs']
    for (const path of openaiPaths) {
      if (!ours.paths[path]) continue
      const upstream = theirs.paths[path.slice(3)]
      expect(upstream, `OpenAI has ${path}`).toBeDefined()
      for (const method of Object.keys(ours.paths[path])) expect(Object.keys(upstream), `${method} ${path}`).toContain(method)
    }
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
