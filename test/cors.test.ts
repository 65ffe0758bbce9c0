import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type RunningGateway } from './helpers/gateway.js'

describe('CORS', () => {
  let open: RunningGateway
  let closed: RunningGateway
  beforeAll(async () => {
    open = await startGateway({ server: { apiKeys: ['k'], cors: { origins: ['https://app.example'] } } })
    closed = await startGateway({ server: { apiKeys: ['k'] } })
  })
  afterAll(async () => {
    await open.close()
    await closed.close()
  })

  it('answers preflights for configured origins, without requiring the key', async () => {
    const res = await fetch(`${open.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    })
    expect(res.status).toBeLessThan(300)
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(res.headers.get('access-control-allow-methods')).toContain('POST')
  })

  it('exposes the request id to browsers and ignores other origins', async () => {
    const res = await fetch(`${open.baseURL}/models`, { headers: { origin: 'https://app.example', authorization: 'Bearer k' } })
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id')
    const other = await fetch(`${open.baseURL}/models`, { headers: { origin: 'https://evil.example', authorization: 'Bearer k' } })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('sends no CORS headers when none are configured', async () => {
    const res = await fetch(`${closed.baseURL}/models`, { headers: { origin: 'https://app.example', authorization: 'Bearer k' } })
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })
})
