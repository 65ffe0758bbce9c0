import { z } from 'zod'
import type { LimitStore } from './limit-store.js'

/**
 * Token buckets in one Cloudflare Durable Object (src/entry/worker-rate-limits.ts),
 * so RPM/TPM limits are exact across every isolate of a Worker: the object
 * runs one take at a time, all-or-nothing over the request's buckets, as the
 * Redis script does for Node instances. Runtime-neutral: it only needs the
 * namespace binding's `idFromName`/`get` and the stub's `fetch`.
 */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> }
}

export const LIMITS_ORIGIN = 'https://rate-limits.internal'

const BucketState = z.object({ capacity: z.number(), remaining: z.number(), resetMs: z.number(), waitMs: z.number() })
const TakeResult = z.object({ ok: z.boolean(), failed: z.number().int(), states: z.array(BucketState) })

export function isDurableObjectNamespace(value: unknown): value is DurableObjectNamespaceLike {
  const v = value as Partial<DurableObjectNamespaceLike> | undefined
  return typeof v?.idFromName === 'function' && typeof v.get === 'function'
}

export function durableObjectLimitStore(namespace: DurableObjectNamespaceLike, name: string): LimitStore {
  const id = namespace.idFromName(name)
  async function post(path: string, body: unknown): Promise<unknown> {
    // A stub per call: workerd binds a stub to the request that made it.
    const res = await namespace.get(id).fetch(`${LIMITS_ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`rate-limit object answered ${res.status}: ${(await res.text()).slice(0, 200)}`)
    return res.json()
  }
  return {
    async take(specs, now) {
      return TakeResult.parse(await post('/take', { specs, now }))
    },
    async adjust(spec, delta, now) {
      await post('/adjust', { spec, delta, now })
    },
    async close() {},
  }
}
