import { z } from '@hono/zod-openapi'
import { estimateTextTokens } from '../../core/tokens.js'
import type { EmbedRequest, EmbedResult } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * POST /v1/embeddings in OpenAI's wire format. `input` is a string, an array
 * of strings, an array of token ids, or an array of such arrays. Vectors go
 * back as float arrays or, with `encoding_format: "base64"`, as base64 of
 * little-endian float32: the `openai` client asks for base64 when the caller
 * sets nothing, and reads a float array as an empty vector.
 */

/** Inputs one request may carry; the gateway splits them into provider-sized batches. */
export const MAX_EMBEDDING_INPUTS = 100_000

const TokenArray = z.array(z.number().int().min(0)).min(1)

export const EmbeddingRequest = z
  .looseObject({
    model: z.string().min(1),
    input: z.union([z.string(), z.array(z.string()).min(1).max(MAX_EMBEDDING_INPUTS), TokenArray, z.array(TokenArray).min(1).max(MAX_EMBEDDING_INPUTS)]).openapi({
      description: 'A string, an array of strings, an array of token ids, or an array of token-id arrays (token ids only for providers that accept them).',
    }),
    encoding_format: z.enum(['float', 'base64']).optional(),
    dimensions: z.number().int().min(1).optional(),
    user: z.string().optional(),
  })
  .openapi('CreateEmbeddingRequest')
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>

export const EmbeddingResponse = z
  .object({
    object: z.literal('list'),
    data: z.array(
      z.object({
        object: z.literal('embedding'),
        index: z.number().int(),
        embedding: z.union([z.array(z.number()), z.string()]).openapi({ description: 'Float array, or base64 of little-endian float32 with encoding_format base64.' }),
      }),
    ),
    model: z.string(),
    usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
  })
  .openapi('CreateEmbeddingResponse')

export function decodeEmbedding(body: EmbeddingRequest): EmbedRequest {
  const req: EmbedRequest = { model: body.model, input: [] }
  const input = body.input
  if (typeof input === 'string') {
    if (input.length === 0) throw emptyInput('input')
    req.input = [input]
  } else if (typeof input[0] === 'number') {
    req.tokens = [input as number[]]
  } else if (typeof input[0] === 'string') {
    const texts = input as string[]
    const empty = texts.findIndex((t) => t.length === 0)
    if (empty !== -1) throw emptyInput(`input[${empty}]`)
    req.input = texts
  } else {
    req.tokens = input as number[][]
  }
  if (body.dimensions !== undefined) req.dimensions = body.dimensions
  if (body.user !== undefined) req.user = body.user
  return req
}

function emptyInput(param: string): GatewayError {
  return new GatewayError('invalid_request', `Invalid value for '${param}': an empty string cannot be embedded.`, { param, code: 'invalid_value' })
}

export interface EmbeddingMeta {
  /** The model name the client asked for. */
  model: string
  encoding: 'float' | 'base64'
}

export function encodeEmbeddingResult(req: EmbedRequest, result: EmbedResult, meta: EmbeddingMeta): z.infer<typeof EmbeddingResponse> {
  const count = req.tokens?.length ?? req.input.length
  if (result.embeddings.length !== count) {
    throw new GatewayError('upstream', `The provider returned ${result.embeddings.length} embeddings for ${count} inputs.`, { code: 'embedding_count_mismatch' })
  }
  const promptTokens = result.usage?.inputTokens ?? estimateInputTokens(req)
  return {
    object: 'list',
    data: result.embeddings.map((v, index) => ({ object: 'embedding' as const, index, embedding: meta.encoding === 'base64' ? float32Base64(v) : v })),
    model: meta.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  }
}

/** The documented estimate (core/tokens.ts) when a provider reports no count; token ids count themselves. */
function estimateInputTokens(req: EmbedRequest): number {
  if (req.tokens) return req.tokens.reduce((n, t) => n + t.length, 0)
  return req.input.reduce((n, t) => n + estimateTextTokens(t), 0)
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Base64 of the vector as little-endian float32, exactly as OpenAI encodes it. */
export function float32Base64(vector: number[]): string {
  const bytes = new Uint8Array(vector.length * 4)
  if (LITTLE_ENDIAN) new Float32Array(bytes.buffer).set(vector)
  else {
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i], true)
  }
  // Node, Bun and Workers (nodejs_compat) have Buffer, whose native encoder is far faster than btoa over a binary string.
  const B = (globalThis as { Buffer?: { from(b: ArrayBuffer): { toString(enc: 'base64'): string } } }).Buffer
  if (B) return B.from(bytes.buffer).toString('base64')
  let binary = ''
  // String.fromCharCode takes arguments: stay well under engines' argument limits.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}
