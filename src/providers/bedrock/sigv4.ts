/**
 * AWS Signature Version 4 over WebCrypto, so the same code signs on Node, Bun
 * and Workers without the AWS SDK. Only header signing (not presigned URLs),
 * which is what Bedrock's JSON APIs need.
 */
export interface AwsCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface SignInput {
  method: string
  url: string
  /** Headers to send and sign (names in any case); `host` is taken from the URL. */
  headers: Record<string, string>
  body: string | Uint8Array
  region: string
  service: string
  now?: Date
  /** Send the payload hash as x-amz-content-sha256 (Bedrock accepts it; the AWS test suite omits it). */
  contentHashHeader?: boolean
}

const enc = new TextEncoder()
const subtle = globalThis.crypto.subtle

export interface Signer {
  /** The headers to send: the given ones plus host-independent x-amz-* and authorization. */
  sign(input: SignInput): Promise<Record<string, string>>
}

/**
 * A signer for one set of credentials. The signing key depends only on the
 * day, region and service, so it is derived once per day and reused.
 */
export function sigV4Signer(credentials: AwsCredentials): Signer {
  const keys = new Map<string, Promise<CryptoKey>>()

  function signingKey(date: string, region: string, service: string): Promise<CryptoKey> {
    const id = `${date}/${region}/${service}`
    let key = keys.get(id)
    if (!key) {
      if (keys.size > 8) keys.clear()
      key = (async () => {
        let k = await hmac(await hmacKey(enc.encode(`AWS4${credentials.secretAccessKey}`)), date)
        k = await hmac(await hmacKey(k), region)
        k = await hmac(await hmacKey(k), service)
        k = await hmac(await hmacKey(k), 'aws4_request')
        return hmacKey(k)
      })()
      keys.set(id, key)
      key.catch(() => keys.delete(id))
    }
    return key
  }

  return {
    async sign(input) {
      const url = new URL(input.url)
      const amzDate = (input.now ?? new Date()).toISOString().replace(/[:-]|\.\d{3}/g, '')
      const date = amzDate.slice(0, 8)
      const payloadHash = hex(await subtle.digest('SHA-256', typeof input.body === 'string' ? enc.encode(input.body) : (input.body as Uint8Array<ArrayBuffer>)))
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v
      headers['x-amz-date'] = amzDate
      if (input.contentHashHeader !== false) headers['x-amz-content-sha256'] = payloadHash
      if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken
      const signed: Record<string, string> = { ...headers, host: url.host }
      const names = Object.keys(signed).sort()
      const canonicalHeaders = names.map((n) => `${n}:${signed[n].trim().replace(/\s+/g, ' ')}\n`).join('')
      const signedHeaders = names.join(';')
      const canonical = [input.method.toUpperCase(), canonicalUri(url.pathname), canonicalQuery(url.searchParams), canonicalHeaders, signedHeaders, payloadHash].join('\n')
      const scope = `${date}/${input.region}/${input.service}/aws4_request`
      const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(await subtle.digest('SHA-256', enc.encode(canonical)))}`
      const signature = hex(await subtle.sign('HMAC', await signingKey(date, input.region, input.service), enc.encode(stringToSign)))
      headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`
      return headers
    },
  }
}

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters. */
export function awsEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Non-S3 services sign the path as sent, encoded once more (so `%3A` is signed as `%253A`). */
function canonicalUri(pathname: string): string {
  return pathname.split('/').map(awsEncode).join('/') || '/'
}

function canonicalQuery(params: URLSearchParams): string {
  const pairs: Array<[string, string]> = []
  for (const [k, v] of params) pairs.push([awsEncode(k), awsEncode(v)])
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

function hmacKey(raw: Uint8Array<ArrayBuffer> | ArrayBuffer): Promise<CryptoKey> {
  return subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
}

async function hmac(key: CryptoKey, data: string): Promise<ArrayBuffer> {
  return subtle.sign('HMAC', key, enc.encode(data))
}

function hex(buf: ArrayBuffer): string {
  const b = new Uint8Array(buf)
  let out = ''
  for (let i = 0; i < b.length; i++) out += b[i].toString(16).padStart(2, '0')
  return out
}
