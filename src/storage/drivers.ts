import { z } from 'zod'
import type { Driver } from 'unstorage'
import { formatPath } from '../config.js'
import type { Logger } from '../logger.js'
import { memoryDriver } from './memory-driver.js'

/** Why a mount could not be opened; the message is meant for the operator, as is. */
export class StorageError extends Error {
  override name = 'StorageError'
}

const Memory = z.object({
  driver: z.literal('memory'),
  maxEntries: z.number().int().positive().optional(),
  maxBytes: z.number().int().positive().optional(),
})

const Fs = z.object({
  driver: z.literal('fs'),
  /** The gateway's data directory; the mount lives in `<base>/<mount>`. Default `./data`. */
  base: z.string().min(1).default('./data'),
})

/** The rest of the object is passed to ioredis (tls, password, db …). */
const Redis = z.looseObject({
  driver: z.literal('redis'),
  url: z.string().min(1).default('redis://127.0.0.1:6379'),
  /** Key prefix; the mount's keys are `<base>:<mount>:…`. Default `lmgw`. */
  base: z.string().min(1).default('lmgw'),
  /** How long start-up waits for the first PONG. */
  connectTimeoutMs: z.number().int().positive().default(5000),
})

const Kv = z.object({
  driver: z.literal('cloudflare-kv-binding'),
  /** Name of the KV namespace binding in the Worker's env. */
  binding: z.string().min(1),
  /** Key prefix inside the namespace; the mount's keys are `[<base>:]<mount>:…`. */
  base: z.string().min(1).optional(),
})

export const MountConfig = z.discriminatedUnion('driver', [Memory, Fs, Redis, Kv])
export type MountConfig = z.infer<typeof MountConfig>
export type DriverName = MountConfig['driver']

export interface OpenedDriver {
  driver: Driver
  /** Operator-facing description, e.g. `fs ./data/files`; never contains secrets. */
  describe: string
}

/**
 * Each mount gets its own directory or key prefix under the configured base,
 * always: two mounts sharing one would see, and clear, each other's keys.
 */
export interface DriverContext {
  mount: string
  bindings: Record<string, unknown>
  logger: Logger
}

export function parseMountConfig(raw: unknown, at: string): MountConfig {
  const parsed = MountConfig.safeParse(raw ?? { driver: 'memory' })
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  - ${[at, formatPath(i.path)].filter(Boolean).join('.')}: ${i.message}`)
  throw new StorageError(`invalid storage config:\n${lines.join('\n')}`)
}

/** Builds a mount's driver and proves it usable: start-up fails here, loudly, rather than on the first request. */
export async function openDriver(config: MountConfig, ctx: DriverContext): Promise<OpenedDriver> {
  switch (config.driver) {
    case 'memory':
      return { driver: memoryDriver({ maxEntries: config.maxEntries, maxBytes: config.maxBytes }), describe: 'memory' }
    case 'fs':
      return openFs(config, ctx)
    case 'redis':
      return openRedis(config, ctx)
    case 'cloudflare-kv-binding':
      return openKv(config, ctx)
  }
}

async function openFs(config: z.infer<typeof Fs>, ctx: DriverContext): Promise<OpenedDriver> {
  // Imported on demand so Worker bundles that never use fs do not evaluate it.
  const [{ default: fsDriver }, fsp, path] = await Promise.all([import('unstorage/drivers/fs'), import('node:fs/promises'), import('node:path')])
  const base = path.resolve(config.base, ctx.mount)
  const probe = path.join(base, `.write-probe-${process.pid}-${Math.random().toString(36).slice(2)}`)
  try {
    await fsp.mkdir(base, { recursive: true })
    await fsp.writeFile(probe, 'ok')
    await fsp.rm(probe, { force: true })
  } catch (err) {
    throw new StorageError(`storage "${ctx.mount}": the fs directory ${base} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). Fix its permissions or set another storage.${ctx.mount}.base.`)
  }
  const driver = fsDriver({ base })
  return { driver, describe: `fs ${base}` }
}

async function openRedis(config: z.infer<typeof Redis>, ctx: DriverContext): Promise<OpenedDriver> {
  const { default: redisDriver } = await import('unstorage/drivers/redis')
  const { driver: _d, url, base, connectTimeoutMs, ...ioredis } = config
  const prefix = `${base}:${ctx.mount}`
  const where = redactUrl(url)
  const driver = redisDriver({
    url,
    base: prefix,
    connectTimeout: connectTimeoutMs,
    // A command fails after one reconnect attempt instead of queueing for ever, so a
    // lost Redis turns into a quick cache miss rather than a hung request.
    maxRetriesPerRequest: 1,
    ...ioredis,
  })
  const client = driver.getInstance!()
  let lastError = ''
  let down = false
  client.on('error', (err: Error) => {
    lastError = err.message
    if (!down) ctx.logger.warn('storage unavailable', { mount: ctx.mount, driver: 'redis', url: where, error: err.message })
    down = true
  })
  client.on('ready', () => {
    if (down) ctx.logger.info('storage reconnected', { mount: ctx.mount, driver: 'redis', url: where })
    down = false
  })
  try {
    await withTimeout(client.ping(), connectTimeoutMs)
  } catch (err) {
    client.disconnect()
    throw new StorageError(`storage "${ctx.mount}": cannot reach Redis at ${where} (${lastError || (err as Error).message}). Start Redis or fix storage.${ctx.mount}.url.`)
  }
  return { driver, describe: `redis ${where} prefix ${prefix}` }
}

async function openKv(config: z.infer<typeof Kv>, ctx: DriverContext): Promise<OpenedDriver> {
  const binding = ctx.bindings[config.binding] as { get?: unknown; put?: unknown; list?: unknown; delete?: unknown } | undefined
  if (!binding || typeof binding.get !== 'function' || typeof binding.put !== 'function' || typeof binding.list !== 'function') {
    throw new StorageError(
      `storage "${ctx.mount}": no KV namespace binding named "${config.binding}" in the Worker's env. Add [[kv_namespaces]] binding = "${config.binding}" to wrangler.toml.`,
    )
  }
  const { default: kvDriver } = await import('unstorage/drivers/cloudflare-kv-binding')
  const prefix = config.base ? `${config.base}:${ctx.mount}` : ctx.mount
  return { driver: kvDriver({ binding: binding as never, base: prefix }), describe: `cloudflare-kv-binding ${config.binding} prefix ${prefix}` }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** The URL for logs and errors: the password is not. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable url)'
  }
}
