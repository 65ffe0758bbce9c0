import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer, Socket } from 'node:net'

export interface RunningRedis {
  url: string
  port: number
  /** Stops the server (for tests of a Redis that goes away); close() is still safe after it. */
  stop(): Promise<void>
  close(): Promise<void>
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server'

/** Whether a redis-server binary is installed; CI installs Debian's. */
export const hasRedis: boolean = spawnSync(BINARY, ['--version'], { stdio: 'ignore' }).status === 0

if (!hasRedis) {
  console.warn(`\n!!! ${BINARY} is not installed: the Redis storage tests are SKIPPED. Install it with "apt-get install -y redis-server". !!!\n`)
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Starts a throwaway redis-server on a free loopback port (or the given one, to restart it): no persistence, no config file. */
export async function startRedis(onPort?: number): Promise<RunningRedis> {
  const port = onPort ?? (await freePort())
  const child: ChildProcess = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: 'ignore',
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + 10_000
  while (!(await answers(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error('redis-server did not start within 10 s')
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop, close: stop }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket()
    s.once('error', () => resolve(false))
    s.connect(port, '127.0.0.1', () => {
      s.write('PING\r\n')
      s.once('data', (d) => {
        s.destroy()
        resolve(d.toString().startsWith('+PONG'))
      })
    })
  })
}
