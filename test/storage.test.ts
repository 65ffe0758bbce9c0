import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Miniflare } from 'miniflare'
import { createStorage } from 'unstorage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../src/logger.js'
import { memoryDriver } from '../src/storage/memory-driver.js'
import { MOUNTS, openStorage, StorageError, type GatewayStorage, type StorageConfig } from '../src/storage/index.js'
import { startGateway } from './helpers/gateway.js'
import { freePort, hasRedis, startRedis, type RunningRedis } from './helpers/redis.js'

let redis: RunningRedis | undefined
let dir = ''
let mf: Miniflare | undefined
let kv: unknown
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lmgw-storage-'))
  if (hasRedis) redis = await startRedis()
  mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response("ok") } }', kvNamespaces: ['GW_KV'], compatibilityDate: '2026-04-01', cf: false })
  kv = await mf.getKVNamespace('GW_KV')
}, 60_000)
afterAll(async () => {
  await redis?.close()
  await mf?.dispose()
  await rm(dir, { recursive: true, force: true })
})

interface DriverCase {
  name: string
  /** A config whose data is fresh (new directory, new key prefix). */
  fresh(): StorageConfig
  ttl: boolean
  skip?: boolean
}

const cases: DriverCase[] = [
  { name: 'memory', fresh: () => ({}), ttl: true },
  { name: 'memory with LRU budget', fresh: () => ({ default: { driver: 'memory', maxEntries: 1000, maxBytes: 8 * 1024 * 1024 } }), ttl: true },
  { name: 'fs', fresh: () => ({ default: { driver: 'fs', base: join(dir, `fs${++n}`) } }), ttl: false },
  { name: 'redis', fresh: () => ({ default: { driver: 'redis', url: redis!.url, base: `conf${++n}` } }), ttl: true, skip: !hasRedis },
  // Miniflare's KV is workerd's own implementation; its minimum TTL is 60 s, too long to wait for here.
  { name: 'cloudflare-kv-binding (Miniflare)', fresh: () => ({ default: { driver: 'cloudflare-kv-binding', binding: 'GW_KV', base: `conf${++n}` } }), ttl: false },
]

const open = (config: StorageConfig) => openStorage(config, { bindings: { GW_KV: kv } })

/** The storage conformance suite: every driver a mount can use behaves the same. */
for (const c of cases) {
  describe.skipIf(c.skip)(`storage conformance: ${c.name}`, () => {
    let storage: GatewayStorage
    let config: StorageConfig
    beforeAll(async () => {
      config = c.fresh()
      storage = await open(config)
    })
    afterAll(() => storage?.close())

    it('opens all five mounts', () => {
      expect(Object.keys(storage.describe).sort()).toEqual([...MOUNTS].sort())
      for (const m of MOUNTS) expect(storage.mount(m)).toBeDefined()
    })

    it('sets, gets, tests and removes strings and JSON values', async () => {
      const s = storage.mount('jobs')
      expect(await s.getItem('nothing:here')).toBeNull()
      expect(await s.hasItem('nothing:here')).toBe(false)
      await s.setItem('job:1', 'plain text')
      await s.setItem('job:2', { id: 'job_2', status: 'queued', counts: [1, 2, 3], nested: { ok: true } })
      expect(await s.getItem('job:1')).toBe('plain text')
      expect(await s.getItem('job:2')).toEqual({ id: 'job_2', status: 'queued', counts: [1, 2, 3], nested: { ok: true } })
      expect(await s.hasItem('job:1')).toBe(true)
      await s.setItem('job:1', 'overwritten')
      expect(await s.getItem('job:1')).toBe('overwritten')
      await s.removeItem('job:1')
      expect(await s.getItem('job:1')).toBeNull()
      expect(await s.hasItem('job:1')).toBe(false)
    })

    it('round-trips unicode and a 1 MB value intact', async () => {
      const s = storage.mount('files')
      const unicode = 'héllo 🌍 — 日本語 \u0000 "quotes" \\ back'
      await s.setItem('u', unicode)
      expect(await s.getItem('u')).toBe(unicode)
      const big = 'x'.repeat(1024 * 1024)
      await s.setItem('big', big)
      expect(((await s.getItem('big')) as string).length).toBe(big.length)
    })

    it('lists keys, all or under a base, and clears a base without touching the rest', async () => {
      const s = storage.mount('analytics')
      await Promise.all([s.setItem('day:1:a', '1'), s.setItem('day:1:b', '2'), s.setItem('day:2:a', '3'), s.setItem('total', '4')])
      expect((await s.getKeys()).sort()).toEqual(['day:1:a', 'day:1:b', 'day:2:a', 'total'])
      expect((await s.getKeys('day:1')).sort()).toEqual(['day:1:a', 'day:1:b'])
      await s.clear('day:1')
      expect((await s.getKeys()).sort()).toEqual(['day:2:a', 'total'])
      await s.clear()
      expect(await s.getKeys()).toEqual([])
    })

    it('keeps mounts apart: the same key in two mounts is two values', async () => {
      await storage.mount('cache').setItem('same', 'in cache')
      await storage.mount('streams').setItem('same', 'in streams')
      expect(await storage.mount('cache').getItem('same')).toBe('in cache')
      expect(await storage.mount('streams').getItem('same')).toBe('in streams')
      await storage.mount('cache').clear()
      expect(await storage.mount('streams').getItem('same')).toBe('in streams')
    })

    it('takes 50 concurrent writes', async () => {
      const s = storage.mount('streams')
      await Promise.all(Array.from({ length: 50 }, (_, i) => s.setItem(`burst:${i}`, { i })))
      expect(await s.getKeys('burst')).toHaveLength(50)
      expect(await s.getItem('burst:49')).toEqual({ i: 49 })
    })

    it.skipIf(!c.ttl)('expires an item set with a ttl (seconds)', async () => {
      const s = storage.mount('cache')
      await s.setItem('short', 'lived', { ttl: 1 })
      await s.setItem('long', 'lived')
      expect(await s.getItem('short')).toBe('lived')
      await new Promise((r) => setTimeout(r, 1100))
      expect(await s.getItem('short')).toBeNull()
      expect(await s.getItem('long')).toBe('lived')
    })

    it.skipIf(c.name.startsWith('memory'))('shares data with a second instance on the same config (restart, or several gateways)', async () => {
      await storage.mount('files').setItem('file:kept', { bytes: 3 })
      const second = await open(config)
      try {
        expect(await second.mount('files').getItem('file:kept')).toEqual({ bytes: 3 })
      } finally {
        await second.close()
      }
    })
  })
}

describe('storage start-up errors', () => {
  it('names an unreachable Redis and how to fix it', async () => {
    const port = await freePort()
    const err = await openStorage({ cache: { driver: 'redis', url: `redis://:hunter2@127.0.0.1:${port}`, connectTimeoutMs: 2000 } }).catch((e) => e)
    expect(err).toBeInstanceOf(StorageError)
    expect(err.message).toContain(`storage "cache": cannot reach Redis at redis://:***@127.0.0.1:${port}`)
    expect(err.message).toContain('ECONNREFUSED')
    expect(err.message).not.toContain('hunter2')
  })

  it('names an fs directory that cannot be written', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'not a directory')
    const err = await openStorage({ files: { driver: 'fs', base: join(file, 'data') } }).catch((e) => e)
    expect(err).toBeInstanceOf(StorageError)
    expect(err.message).toMatch(/storage "files": the fs directory .*a-file\/data\/files is not writable \(ENOTDIR\)/)
  })

  it('rejects unknown mounts, unknown drivers and bad options with the field at fault', async () => {
    await expect(openStorage({ caches: { driver: 'memory' } })).rejects.toThrow(/storage\.caches: unknown mount; the mounts are cache, analytics, files, jobs, streams/)
    await expect(openStorage({ jobs: { driver: 'sqlite' } as never })).rejects.toThrow(/storage\.jobs/)
    await expect(openStorage({ cache: { driver: 'memory', maxBytes: -1 } as never })).rejects.toThrow(/storage\.cache\.maxBytes/)
    await expect(openStorage({ cache: { driver: 'cloudflare-kv-binding', binding: 'MISSING' } as never })).rejects.toThrow(/no KV namespace binding named "MISSING"/)
  })

  it('fails gateway start-up with that message (the Node entry prints it and exits 1)', async () => {
    const port = await freePort()
    await expect(startGateway({ storage: { jobs: { driver: 'redis', url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 2000 } } })).rejects.toThrow(/storage "jobs": cannot reach Redis/)
  })
})

describe('storage defaults', () => {
  it('puts every mount in memory with nothing configured, and bounds the cache and streams mounts', async () => {
    const s = await openStorage()
    try {
      expect(s.drivers).toEqual({ cache: 'memory', analytics: 'memory', files: 'memory', jobs: 'memory', streams: 'memory' })
      expect(s.mount('cache').getMount('').driver.options).toMatchObject({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 })
      expect(s.mount('streams').getMount('').driver.options).toMatchObject({ maxEntries: 100_000, maxBytes: 128 * 1024 * 1024 })
      expect(s.mount('jobs').getMount('').driver.options).toMatchObject({ maxEntries: undefined, maxBytes: undefined })
    } finally {
      await s.close()
    }
  })

  it('gives each mount its own directory under a default fs base, and own mounts override it', async () => {
    const base = join(dir, 'defaults')
    const s = await openStorage({ default: { driver: 'fs', base }, cache: { driver: 'memory' } })
    try {
      expect(s.describe.files).toBe(`fs ${join(base, 'files')}`)
      expect(s.describe.jobs).toBe(`fs ${join(base, 'jobs')}`)
      expect(s.describe.cache).toBe('memory')
    } finally {
      await s.close()
    }
  })

  it.skipIf(!hasRedis)('logs a Redis outage once (no secrets), and the mount works again after Redis is back', async () => {
    const own = await startRedis()
    const lines: string[] = []
    const s = await openStorage({ cache: { driver: 'redis', url: own.url } }, { logger: createLogger('info', (l) => lines.push(l)) })
    let back: RunningRedis | undefined
    try {
      await s.mount('cache').setItem('k', 'v')
      await own.stop()
      await expect(s.mount('cache').getItem('k')).rejects.toThrow()
      await expect(s.mount('cache').getItem('k')).rejects.toThrow()
      expect(lines.filter((l) => l.includes('storage unavailable'))).toHaveLength(1)
      back = await startRedis(own.port)
      await expect.poll(() => s.mount('cache').setItem('k2', 'v2').then(() => true, () => false), { timeout: 8000, interval: 200 }).toBe(true)
      expect(await s.mount('cache').getItem('k2')).toBe('v2')
      expect(lines.some((l) => l.includes('storage reconnected'))).toBe(true)
    } finally {
      await s.close()
      await back?.close()
    }
  })
})

describe('memory driver', () => {
  it('evicts least recently used entries past maxEntries', async () => {
    const s = createStorage({ driver: memoryDriver({ maxEntries: 3 }) })
    for (const k of ['a', 'b', 'c']) await s.setItem(k, k)
    await s.getItem('a')
    await s.setItem('d', 'd')
    expect((await s.getKeys()).sort()).toEqual(['a', 'c', 'd'])
  })

  it('keeps the total size within maxBytes and refuses an entry larger than the budget', async () => {
    const s = createStorage({ driver: memoryDriver({ maxBytes: 100 }) })
    await s.setItem('a', 'x'.repeat(40))
    await s.setItem('b', 'y'.repeat(40))
    await s.setItem('c', 'z'.repeat(40))
    expect((await s.getKeys()).sort()).toEqual(['b', 'c'])
    await s.setItem('huge', 'h'.repeat(101))
    expect(await s.hasItem('huge')).toBe(false)
    // UTF-8 bytes, not characters: 20 four-byte emoji are 80 bytes.
    await s.setItem('emoji', '😀'.repeat(20))
    expect((await s.getKeys()).sort()).toEqual(['emoji'])
  })

  it('expires entries by ttl on its clock', async () => {
    let t = 0
    const s = createStorage({ driver: memoryDriver({ now: () => t }) })
    await s.setItem('a', 'one', { ttl: 10 })
    t = 9_999
    expect(await s.getItem('a')).toBe('one')
    t = 10_000
    expect(await s.getItem('a')).toBeNull()
    expect(await s.getKeys()).toEqual([])
  })
})
