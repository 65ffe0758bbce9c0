/**
 * `npm run bench`: what the gateway costs over calling the upstream directly.
 *
 * A fake OpenAI-compatible upstream (bench/upstream.ts, its own process), the
 * gateway on Node (`node dist/node/gateway.mjs`, the bundle `npm start` runs) and
 * on Bun (`bun src/entry/bun.ts`), the stack's floor (bench/floor.ts: Hono,
 * @hono/node-server and the same undici client with no gateway logic, on the
 * gateway's core; `bunfloor` is the same on Bun), and a load generator (bench/load.ts, undici
 * Pool) in its own process. With taskset, the gateway runs on core 0 and the
 * upstream and the load generator on core 1. Each measurement runs for every
 * target in turn (direct, floor, node, bunfloor, bun), rotated, `BENCH_REPS` times (default 3);
 * the table shows medians, and the spread of the repetitions.
 *
 * - latency: non-streaming chat, concurrency 1, p50/p99 (BENCH_N requests)
 * - ttfb: streamed chat (50 chunks), time to first body byte, p50/p99
 * - rate: tiny JSON at 50 connections, req/s; CPU ms per request = gateway
 *   process CPU time / requests (the steadiest figure on a shared machine)
 * - sse: 50-chunk streams at 20 connections, streams/s and CPU ms per stream
 *   (also with x-gateway-coalesce-ms: 20, the coalescing effect)
 * - memory: RSS idle, and per open stream with 500 concurrent slow streams
 *
 * Writes bench/results.json. Env: BENCH_REPS, BENCH_N, BENCH_SECONDS,
 * BENCH_TARGETS (comma list of direct,floor,node,bunfloor,bun), BENCH_PROFILE=1 (node
 * --cpu-prof of the Node gateway into bench/profiles/), BENCH_ONLY (comma list
 * of measurements), BENCH_NO_BUILD=1 (measure dist/node/gateway.mjs as it is).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const REPS = Number(process.env.BENCH_REPS ?? 3)
const N = Number(process.env.BENCH_N ?? 2000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const TARGETS = (process.env.BENCH_TARGETS ?? 'direct,floor,node,bunfloor,bun').split(',') as Target[]
const PROFILE = process.env.BENCH_PROFILE === '1'
/** Which measurements to run (latency,ttfb,rate,sse,memory); all by default. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'latency,ttfb,rate,sse,memory').split(','))
const TASKSET = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
const BUN = join(root, 'node_modules', '.bin', 'bun')
const HAS_BUN = spawnSync(BUN, ['--version'], { stdio: 'ignore' }).status === 0
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100)

type Target = 'direct' | 'floor' | 'node' | 'bunfloor' | 'bun'

interface Proc {
  child: ChildProcess
  lines: AsyncIterator<string>
  next(prefix: string): Promise<string>
}

const children = new Set<ChildProcess>()

function start(cmd: string, args: string[], core: number | undefined, env: Record<string, string> = {}): Proc {
  const [c, a] = TASKSET && core !== undefined ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]
  const child = spawn(c, a, { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return {
    child,
    lines,
    async next(prefix) {
      for (;;) {
        const { done, value } = await lines.next()
        if (done) throw new Error(`${cmd} ${args.join(' ')} exited before printing ${prefix}`)
        if (value.startsWith(prefix)) return value
      }
    },
  }
}

/** The process doing the work: taskset execs its command, so the pid is the target's own. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

async function waitHealthy(url: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const r = await fetch(`${url}/health`)
      if (r.ok) return
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function load(job: Record<string, unknown>, onMeasuring?: () => void): Promise<any> {
  const p = start('node', ['--import', 'tsx', 'bench/load.ts', JSON.stringify(job)], TASKSET ? 1 : undefined)
  for (;;) {
    const line = await p.next('')
    if (line === 'MEASURING') onMeasuring?.()
    else if (line.startsWith('RESULT ')) return JSON.parse(line.slice(7))
    else if (line.startsWith('ERROR ')) throw new Error(line)
  }
}

function pct(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]
}
function median(xs: number[]): number {
  return pct(xs, 0.5)
}

async function main(): Promise<void> {
  const cfgDir = join(tmpdir(), `lmgw-bench-${process.pid}`)
  mkdirSync(cfgDir, { recursive: true })
  const upstream = HAS_BUN ? start(BUN, ['bench/upstream.ts'], TASKSET ? 1 : undefined) : start('node', ['--import', 'tsx', 'bench/upstream.ts'], TASKSET ? 1 : undefined)
  const upPort = Number((await upstream.next('READY ')).split(' ')[1])
  const upURL = `http://127.0.0.1:${upPort}/v1`
  const config = {
    server: { apiKeys: ['bench'], logLevel: 'warn' },
    providers: [{ id: 'up', type: 'openai-compatible', baseURL: upURL, models: ['m', 'slow'] }],
  }
  const configPath = join(cfgDir, 'gateway.config.json')
  writeFileSync(configPath, JSON.stringify(config))

  const gateways: Partial<Record<Target, { proc: Proc; url: string; pid: number }>> = {}
  const ports: Record<string, number> = { node: 4700 + (process.pid % 200), bun: 4950 + (process.pid % 200), floor: 4600 + (process.pid % 100), bunfloor: 4500 + (process.pid % 100) }
  if (TARGETS.includes('node')) {
    mkdirSync(join(root, 'bench', 'profiles'), { recursive: true })
    // What `npm start` runs: the prestart bundle on plain node.
    if (process.env.BENCH_NO_BUILD !== '1' && spawnSync('node', ['scripts/build-node.mjs'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('scripts/build-node.mjs failed')
  }
  if (TARGETS.includes('floor')) {
    // What the stack alone costs (bench/floor.ts), bundled like the gateway so both start the same way.
    const fromTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))
    await fromTsx('esbuild').build({ entryPoints: [join(root, 'bench/floor.ts')], outfile: join(root, 'dist/bench/floor.mjs'), bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' })
  }
  const commands: Record<Exclude<Target, 'direct'>, [string, string[], Record<string, string>]> = {
    node: ['node', [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', 'bench/profiles'] : []), 'dist/node/gateway.mjs'], { GATEWAY_CONFIG: configPath, PORT: String(ports.node), HOST: '127.0.0.1' }],
    floor: ['node', ['dist/bench/floor.mjs'], { UPSTREAM: upURL, PORT: String(ports.floor) }],
    bunfloor: [BUN, ['bench/floor.ts'], { UPSTREAM: upURL, PORT: String(ports.bunfloor) }],
    bun: [BUN, ['src/entry/bun.ts'], { GATEWAY_CONFIG: configPath, PORT: String(ports.bun), HOST: '127.0.0.1' }],
  }
  const launch = (t: Exclude<Target, 'direct'>) => {
    const [cmd, args, env] = commands[t]
    const proc = start(cmd, args, TASKSET ? 0 : undefined, env)
    gateways[t] = { proc, url: `http://127.0.0.1:${ports[t]}`, pid: proc.child.pid! }
  }
  for (const t of TARGETS) if (t !== 'direct' && (HAS_BUN || !t.startsWith('bun'))) launch(t)
  for (const g of Object.values(gateways)) await waitHealthy(g!.url)
  await new Promise((r) => setTimeout(r, 1000))
  const idleRss: Record<string, number> = {}
  for (const [t, g] of Object.entries(gateways)) idleRss[t] = rssMb(g!.pid)

  const targets = TARGETS.filter((t) => t === 'direct' || gateways[t])
  const urlOf = (t: Target) => (t === 'direct' ? upURL : `${gateways[t]!.url}/v1`)
  type Sample = Record<string, number>
  const samples: Record<string, Record<string, Sample[]>> = {}
  const add = (metric: string, t: Target, s: Sample) => ((samples[metric] ??= {})[t] ??= []).push(s)

  // Warm-up: JIT and pools.
  for (const t of ONLY.has('rate') || ONLY.has('latency') ? targets : []) await load({ kind: 'rate', url: urlOf(t), path: '/chat/completions', model: 'm', connections: 50, seconds: 2 })

  for (let rep = 0; rep < REPS; rep++) {
    const order = targets.map((_, i) => targets[(i + rep) % targets.length])
    for (const t of order) {
      if (ONLY.has('latency')) {
        const lat = await load({ kind: 'latency', url: urlOf(t), path: '/chat/completions', model: 'm', count: N })
        add('latency', t, { p50: pct(lat.total, 0.5), p99: pct(lat.total, 0.99) })
      }
      if (ONLY.has('ttfb')) {
        const tt = await load({ kind: 'ttfb', url: urlOf(t), path: '/chat/completions', model: 'm', count: Math.max(200, N / 5) })
        add('ttfb', t, { p50: pct(tt.ttfb, 0.5), p99: pct(tt.ttfb, 0.99), total: pct(tt.total, 0.5) })
      }
      const runs: Array<[string, Record<string, unknown>]> = []
      if (ONLY.has('rate')) runs.push(['rate', { stream: false, connections: 50 }])
      if (ONLY.has('sse')) runs.push(['sse', { stream: true, connections: 20 }])
      if (ONLY.has('sse') && t === 'node') runs.push(['sse_coalesce', { stream: true, connections: 20, headers: { 'x-gateway-coalesce-ms': '20' } }])
      for (const [metric, job] of runs) {
        const pid = t === 'direct' ? undefined : gateways[t]!.pid
        let cpu0 = 0
        const r = await load({ kind: 'rate', url: urlOf(t), path: '/chat/completions', model: 'm', seconds: SECONDS, ...job }, () => (cpu0 = pid ? cpuMs(pid) : 0))
        const cpu = pid ? cpuMs(pid) - cpu0 : NaN
        add(metric, t, { perSecond: r.perSecond, cpuMs: cpu / r.done, errors: r.errors, bytes: r.bytesPerAnswer })
      }
      process.stderr.write(`rep ${rep + 1}/${REPS} ${t}: done\n`)
    }
  }

  // Memory per open stream, on a fresh process of each target (a heap grown by the load runs shrinks
  // under the measurement, and streams cut by the client stay in the resume log for its window):
  // 20 streams opened and closed (first-use code and pools), then 500 slow streams held open at once.
  const memory: Record<string, { idleMb: number; beforeMb: number; openMb: number; perStreamKb: number }> = {}
  const hold = async (url: string, count: number, atOpen?: () => Promise<void>) => {
    const p = start('node', ['--import', 'tsx', 'bench/load.ts', JSON.stringify({ kind: 'hold', url: `${url}/v1`, path: '/chat/completions', model: 'slow', count })], TASKSET ? 1 : undefined)
    await p.next('OPEN')
    await atOpen?.()
    p.child.stdin!.end()
    await p.next('RESULT')
  }
  for (const t of Object.keys(ONLY.has('memory') ? gateways : {}) as Array<Exclude<Target, 'direct'>>) {
    const old = gateways[t]!.proc.child
    const exited = old.exitCode !== null || old.signalCode !== null ? Promise.resolve() : new Promise((r) => old.once('exit', r))
    old.kill('SIGINT')
    await exited
    launch(t)
    const g = gateways[t]
    await waitHealthy(g!.url)
    await hold(g!.url, 20)
    await new Promise((r) => setTimeout(r, 1000))
    const before = rssMb(g!.pid)
    let open = before
    await hold(g!.url, 500, async () => {
      await new Promise((r) => setTimeout(r, 1500))
      open = rssMb(g!.pid)
    })
    memory[t] = { idleMb: idleRss[t], beforeMb: before, openMb: open, perStreamKb: ((open - before) * 1024) / 500 }
  }

  for (const g of Object.values(gateways)) g!.proc.child.kill('SIGINT')
  upstream.child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 1500))

  // Medians over repetitions, and each repetition's value to show the noise.
  const summary: Record<string, Record<string, Record<string, { median: number; runs: number[] }>>> = {}
  for (const [metric, byTarget] of Object.entries(samples)) {
    for (const [t, runs] of Object.entries(byTarget)) {
      for (const key of Object.keys(runs[0])) {
        const values = runs.map((r) => r[key])
        ;((summary[metric] ??= {})[t] ??= {})[key] = { median: median(values), runs: values }
      }
    }
  }
  const m = (metric: string, t: string, key: string) => summary[metric]?.[t]?.[key]?.median ?? NaN
  const spread = (metric: string, t: string, key: string) => {
    const r = summary[metric]?.[t]?.[key]?.runs ?? []
    return r.length ? `${Math.min(...r).toFixed(key === 'perSecond' ? 0 : 3)}–${Math.max(...r).toFixed(key === 'perSecond' ? 0 : 3)}` : ''
  }
  const added = (metric: string, t: string, key: string) => m(metric, t, key) - m(metric, 'direct', key)
  const rows: Array<[string, string, string, string]> = []
  const row = (label: string, value: number, digits: number, budget: string, runs = '') => rows.push([label, Number.isFinite(value) ? value.toFixed(digits) : 'n/a', budget, runs])
  for (const t of ['floor', 'node', 'bunfloor', 'bun'] as const) {
    if (!Object.values(summary).some((byTarget) => byTarget[t]) && !memory[t]) continue
    if (summary.latency) row(`${t}: added latency c=1 p50 (ms)`, added('latency', t, 'p50'), 3, t === 'node' ? '≤ 0.5' : '', spread('latency', t, 'p50'))
    if (summary.latency) row(`${t}: added latency c=1 p99 (ms)`, added('latency', t, 'p99'), 3, t === 'node' ? '≤ 2' : '', spread('latency', t, 'p99'))
    if (summary.ttfb) row(`${t}: added SSE TTFB p50 (ms)`, added('ttfb', t, 'p50'), 3, t === 'node' ? '≤ 0.5' : '', spread('ttfb', t, 'p50'))
    if (summary.rate) row(`${t}: req/s at 50 conns, tiny JSON`, m('rate', t, 'perSecond'), 0, t === 'node' ? '≥ 5000' : t === 'bun' ? '≥ 15000' : '', spread('rate', t, 'perSecond'))
    if (summary.rate) row(`${t}: CPU ms per request`, m('rate', t, 'cpuMs'), 3, t === 'node' ? '≤ 0.2' : '', spread('rate', t, 'cpuMs'))
    if (summary.sse) row(`${t}: CPU ms per 50-chunk stream`, m('sse', t, 'cpuMs'), 3, t === 'node' ? '≤ 0.8' : '', spread('sse', t, 'cpuMs'))
    if (summary.sse) row(`${t}: streams/s at 20 conns`, m('sse', t, 'perSecond'), 0, '', spread('sse', t, 'perSecond'))
    if (t === 'node' && summary.sse_coalesce) {
      row(`node: CPU ms per stream, coalesce 20 ms`, m('sse_coalesce', t, 'cpuMs'), 3, '', spread('sse_coalesce', t, 'cpuMs'))
      row(`node: bytes per stream, coalesce off / 20 ms`, m('sse', t, 'bytes'), 0, `${m('sse_coalesce', t, 'bytes').toFixed(0)} coalesced`)
    }
    if (memory[t]) {
      row(`${t}: RSS idle (MB)`, memory[t].idleMb, 1, t === 'node' ? '≤ 60' : '')
      row(`${t}: memory per open stream (KB)`, memory[t].perStreamKb, 1, t === 'node' || t === 'bun' ? '≤ 40' : '')
    }
  }
  if (summary.latency) row('direct: latency c=1 p50 (ms)', m('latency', 'direct', 'p50'), 3, '', spread('latency', 'direct', 'p50'))
  if (summary.ttfb) row('direct: SSE TTFB p50 (ms)', m('ttfb', 'direct', 'p50'), 3, '', spread('ttfb', 'direct', 'p50'))
  if (summary.rate?.direct) row('direct: req/s at 50 conns', m('rate', 'direct', 'perSecond'), 0, '', spread('rate', 'direct', 'perSecond'))
  if (rows.length === 0) rows.push(['(nothing measured)', '', '', ''])
  const w = [Math.max(...rows.map((r) => r[0].length)), 10, 24, 20]
  console.log(`\nvscode-lm-gateway bench — ${REPS} reps, medians (runs: min–max)${TASKSET ? ', gateway pinned to core 0' : ', no taskset'}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`)
  console.log(`${'metric'.padEnd(w[0])}  ${'value'.padStart(w[1])}  ${'budget'.padEnd(w[2])}  runs`)
  for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`)
  const results = { date: new Date().toISOString(), reps: REPS, n: N, seconds: SECONDS, taskset: TASKSET, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), summary, memory, idleRss }
  writeFileSync(join(root, 'bench', 'results.json'), JSON.stringify(results, null, 2))
  console.log('\nwrote bench/results.json')
}

const stopAll = () => {
  for (const c of children) c.kill('SIGKILL')
}
process.on('SIGINT', () => (stopAll(), process.exit(130)))
process.on('SIGTERM', () => (stopAll(), process.exit(143)))
main().catch((err) => {
  console.error(err)
  stopAll()
  process.exit(1)
})
