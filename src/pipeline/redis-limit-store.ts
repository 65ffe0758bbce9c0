import { stateOf, type BucketSpec, type LimitStore } from './limit-store.js'

/**
 * Token buckets in Redis, shared by every gateway instance. Each take is one
 * Lua script, so the check and the debit of all buckets are atomic across
 * instances. Buckets expire once they would be full again.
 */
const TAKE = `
local now = tonumber(ARGV[1])
local n = #KEYS
local tokens, stamps = {}, {}
local failed = 0
for i = 1, n do
  local cap = tonumber(ARGV[i * 3 - 1])
  local rate = tonumber(ARGV[i * 3])
  local cost = tonumber(ARGV[i * 3 + 1])
  local v = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t, ts = tonumber(v[1]), tonumber(v[2])
  if t == nil then t, ts = cap, now end
  if now > ts then
    t = math.min(cap, t + (now - ts) * rate)
    ts = now
  end
  tokens[i], stamps[i] = t, ts
  if failed == 0 and t < cost then failed = i end
end
local out = { failed }
for i = 1, n do
  local cap = tonumber(ARGV[i * 3 - 1])
  local rate = tonumber(ARGV[i * 3])
  if failed == 0 then
    tokens[i] = tokens[i] - tonumber(ARGV[i * 3 + 1])
    redis.call('HSET', KEYS[i], 't', tostring(tokens[i]), 'ts', tostring(stamps[i]))
    redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate) + 60000)
  end
  out[i + 1] = tostring(tokens[i])
end
return out
`

const ADJUST = `
local now, cap, rate, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local t, ts = tonumber(v[1]), tonumber(v[2])
if t == nil then t, ts = cap, now end
if now > ts then
  t = math.min(cap, t + (now - ts) * rate)
  ts = now
end
t = math.min(cap, t + delta)
redis.call('HSET', KEYS[1], 't', tostring(t), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate) + 60000)
return 1
`

/** The slice of an ioredis client this store uses. */
interface RedisLike {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  script(sub: 'LOAD', script: string): Promise<unknown>
  quit(): Promise<unknown>
  disconnect(): void
}

export interface RedisLimitStoreOptions {
  url: string
  prefix: string
}

export async function redisLimitStore(opts: RedisLimitStoreOptions): Promise<LimitStore> {
  // Imported on demand: Workers have no TCP client, and single-instance setups need no Redis.
  const { Redis } = await import('ioredis')
  const redis = new Redis(opts.url, { maxRetriesPerRequest: 1, commandTimeout: 2000, lazyConnect: true }) as unknown as RedisLike & { connect(): Promise<void>; on(e: string, f: (err: unknown) => void): void }
  redis.on('error', () => {
    /* reported through failing commands; ioredis reconnects by itself */
  })
  await redis.connect()
  const shas = new Map<string, string>()
  const run = async (script: string, keys: string[], args: Array<string | number>): Promise<unknown> => {
    let sha = shas.get(script)
    if (!sha) {
      sha = String(await redis.script('LOAD', script))
      shas.set(script, sha)
    }
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err
      return redis.eval(script, keys.length, ...keys, ...args)
    }
  }
  const key = (spec: BucketSpec) => opts.prefix + spec.key
  return {
    async take(specs, now) {
      const args: Array<string | number> = [now]
      for (const s of specs) args.push(s.capacity, s.perMs, s.cost)
      const out = (await run(TAKE, specs.map(key), args)) as Array<string | number>
      const failed = Number(out[0]) - 1
      return { ok: failed === -1, failed, states: specs.map((s, i) => stateOf(s, Number(out[i + 1]))) }
    },
    async adjust(spec, delta, now) {
      await run(ADJUST, [key(spec)], [now, spec.capacity, spec.perMs, delta])
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect())
    },
  }
}
