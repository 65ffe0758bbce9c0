import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, LogLevel, Miniflare } from 'miniflare'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface RuntimeServer {
  url: string
  close(): Promise<void>
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

async function waitForHealth(url: string, child?: ChildProcess, log?: () => string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}: ${log?.()}`)
    try {
      const res = await fetch(`${url}/health`)
      if (res.ok) return
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no answer from ${url} within 30 s: ${log?.()}`)
}

/** Runs the Bun entry (`bun src/entry/bun.ts`) with the given config. */
export async function startBun(config: unknown): Promise<RuntimeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'lmgw-bun-'))
  const file = join(dir, 'gateway.config.json')
  writeFileSync(file, JSON.stringify(config))
  const port = await freePort()
  let out = ''
  const child = spawn(join(root, 'node_modules', '.bin', 'bun'), ['src/entry/bun.ts'], {
    cwd: root,
    env: { ...process.env, GATEWAY_CONFIG: file, PORT: String(port), BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const url = `http://127.0.0.1:${port}`
  await waitForHealth(url, child, () => out)
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

let bundled: Promise<string> | undefined

/** The Worker exactly as `npm run build:worker` bundles it (wrangler, with its Node polyfills). */
export function workerBundle(): Promise<string> {
  bundled ??= new Promise<string>((resolve, reject) => {
    const outdir = mkdtempSync(join(tmpdir(), 'lmgw-worker-'))
    const child = spawn(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', outdir], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (out += d))
    child.once('exit', (code) => (code === 0 ? resolve(join(outdir, 'worker.js')) : reject(new Error(`wrangler build failed (${code}): ${out}`))))
  })
  return bundled
}

export interface WorkerdOptions {
  /** KV namespace bindings (in-memory in Miniflare), as `[[kv_namespaces]]` in wrangler.toml. */
  kvNamespaces?: string[]
  /** Durable Object bindings → class exported by the worker, as `[[durable_objects.bindings]]` (SQLite-backed, like the migration). */
  durableObjects?: Record<string, string>
  /** Wait for /health to answer 200 (default); off for a Worker expected to fail start-up. */
  waitHealthy?: boolean
  /** Keep KV data in this folder, so a second Miniflare sees what the first wrote (a Worker restart). */
  kvPersist?: string
}

/** Runs the Worker entry inside workerd (Miniflare), serving HTTP on a loopback port. */
export async function startWorkerd(config: unknown, bindings: Record<string, string> = {}, options: WorkerdOptions = {}): Promise<RuntimeServer & { mf: Miniflare }> {
  const scriptPath = await workerBundle()
  const port = await freePort()
  const mf = new Miniflare({
    modules: [{ type: 'ESModule', path: 'worker.js', contents: readFileSync(scriptPath, 'utf8') }],
    compatibilityDate: '2026-04-01',
    compatibilityFlags: ['nodejs_compat'],
    bindings: { GATEWAY_CONFIG_JSON: JSON.stringify(config), ...bindings },
    kvNamespaces: options.kvNamespaces ?? [],
    ...(options.kvPersist ? { kvPersist: options.kvPersist } : {}),
    durableObjects: Object.fromEntries(Object.entries(options.durableObjects ?? {}).map(([name, className]) => [name, { className, useSQLite: true }])),
    cf: false,
    host: '127.0.0.1',
    port,
    log: new Log(LogLevel.WARN),
  })
  const url = (await mf.ready).toString().replace(/\/$/, '')
  if (options.waitHealthy !== false) await waitForHealth(url)
  return { url, mf, close: () => mf.dispose() }
}

/** The Worker's handle in Miniflare, which can fire its Cron Trigger (`scheduled`), as workerd's cron would. */
export async function cronTrigger(server: RuntimeServer & { mf: Miniflare }) {
  return (await server.mf.getWorker()) as unknown as { scheduled(event: { cron: string }): Promise<unknown> }
}

/**
 * Runs the Node entry (`src/entry/node.ts`) as its own process with a config
 * file, for tests that kill and restart the gateway. `logs` collects the
 * output of every process started from the same launcher.
 */
export function nodeGatewayLauncher(configFile: string, port: number) {
  const launcher = {
    logs: '',
    async start(): Promise<ChildProcess> {
      const p = spawn(process.execPath, ['--import', 'tsx', 'src/entry/node.ts'], { cwd: root, env: { ...process.env, GATEWAY_CONFIG: configFile, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
      let log = ''
      const take = (d: Buffer) => {
        log += d
        launcher.logs += d
      }
      p.stdout!.on('data', take)
      p.stderr!.on('data', take)
      // Generous: a loaded two-core machine can take many seconds to load the sources.
      for (let i = 0; i < 600 && !log.includes('gateway listening') && p.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100))
      if (!log.includes('gateway listening')) throw new Error(log)
      return p
    },
  }
  return launcher
}
