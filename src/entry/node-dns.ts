import { lookup as dnsLookup } from 'node:dns'
import { lookup } from 'node:dns/promises'
import type { LookupFunction } from 'node:net'
import { isBlockedAddress } from '../providers/shared/address-guard.js'
import type { ResolveHost } from '../providers/shared/inline-media.js'

/** Every address a name resolves to, as the system resolver gives them (for the media fetcher's SSRF check). */
export const nodeResolveHost: ResolveHost = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address)

/**
 * The socket-level half of the SSRF guard: the connection itself refuses a
 * private, loopback or link-local address, so a name that resolved to a public
 * address when checked and to a private one when connecting (DNS rebinding)
 * is refused too.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0)
    const list = addresses as unknown as Array<{ address: string; family: number }>
    const blocked = list.find((a) => isBlockedAddress(a.address))
    if (blocked || list.length === 0) {
      const refused = Object.assign(new Error(`${hostname} resolves to ${blocked?.address ?? 'no address'}, which linked media may not come from`), { code: 'EADDRBLOCKED' })
      return callback(refused, '', 0)
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list)
    callback(null, list[0].address, list[0].family)
  })
}
