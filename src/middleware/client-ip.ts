import type { Context, MiddlewareHandler } from 'hono'
import { GatewayError } from '../errors.js'
import { internalIdentity } from './internal.js'
import type { AppEnv } from '../routes/env.js'

/** An address range: version, network bits and prefix length. */
interface Cidr {
  v6: boolean
  net: bigint
  bits: number
}

export function parseIp(ip: string): { v6: boolean; value: bigint } | undefined {
  let s = ip.trim()
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s)
  if (mapped) s = mapped[1]
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) {
    const parts = s.split('.').map(Number)
    if (parts.some((p) => p > 255)) return undefined
    return { v6: false, value: parts.reduce((n, p) => (n << 8n) | BigInt(p), 0n) }
  }
  if (!s.includes(':')) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] ? halves[0].split(':') : []
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : []
  // An embedded IPv4 tail (e.g. 64:ff9b::1.2.3.4) counts as two groups.
  const expand = (groups: string[]) =>
    groups.flatMap((g) => {
      if (g.includes('.')) {
        const v4 = parseIp(g)
        if (!v4 || v4.v6) return ['x']
        return [((v4.value >> 16n) & 0xffffn).toString(16), (v4.value & 0xffffn).toString(16)]
      }
      return [g]
    })
  const h = expand(head)
  const t = expand(tail)
  const missing = 8 - h.length - t.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...h, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...t]
  let value = 0n
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined
    value = (value << 16n) | BigInt(parseInt(g, 16))
  }
  return { v6: true, value }
}

export function parseCidr(text: string): Cidr {
  const [addr, len] = text.split('/')
  const ip = parseIp(addr)
  if (!ip) throw new Error(`not an IP address or CIDR: "${text}"`)
  const max = ip.v6 ? 128 : 32
  const bits = len === undefined ? max : Number(len)
  if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`bad prefix length in "${text}"`)
  const shift = BigInt(max - bits)
  return { v6: ip.v6, net: (ip.value >> shift) << shift, bits }
}

export function inCidrs(ip: string, cidrs: Cidr[]): boolean {
  const p = parseIp(ip)
  if (!p) return false
  for (const c of cidrs) {
    if (c.v6 !== p.v6) continue
    const shift = BigInt((c.v6 ? 128 : 32) - c.bits)
    if ((p.value >> shift) << shift === c.net) return true
  }
  return false
}

export interface ClientIpOptions {
  trustedProxies: string[]
  ipAllow: string[]
  /** The peer address of the connection, from the runtime (undefined where unknown). */
  remoteAddress?: (c: Context) => string | undefined
}

/**
 * Works out the client's address: the connection's peer, or, when that peer
 * is a trusted proxy, the right-most untrusted address of X-Forwarded-For.
 * Then applies the allowlist. The address is used for the allowlist only: it
 * is not logged or stored.
 */
export function clientIp(options: ClientIpOptions): MiddlewareHandler<AppEnv> | undefined {
  const trusted = options.trustedProxies.map(parseCidr)
  const allow = options.ipAllow.map(parseCidr)
  if (allow.length === 0) return undefined
  return async (c, next) => {
    if (internalIdentity(c)) return next()
    const ip = resolveClientIp(c.req.raw.headers, options.remoteAddress?.(c), trusted)
    if (!ip || !inCidrs(ip, allow)) throw new GatewayError('permission', 'Your address is not allowed to use this gateway.', { code: 'ip_not_allowed' })
    await next()
  }
}

export function resolveClientIp(headers: Headers, peer: string | undefined, trusted: Cidr[]): string | undefined {
  if (!peer || !inCidrs(peer, trusted)) return peer
  const xff = headers.get('x-forwarded-for')
  if (!xff) return peer
  const hops = xff.split(',').map((h) => h.trim()).filter(Boolean)
  for (let i = hops.length - 1; i >= 0; i--) if (!inCidrs(hops[i], trusted)) return hops[i]
  return hops[0] ?? peer
}
