import { spawn, spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseCidr, inCidrs, parseIp, resolveClientIp } from '../src/middleware/client-ip.js'
import { startGateway } from './helpers/gateway.js'
import { freePort, root } from './runtimes/spawn.js'

describe('client address, trusted proxies and the IP allowlist', () => {
  it('parses IPv4, IPv6 (compressed, mapped, embedded v4, zones) and CIDRs', () => {
    expect(parseIp('10.1.2.3')).toEqual({ v6: false, value: 0x0a010203n })
    expect(parseIp('::ffff:10.1.2.3')).toEqual({ v6: false, value: 0x0a010203n })
    expect(parseIp('::1')).toEqual({ v6: true, value: 1n })
    expect(parseIp('[2001:db8::1]')?.value).toBe(0x20010db8000000000000000000000001n)
    expect(parseIp('fe80::1%eth0')?.v6).toBe(true)
    expect(parseIp('64:ff9b::192.0.2.33')?.value).toBe(0x0064ff9b0000000000000000c0000221n)
    expect(parseIp('1.2.3.256')).toBeUndefined()
    expect(parseIp('1:2:3')).toBeUndefined()
    expect(parseIp('hello')).toBeUndefined()
    const nets = ['10.0.0.0/8', '2001:db8::/32', '192.168.1.7'].map(parseCidr)
    expect(inCidrs('10.255.0.1', nets)).toBe(true)
    expect(inCidrs('11.0.0.1', nets)).toBe(false)
    expect(inCidrs('2001:db8:ffff::5', nets)).toBe(true)
    expect(inCidrs('2001:db9::5', nets)).toBe(false)
    expect(inCidrs('192.168.1.7', nets)).toBe(true)
    expect(inCidrs('192.168.1.8', nets)).toBe(false)
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length/)
  })

  it('believes X-Forwarded-For only from trusted proxies, right to left', () => {
    const trusted = ['127.0.0.1/32', '10.0.0.0/8'].map(parseCidr)
    const h = (xff: string) => new Headers({ 'x-forwarded-for': xff })
    expect(resolveClientIp(h('203.0.113.9'), '198.51.100.1', trusted)).toBe('198.51.100.1')
    expect(resolveClientIp(h('203.0.113.9'), '127.0.0.1', trusted)).toBe('203.0.113.9')
    expect(resolveClientIp(h('6.6.6.6, 203.0.113.9, 10.0.0.2'), '127.0.0.1', trusted)).toBe('203.0.113.9')
    expect(resolveClientIp(new Headers(), '127.0.0.1', trusted)).toBe('127.0.0.1')
  })

  it('answers 403 in the dialect’s shape to addresses outside the allowlist', async () => {
    const gw = await startGateway({ server: { trustedProxies: ['127.0.0.1/32'], ipAllow: ['203.0.113.0/24', '2001:db8::/32'] } })
    const get = (xff?: string) => fetch(`${gw.baseURL}/models`, { headers: xff ? { 'x-forwarded-for': xff } : {} })
    expect((await get('203.0.113.50')).status).toBe(200)
    expect((await get('2001:db8::7')).status).toBe(200)
    const denied = await get('198.51.100.4')
    expect(denied.status).toBe(403)
    expect((await denied.json()).error).toMatchObject({ type: 'permission_error', code: 'ip_not_allowed' })
    expect((await get()).status).toBe(403)
    const anthropic = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'x-forwarded-for': '198.51.100.4' }, body: '{}' })
    expect(anthropic.status).toBe(403)
    expect((await anthropic.json()).type).toBe('error')
    await gw.close()

    const untrusting = await startGateway({ server: { ipAllow: ['203.0.113.0/24'] } })
    // Without a trusted proxy the header is ignored: the peer (127.0.0.1) is not allowed.
    expect((await fetch(`${untrusting.baseURL}/models`, { headers: { 'x-forwarded-for': '203.0.113.50' } })).status).toBe(403)
    await untrusting.close()
  })
})

describe('Node server lifecycle', () => {
  it('refuses to start open (no keys) on a non-loopback address unless told to', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/entry/node.ts'], {
      cwd: root,
      env: { ...process.env, HOST: '0.0.0.0', PORT: '0', GATEWAY_API_KEYS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('Refusing to start')
  })

  it('npm start’s bundle (dist/node/gateway.mjs) serves the app; on SIGTERM it stops accepting, finishes the stream in flight, then exits 0', { timeout: 90_000 }, async () => {
    // What `npm start` runs: the prestart build, then plain node on the bundle.
    const build = spawnSync(process.execPath, ['scripts/build-node.mjs'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    expect(build.status, build.stderr).toBe(0)
    const port = await freePort()
    const child = spawn(process.execPath, ['dist/node/gateway.mjs'], { cwd: root, env: { ...process.env, PORT: String(port), GATEWAY_API_KEYS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    child.stdout.on('data', (d) => (log += d))
    const url = `http://127.0.0.1:${port}`
    for (let i = 0; i < 600 && !log.includes('gateway listening'); i++) await new Promise((r) => setTimeout(r, 100))
    expect(log).toContain('gateway listening')
    // Static assets resolve from the package root when bundled too.
    const asset = await fetch(`${url}/scalar/standalone.js`)
    expect(asset.status).toBe(200)
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100_000)
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: '[[mock:delay=100]] one two three four five six seven eight' }] }),
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    const body = await res.text()
    expect(body).toContain('data: [DONE]')
    expect(body).toContain('eight')
    await expect(fetch(`${url}/health`)).rejects.toThrow()
    expect(await exited).toBe(0)
    expect(log).toContain('shutting down')
  })
})
