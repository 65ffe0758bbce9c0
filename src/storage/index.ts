import { createStorage, type Storage } from 'unstorage'
import type { GatewayConfig } from '../config.js'
import { silentLogger, type Logger } from '../logger.js'
import { openDriver, parseMountConfig, StorageError, type DriverName, type MountConfig, type OpenedDriver } from './drivers.js'

export { StorageError, type DriverName, type MountConfig } from './drivers.js'
export type { Storage } from 'unstorage'

/**
 * The gateway's one storage opener. Every feature that keeps state gets its
 * own mount, each on the driver the operator chose:
 *
 * - `cache`     response cache entries (src/pipeline/cache.ts)
 * - `analytics` usage records
 * - `files`     uploaded files (files API, batch input/output)
 * - `jobs`      batch and fine-tuning jobs
 * - `streams`   resumable stream buffers
 *
 * Config (`storage` in gateway.config.json): one entry per mount, plus an
 * optional `default` entry for the mounts not listed. With nothing configured
 * every mount is in memory: nothing touches disk unless the operator asks.
 * `fs` keeps data across restarts (in `<base>/<mount>`, base `./data` unless
 * set); `redis` shares it between instances (keys `<base>:<mount>:…`, base
 * `lmgw`); on Workers, `cloudflare-kv-binding` names a KV binding of the
 * Worker's env. Mounts never share a directory or prefix.
 *
 * Keys are unstorage keys relative to the mount (`a:b:c`); `setItem(k, v, { ttl })`
 * (seconds) expires entries on memory, redis and KV, but not on fs: store an
 * expiry in the value when the mount may be fs.
 */
export const MOUNTS = ['cache', 'analytics', 'files', 'jobs', 'streams'] as const
export type MountName = (typeof MOUNTS)[number]

/**
 * Memory mounts holding cache entries or stream resume buffers are bounded
 * unless told otherwise (least recently used first out): without a bound,
 * every finished stream's frames would stay for the whole resume window, so
 * memory would grow with the stream rate. The others hold state a feature
 * cannot lose (jobs, files), so they are not.
 */
const MEMORY_LIMITS: Partial<Record<MountName, { maxEntries: number; maxBytes: number }>> = {
  cache: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 },
  streams: { maxEntries: 100_000, maxBytes: 128 * 1024 * 1024 },
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

export interface GatewayStorage {
  /** The storage of one mount; keys are relative to it. */
  mount(name: MountName): Storage
  /** What each mount runs on (driver and location, no secrets), for logs and health. */
  readonly describe: Readonly<Record<MountName, string>>
  readonly drivers: Readonly<Record<MountName, DriverName>>
  /** Closes connections (Redis) and releases memory. */
  close(): Promise<void>
}

export interface OpenStorageOptions {
  /** The Worker's env, where `cloudflare-kv-binding` mounts find their namespace. */
  bindings?: Record<string, unknown>
  logger?: Logger
}

export type StorageConfig = GatewayConfig['storage']

/**
 * Opens every mount and checks it works (Redis answers PING, an fs directory is
 * writable); a mount that cannot open fails start-up with a StorageError that
 * says what to fix.
 */
export async function openStorage(config: StorageConfig = {}, options: OpenStorageOptions = {}): Promise<GatewayStorage> {
  const logger = options.logger ?? silentLogger
  for (const key of Object.keys(config)) {
    if (key !== 'default' && !(MOUNTS as readonly string[]).includes(key)) {
      throw new StorageError(`invalid storage config:\n  - storage.${key}: unknown mount; the mounts are ${MOUNTS.join(', ')} (and "default" for all others)`)
    }
  }
  const fallback = config.default ? parseMountConfig(config.default, 'storage.default') : undefined
  const opened: Partial<Record<MountName, OpenedDriver & { config: MountConfig }>> = {}
  try {
    for (const mount of MOUNTS) {
      const own = config[mount]
      let mountConfig = own ? parseMountConfig(own, `storage.${mount}`) : (fallback ?? { driver: 'memory' as const })
      if (mountConfig.driver === 'memory' && MEMORY_LIMITS[mount]) mountConfig = { ...MEMORY_LIMITS[mount], ...stripUndefined(mountConfig) }
      const driver = await openDriver(mountConfig, { mount, bindings: options.bindings ?? {}, logger })
      opened[mount] = { ...driver, config: mountConfig }
    }
  } catch (err) {
    await Promise.all(Object.values(opened).map((o) => Promise.resolve(o?.driver.dispose?.()).catch(() => {})))
    throw err
  }
  const mounts = new Map<MountName, Storage>()
  const describe = {} as Record<MountName, string>
  const drivers = {} as Record<MountName, DriverName>
  for (const mount of MOUNTS) {
    const o = opened[mount]!
    mounts.set(mount, withPrefixClear(createStorage({ driver: o.driver })))
    describe[mount] = o.describe
    drivers[mount] = o.config.driver
  }
  let closed: Promise<void> | undefined
  return {
    mount(name) {
      const s = mounts.get(name)
      if (!s) throw new StorageError(`unknown storage mount "${name}"`)
      return s
    },
    describe,
    drivers,
    close() {
      closed ??= Promise.all([...mounts.values()].map((s) => s.dispose().catch(() => {}))).then(() => {})
      return closed
    },
  }
}

/**
 * unstorage 1.17's `clear(base)` skips a driver mounted at the root, so a
 * prefix would clear nothing; clear a prefix key by key instead, as callers expect.
 */
function withPrefixClear(storage: Storage): Storage {
  const clearAll = storage.clear
  return {
    ...storage,
    async clear(base, opts) {
      if (!base) return clearAll(base, opts)
      const keys = await storage.getKeys(base)
      await Promise.all(keys.map((k) => storage.removeItem(k, opts)))
    },
  }
}
