import type { Context } from 'hono'
import type { z } from 'zod'
import { formatPath } from '../config.js'
import { GatewayError } from '../errors.js'

/**
 * Reads a JSON body under a byte limit and validates it. Every failure is a
 * GatewayError naming the problem (and the field, for validation errors).
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, limit: number): Promise<z.infer<S>> {
  const text = await readText(c.req.raw, limit)
  if (text.length === 0) throw new GatewayError('invalid_request', 'The request body is empty; send a JSON object.', { code: 'empty_body' })
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new GatewayError('invalid_request', 'We could not parse the JSON body of your request: it is not valid JSON.', { code: 'invalid_json' })
  }
  return validate(schema, value)
}

export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('invalid_request', 'The request body must be a JSON object.', { code: 'invalid_json' })
  }
  const parsed = schema.safeParse(value, { reportInput: true })
  if (parsed.success) return parsed.data
  throw validationError(parsed.error.issues)
}

export function validationError(issues: ReadonlyArray<z.core.$ZodIssue>): GatewayError {
  const issue = deepest(issues)
  const param = formatPath(issue.path)
  const input = (issue as { input?: unknown }).input
  // A union (e.g. embeddings' input: string | string[] | token ids) reports a missing field as invalid_union.
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_union') && input === undefined && issue.path.length > 0
  let detail = issue.message.replace(/^Invalid input: /, '')
  const disc = issue as { discriminator?: string; options?: unknown[] }
  if (issue.code === 'invalid_union' && disc.discriminator && disc.options) {
    const given = input && typeof input === 'object' ? (input as Record<string, unknown>)[disc.discriminator] : undefined
    if (given === undefined) return new GatewayError('invalid_request', `Missing required parameter: '${param}'.`, { param, code: 'missing_required_parameter' })
    detail = `${JSON.stringify(given)} is not one of ${disc.options.map((o) => `'${String(o)}'`).join(', ')}`
  } else if (issue.code === 'invalid_union') {
    const expected = [...new Set(issue.errors.flatMap((b) => b.filter((x) => x.code === 'invalid_type').map((x) => (x as { expected: string }).expected)))]
    detail = expected.length ? `expected ${expected.join(' or ')}, got ${typeName(input)}` : `got an unexpected value (${typeName(input)})`
  } else if (detail === 'Invalid input') detail = `got an unexpected value (${typeName(input)})`
  const message = missing ? `Missing required parameter: '${param}'.` : `Invalid value for '${param || 'body'}': ${detail}.`
  return new GatewayError('invalid_request', message, { param: param || null, code: missing ? 'missing_required_parameter' : 'invalid_value' })
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** For union failures zod nests the branch errors; the most specific one names the real field. */
function deepest(issues: ReadonlyArray<z.core.$ZodIssue>): z.core.$ZodIssue {
  let best = issues[0]
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && issue.errors.length) {
      for (const branch of issue.errors) {
        if (!branch.length) continue
        const inner = deepest(branch.map((b) => ({ ...b, path: [...issue.path, ...b.path] })))
        if (inner.path.length > best.path.length) best = inner
      }
    } else if (issue.path.length > best.path.length) best = issue
  }
  return best
}

async function readText(req: Request, limit: number): Promise<string> {
  const declared = req.headers.get('content-length')
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit)
  // With a declared length, text() lets the runtime read the body directly; touching
  // req.body would first build a ReadableStream (on @hono/node-server, a whole Request).
  if (declared !== null) return declared === '0' ? '' : req.text()
  if (!req.body) return ''
  // Chunked upload: count as it arrives so an endless body is cut at the limit.
  const reader = req.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  return new TextDecoder().decode(concat(chunks, size))
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

export function tooLarge(limit: number): GatewayError {
  return new GatewayError('payload_too_large', `The request body is larger than this gateway's limit of ${limit} bytes.`, { code: 'request_too_large' })
}
