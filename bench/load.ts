/**
 * The benchmark's load generator, in its own process (undici Pool, keep-alive).
 * Reads one JSON job from argv[2], prints one JSON result line:
 *  - latency: `count` sequential non-streaming requests → per-request ms
 *  - ttfb:    `count` sequential streams → ms to the first body byte (and whole stream)
 *  - rate:    `connections` concurrent loops for `seconds` (tiny JSON or SSE) → completed count
 *  - hold:    opens `count` slow streams, reports when all have their first bytes, holds until stdin closes
 */
import { Pool } from 'undici'

interface Job {
  kind: 'latency' | 'ttfb' | 'rate' | 'hold'
  url: string
  path: string
  model: string
  count?: number
  connections?: number
  seconds?: number
  stream?: boolean
  /** Extra request headers (e.g. x-gateway-coalesce-ms). */
  headers?: Record<string, string>
}

const job = JSON.parse(process.argv[2]) as Job
const origin = new URL(job.url).origin
const prefix = new URL(job.url).pathname.replace(/\/$/, '')
const body = (stream: boolean, model = job.model) => JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'Hi' }] })
const headers = { 'content-type': 'application/json', authorization: 'Bearer bench', ...job.headers }

let lastBytes = 0

async function one(pool: Pool, stream: boolean, model?: string): Promise<{ ttfb: number; total: number }> {
  const t0 = performance.now()
  const res = await pool.request({ origin, path: prefix + job.path, method: 'POST', headers, body: body(stream, model) })
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`)
  let ttfb = 0
  let bytes = 0
  for await (const chunk of res.body) {
    if (!ttfb) ttfb = performance.now() - t0
    bytes += (chunk as Buffer).length
  }
  lastBytes = bytes
  return { ttfb, total: performance.now() - t0 }
}

async function main(): Promise<unknown> {
  if (job.kind === 'latency' || job.kind === 'ttfb') {
    const pool = new Pool(origin, { connections: 1, pipelining: 1 })
    const stream = job.kind === 'ttfb'
    for (let i = 0; i < 100; i++) await one(pool, stream)
    const ttfb: number[] = []
    const total: number[] = []
    for (let i = 0; i < job.count!; i++) {
      const r = await one(pool, stream)
      ttfb.push(r.ttfb)
      total.push(r.total)
    }
    await pool.close()
    return { ttfb, total }
  }
  if (job.kind === 'rate') {
    const pool = new Pool(origin, { connections: job.connections, pipelining: 1 })
    const stream = job.stream === true
    const warmEnd = performance.now() + 1000
    let done = 0
    let errors = 0
    let counting = false
    let t0 = 0
    const end = warmEnd + job.seconds! * 1000
    await Promise.all(
      Array.from({ length: job.connections! }, async () => {
        for (;;) {
          const now = performance.now()
          if (now >= end) return
          if (!counting && now >= warmEnd) {
            counting = true
            t0 = now
            process.stdout.write('MEASURING\n')
          }
          try {
            await one(pool, stream)
            if (counting) done++
          } catch {
            errors++
          }
        }
      }),
    )
    const seconds = (performance.now() - t0) / 1000
    await pool.close()
    return { done, errors, seconds, perSecond: done / seconds, bytesPerAnswer: lastBytes }
  }
  // hold: many slow streams open at once
  const pool = new Pool(origin, { connections: job.count, pipelining: 1 })
  let firstBytes = 0
  const ctrl = new AbortController()
  const streams = Array.from({ length: job.count! }, async () => {
    const res = await pool.request({ origin, path: prefix + job.path, method: 'POST', headers, body: body(true, 'slow'), signal: ctrl.signal })
    let first = true
    try {
      for await (const _ of res.body) {
        if (first) {
          first = false
          if (++firstBytes === job.count) process.stdout.write('OPEN\n')
        }
      }
    } catch {
      /* aborted at the end */
    }
  })
  await new Promise<void>((resolve) => process.stdin.on('end', resolve).resume())
  ctrl.abort()
  await Promise.allSettled(streams)
  await pool.destroy()
  return { open: firstBytes }
}

main().then(
  (r) => {
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`)
    process.exit(0)
  },
  (err) => {
    process.stdout.write(`ERROR ${String(err?.stack ?? err)}\n`)
    process.exit(1)
  },
)
