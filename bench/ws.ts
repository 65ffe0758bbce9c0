/**
 * `npx tsx bench/ws.ts`: a chat request over an open WebSocket (GET /v1/ws)
 * next to the same request over HTTP keep-alive, at concurrency 1.
 *
 * The fake upstream (bench/upstream.ts) and the gateway (`node --import tsx
 * src/entry/node.ts`, as `npm start`; `bun src/entry/bun.ts` with
 * BENCH_TARGETS=node,bun) run in their own processes (with taskset: gateway
 * on core 0, upstream and this client on core 1). Measured, each BENCH_N
 * times after a warm-up, HTTP and WS alternating in rounds of 100:
 *  - json: non-streaming chat, request sent → whole answer parsed;
 *  - stream: streamed chat (50 chunks), request sent → last chunk / done.
 * Prints p50/p99 in ms and the WS − HTTP difference; writes bench/ws-results.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Agent } from 'undici'
import WebSocket from 'ws'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const N = Number(process.env.BENCH_N ?? 2000)
const WARMUP = 200
const ROUND = 100
const TARGETS = (process.env.BENCH_TARGETS ?? 'node').split(',')
const TASKSET = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
const BUN = join(root, 'node_modules', '.bin', 'bun')
const children = new Set<ChildProcess>()

function start(cmd: string, args: string[], core: number | undefined, env: Record<string, string> = {}): { child: ChildProcess; next(prefix: string): Promise<string> } {
  const [c, a] = TASKSET && core !== undefined ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]
  const child = spawn(c, a, { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  children.add(child)
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return {
    child,
    async next(prefix) {
      for (;;) {
        const { done, value } = await lines.next()
        if (done) throw new Error(`${cmd} exited before printing ${prefix}`)
        if (value.startsWith(prefix)) return value
      }
    },
  }
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not start`)
}

const pct = (s: number[], p: number) => [...s].sort((a, b) => a - b)[Math.min(s.length - 1, Math.floor(s.length * p))]

/** One socket, requests one at a time: resolves when the request's terminal frame arrives. */
function wsClient(url: string): Promise<{ run(body: unknown): Promise<void>; close(): void }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, { headers: { authorization: 'Bearer bench' }, perMessageDeflate: false })
  let waiting: { id: number; resolve(): void; reject(err: Error): void } | undefined
  let next = 0
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString())
    if (waiting && f.id === waiting.id && (f.type === 'response' || f.type === 'done' || f.type === 'error')) {
      if (f.type === 'error') waiting.reject(new Error(JSON.stringify(f)))
      else waiting.resolve()
    }
  })
  return new Promise((resolve, reject) => {
    ws.once('error', reject)
    ws.once('open', () =>
      resolve({
        run: (body) =>
          new Promise<void>((done, fail) => {
            const id = ++next
            waiting = { id, resolve: done, reject: fail }
            ws.send(JSON.stringify({ id, type: 'request', path: '/v1/chat/completions', body }))
          }),
        close: () => ws.close(),
      }),
    )
  })
}

const dispatcher = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })

async function http(url: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer bench', 'content-type': 'application/json' }, body: JSON.stringify(body), dispatcher } as RequestInit)
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  if ((body as { stream?: boolean }).stream) {
    // Parsed as a client would: every event's JSON.
    const text = await res.text()
    for (const line of text.split('\n')) if (line.startsWith('data: {')) JSON.parse(line.slice(6))
  } else await res.json()
}

async function measure(url: string, body: unknown): Promise<{ http: number[]; ws: number[] }> {
  const ws = await wsClient(url)
  const out = { http: [] as number[], ws: [] as number[] }
  for (let i = 0; i < WARMUP; i++) {
    await http(url, body)
    await ws.run(body)
  }
  for (let done = 0; done < N; done += ROUND) {
    for (const kind of done % (2 * ROUND) === 0 ? (['http', 'ws'] as const) : (['ws', 'http'] as const)) {
      for (let i = 0; i < ROUND; i++) {
        const t0 = performance.now()
        if (kind === 'http') await http(url, body)
        else await ws.run(body)
        out[kind].push(performance.now() - t0)
      }
    }
  }
  ws.close()
  return out
}

async function main(): Promise<void> {
  const upstream = start('node', ['--import', 'tsx', 'bench/upstream.ts'], TASKSET ? 1 : undefined)
  const upURL = `http://127.0.0.1:${(await upstream.next('READY ')).split(' ')[1]}/v1`
  const dir = join(tmpdir(), `lmgw-bench-ws-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  const configPath = join(dir, 'gateway.config.json')
  writeFileSync(configPath, JSON.stringify({ server: { apiKeys: ['bench'], logLevel: 'warn' }, providers: [{ id: 'up', type: 'openai-compatible', baseURL: upURL, models: ['m'] }] }))
  const results: Record<string, unknown> = { n: N, taskset: TASKSET }
  for (const target of TARGETS) {
    const port = 5200 + (process.pid % 300) + (target === 'bun' ? 1 : 0)
    const proc = target === 'bun' ? start(BUN, ['src/entry/bun.ts'], TASKSET ? 0 : undefined, { GATEWAY_CONFIG: configPath, PORT: String(port) }) : start('node', ['--import', 'tsx', 'src/entry/node.ts'], TASKSET ? 0 : undefined, { GATEWAY_CONFIG: configPath, PORT: String(port), HOST: '127.0.0.1' })
    const url = `http://127.0.0.1:${port}`
    await waitHealthy(url)
    for (const [name, body] of [
      ['json', { model: 'up/m', messages: [{ role: 'user', content: 'Say hello.' }] }],
      ['stream', { model: 'up/m', stream: true, messages: [{ role: 'user', content: 'Say hello.' }] }],
    ] as const) {
      const r = await measure(url, body)
      const row = { http: { p50: pct(r.http, 0.5), p99: pct(r.http, 0.99) }, ws: { p50: pct(r.ws, 0.5), p99: pct(r.ws, 0.99) } }
      results[`${target}.${name}`] = row
      console.log(`${target} ${name.padEnd(6)}  HTTP keep-alive p50 ${row.http.p50.toFixed(3)} ms p99 ${row.http.p99.toFixed(3)} ms | WebSocket p50 ${row.ws.p50.toFixed(3)} ms p99 ${row.ws.p99.toFixed(3)} ms | WS−HTTP p50 ${(row.ws.p50 - row.http.p50).toFixed(3)} ms`)
    }
    proc.child.kill('SIGTERM')
  }
  writeFileSync(join(root, 'bench', 'ws-results.json'), `${JSON.stringify(results, null, 2)}\n`)
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(() => {
    for (const c of children) c.kill('SIGTERM')
    void dispatcher.close()
  })
