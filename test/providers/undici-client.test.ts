import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { undiciClient } from '../../src/entry/undici-client.js'
import { HEADERS_TIMEOUT } from '../../src/providers/shared/http.js'

/** Node's upstream client (undici dispatch) against a real HTTP server: bodies whole and streamed, pausing, aborts, headers. */
let server: Server
let base: string
const BIG = Buffer.alloc(3 * 1024 * 1024, 'abcdefghij')
let sockets = 0

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-twice': ['a', 'b'] })
      res.end(BIG)
    } else if (req.url === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, n: 1 }))
    } else if (req.url === '/hang') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: first\n\n')
      // never ends
    } else if (req.url === '/cut') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: partial\n\n')
      setTimeout(() => res.socket?.destroy(), 30)
    } else if (req.url === '/silent') {
      // no headers at all
    } else {
      res.writeHead(404).end('nope')
    }
  })
  server.on('connection', () => sockets++)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('undiciClient', () => {
  const http = undiciClient()

  it('reads a whole body larger than the high-water mark with text(), and a JSON body with json()', async () => {
    const res = await http(`${base}/big`, { method: 'GET', headers: {} })
    expect(res.status).toBe(200)
    expect(res.header('Content-Type')).toBe('text/plain')
    expect(res.header('x-twice')).toBe('a, b')
    expect(res.header('x-missing')).toBeNull()
    const text = await res.text()
    expect(text.length).toBe(BIG.length)
    expect(text === BIG.toString('utf8')).toBe(true)
    const j = await http(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(await j.json()).toEqual({ ok: true, n: 1 })
  })

  it('streams a body read slowly: the socket pauses above the high-water mark and every byte arrives in order', async () => {
    const res = await http(`${base}/big`, { method: 'GET', headers: {} })
    await new Promise((r) => setTimeout(r, 100)) // let undici fill the buffer and pause
    const parts: Buffer[] = []
    for await (const chunk of res.body) {
      parts.push(Buffer.from(chunk))
      if (parts.length % 8 === 0) await new Promise((r) => setImmediate(r))
    }
    expect(Buffer.concat(parts).equals(BIG)).toBe(true)
  })

  it('rejects with the signal reason before headers, and ends the body with it after headers', async () => {
    const early = new AbortController()
    const pending = http(`${base}/silent`, { method: 'GET', headers: {}, signal: early.signal })
    setTimeout(() => early.abort(new Error('client gone')), 50)
    await expect(pending).rejects.toThrow('client gone')

    const late = new AbortController()
    const res = await http(`${base}/hang`, { method: 'GET', headers: {}, signal: late.signal })
    const it = res.body[Symbol.asyncIterator]()
    expect(Buffer.from((await it.next()).value!).toString()).toBe('data: first\n\n')
    setTimeout(() => late.abort(new Error('stop now')), 20)
    await expect(it.next()).rejects.toThrow('stop now')
  })

  it('fails, never hangs, when the upstream drops the connection mid-body: streamed and whole', async () => {
    const res = await http(`${base}/cut`, { method: 'GET', headers: {} })
    const seen: string[] = []
    await expect(
      (async () => {
        for await (const chunk of res.body) seen.push(Buffer.from(chunk).toString())
      })(),
    ).rejects.toThrow()
    expect(seen.join('')).toBe('data: partial\n\n')
    const whole = await http(`${base}/cut`, { method: 'GET', headers: {} })
    await expect(whole.text()).rejects.toThrow()
  })

  it('maps the per-request header deadline to its own error', async () => {
    await expect(http(`${base}/silent`, { method: 'GET', headers: {}, headersTimeoutMs: 80 })).rejects.toMatchObject({ code: HEADERS_TIMEOUT })
  })

  it('discard() drops a body held open, and the pool keeps serving', async () => {
    const res = await http(`${base}/hang`, { method: 'GET', headers: {} })
    await res.discard()
    const again = await http(`${base}/json`, { method: 'GET', headers: {} })
    expect(await again.json()).toEqual({ ok: true, n: 1 })
  })

  it('answers through the shared Agent for a URL that is not a canonical origin, and refuses a malformed one', async () => {
    const res = await http(`${base.replace('http://', 'http://user@')}/json`, { method: 'GET', headers: {} })
    expect(await res.json()).toEqual({ ok: true, n: 1 })
    await expect(http('http://[bad/x', { method: 'GET', headers: {} })).rejects.toThrow()
  })

  it('reuses keep-alive connections across calls', async () => {
    const before = sockets
    for (let i = 0; i < 20; i++) await (await http(`${base}/json`, { method: 'GET', headers: {} })).json()
    expect(sockets - before).toBeLessThanOrEqual(1)
  })
  it('holds 300 streams open at once to one origin (no per-origin connection cap queues them)', async () => {
    const open = await Promise.all(Array.from({ length: 300 }, () => http(`${base}/hang`, { method: 'GET', headers: {} })))
    expect(open.every((r) => r.status === 200)).toBe(true)
    await Promise.all(open.map((r) => r.discard()))
  })

})
