/**
 * Which IP addresses a gateway must never fetch from on a client's behalf:
 * loopback, private, link-local (cloud metadata at 169.254.169.254), carrier
 * NAT, multicast, reserved and documentation ranges, in IPv4 and IPv6 (with
 * IPv4 embedded in mapped, NAT64 and 6to4 addresses checked as IPv4).
 */

type Range = [bigint, number]

const V4: Range[] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
].map(([ip, bits]) => [parseV4(ip as string)!, bits as number])

const V6: Range[] = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001:db8::', 32],
  ['2001::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
].map(([ip, bits]) => [parseV6(ip as string)!, bits as number])

function parseV4(ip: string): bigint | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined
    value = (value << 8n) | BigInt(Number(p))
  }
  return value
}

function parseV6(text: string): bigint | undefined {
  let ip = text.replace(/%.*$/, '')
  let tail: bigint | undefined
  const lastColon = ip.lastIndexOf(':')
  if (ip.includes('.', lastColon)) {
    tail = parseV4(ip.slice(lastColon + 1))
    if (tail === undefined) return undefined
    ip = `${ip.slice(0, lastColon + 1)}${((tail >> 16n) & 0xffffn).toString(16)}:${(tail & 0xffffn).toString(16)}`
  }
  const halves = ip.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] ? halves[0].split(':') : []
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : []
  const missing = 8 - head.length - rest.length
  if (halves.length === 1 ? head.length !== 8 : missing < 1) return undefined
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest]
  let value = 0n
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined
    value = (value << 16n) | BigInt(parseInt(g, 16))
  }
  return value
}

function inRanges(value: bigint, width: number, ranges: Range[]): boolean {
  return ranges.some(([base, bits]) => value >> BigInt(width - bits) === base >> BigInt(width - bits))
}

/** The IP literal in a URL host (`[::1]` → `::1`), or undefined for a DNS name. */
export function ipLiteral(host: string): string | undefined {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (parseV4(h) !== undefined || (h.includes(':') && parseV6(h) !== undefined)) return h
  return undefined
}

/** True for any address that is not a public unicast one (and for text that is no address at all). */
export function isBlockedAddress(ip: string): boolean {
  const v4 = parseV4(ip)
  if (v4 !== undefined) return inRanges(v4, 32, V4)
  const v6 = parseV6(ip)
  if (v6 === undefined) return true
  const high96 = v6 >> 32n
  const low32 = v6 & 0xffffffffn
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64): judged as the IPv4 inside.
  if (high96 === 0xffffn || high96 === 0n || high96 === 0x64ff9b0000000000000000n) return inRanges(low32, 32, V4) || v6 === 0n || v6 === 1n
  // 2002:a.b.c.d::/48 (6to4) carries its IPv4 in bits 16..48.
  if (v6 >> 112n === 0x2002n) return inRanges((v6 >> 80n) & 0xffffffffn, 32, V4)
  return inRanges(v6, 128, V6)
}
