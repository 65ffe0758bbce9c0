import { defineDriver } from 'unstorage'

export interface MemoryDriverOptions {
  /** Evict the least recently used entries beyond this count. */
  maxEntries?: number
  /** Evict the least recently used entries beyond this many bytes (UTF-8 size of the stored values). */
  maxBytes?: number
  /** Clock in ms, injectable for tests of expiry. */
  now?: () => number
}

interface Slot {
  value: unknown
  bytes: number
  /** Epoch ms after which the entry is gone; 0 = never. */
  expires: number
}

/**
 * unstorage's memory driver grows without bound and ignores TTLs; this one is
 * a least-recently-used map with optional entry and byte budgets, and honours
 * `setItem(key, value, { ttl: seconds })` like the redis and KV drivers do.
 * A JS Map keeps insertion order, so re-inserting on read makes it an LRU.
 */
export const memoryDriver = defineDriver((opts: MemoryDriverOptions = {}) => {
  const data = new Map<string, Slot>()
  const maxEntries = opts.maxEntries ?? Infinity
  const maxBytes = opts.maxBytes ?? Infinity
  const now = opts.now ?? Date.now
  let bytes = 0

  const drop = (key: string) => {
    const slot = data.get(key)
    if (!slot) return
    bytes -= slot.bytes
    data.delete(key)
  }
  const live = (key: string): Slot | undefined => {
    const slot = data.get(key)
    if (!slot) return undefined
    if (slot.expires && slot.expires <= now()) {
      drop(key)
      return undefined
    }
    return slot
  }
  const read = (key: string): unknown => {
    const slot = live(key)
    if (!slot) return null
    if (maxEntries !== Infinity || maxBytes !== Infinity) {
      data.delete(key)
      data.set(key, slot)
    }
    return slot.value
  }
  const write = (key: string, value: unknown, ttl: unknown) => {
    drop(key)
    const size = sizeOf(value)
    // An entry larger than the whole budget would evict everything and still not fit.
    if (size > maxBytes) return
    const seconds = typeof ttl === 'number' && ttl > 0 ? ttl : 0
    data.set(key, { value, bytes: size, expires: seconds ? now() + seconds * 1000 : 0 })
    bytes += size
    while (data.size > maxEntries || bytes > maxBytes) {
      const oldest = data.keys().next().value
      if (oldest === undefined) break
      drop(oldest)
    }
  }

  return {
    name: 'memory',
    flags: { ttl: true },
    options: opts,
    getInstance: () => data,
    hasItem: (key) => live(key) !== undefined,
    getItem: (key) => read(key) as string | null,
    getItemRaw: (key) => read(key),
    setItem: (key, value, topts) => write(key, value, topts?.ttl),
    setItemRaw: (key, value, topts) => write(key, value, topts?.ttl),
    removeItem: (key) => drop(key),
    getKeys: () => [...data.keys()].filter((k) => live(k) !== undefined),
    clear: (base) => {
      if (!base) {
        data.clear()
        bytes = 0
        return
      }
      for (const key of [...data.keys()]) if (key.startsWith(base)) drop(key)
    },
    dispose: () => {
      data.clear()
      bytes = 0
    },
  }
})

/** UTF-8 size of a stored value; strings are what unstorage's setItem passes. */
export function sizeOf(value: unknown): number {
  if (typeof value === 'string') return utf8Length(value)
  if (value instanceof ArrayBuffer) return value.byteLength
  if (ArrayBuffer.isView(value)) return value.byteLength
  return utf8Length(JSON.stringify(value) ?? '')
}

function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff) {
      // A surrogate pair: 2 UTF-16 units already counted, 4 UTF-8 bytes.
      n += 2
      i++
    } else n += 2
  }
  return n
}
