import { z } from 'zod'
import type { EmbedRequest, EmbedResult } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedInBatches, type BatchOptions } from '../shared/embed-batches.js'

/**
 * Embeddings through InvokeModel. Titan embeds one text per call (calls run
 * with bounded concurrency); Cohere takes up to 96 texts per call. Bedrock
 * reports input tokens in the `x-amzn-bedrock-input-token-count` header.
 */
export type Invoke = (modelId: string, body: unknown, signal: AbortSignal) => Promise<{ json: unknown; inputTokens: number | undefined }>

/** Cohere Embed on Bedrock accepts at most 96 texts per call. */
export const COHERE_MAX_BATCH = 96

const TitanAnswer = z.looseObject({ embedding: z.array(z.number()), inputTextTokenCount: z.number().optional() })
const CohereAnswer = z.looseObject({
  embeddings: z.union([z.array(z.array(z.number())), z.looseObject({ float: z.array(z.array(z.number())) })]),
})

export function embedFamily(model: string): 'titan' | 'cohere' | undefined {
  if (/(^|\.)amazon\.titan-embed-text/.test(model)) return 'titan'
  if (/(^|\.)cohere\.embed-/.test(model)) return 'cohere'
  return undefined
}

export async function bedrockEmbed(provider: string, req: EmbedRequest, invoke: Invoke, batch: BatchOptions, cohereInputType: string, signal: AbortSignal): Promise<EmbedResult> {
  const family = embedFamily(req.model)
  if (!family) {
    throw new GatewayError('invalid_request', `Provider "${provider}" (Bedrock) embeds with amazon.titan-embed-text-* and cohere.embed-* models, not "${req.model}".`, { param: 'model', code: 'model_not_supported' })
  }
  if (family === 'titan') {
    const v2 = req.model.includes('titan-embed-text-v2')
    if (req.dimensions !== undefined && !v2) throw new GatewayError('invalid_request', `${req.model} has a fixed size; "dimensions" needs amazon.titan-embed-text-v2:0 (256, 512 or 1024).`, { param: 'dimensions' })
    // Titan takes one text per call: each "batch" is one input.
    return embedInBatches(provider, req.input, { batchSize: 1, concurrency: batch.concurrency }, signal, async ([text], s) => {
      const body: Record<string, unknown> = { inputText: text }
      if (v2) {
        body.normalize = true
        if (req.dimensions !== undefined) body.dimensions = req.dimensions
      }
      const { json, inputTokens } = await invoke(req.model, body, s)
      const answer = parse(provider, TitanAnswer, json)
      return { model: req.model, embeddings: [answer.embedding], inputTokens: inputTokens ?? answer.inputTextTokenCount }
    })
  }
  return embedInBatches(provider, req.input, { batchSize: Math.min(batch.batchSize, COHERE_MAX_BATCH), concurrency: batch.concurrency }, signal, async (texts, s) => {
    const body: Record<string, unknown> = { texts, input_type: cohereInputType, truncate: 'END', embedding_types: ['float'] }
    if (req.dimensions !== undefined) body.output_dimension = req.dimensions
    const { json, inputTokens } = await invoke(req.model, body, s)
    const answer = parse(provider, CohereAnswer, json)
    return { model: req.model, embeddings: Array.isArray(answer.embeddings) ? answer.embeddings : answer.embeddings.float, inputTokens }
  })
}

function parse<T>(provider: string, schema: z.ZodType<T>, json: unknown): T {
  const r = schema.safeParse(json)
  if (!r.success) throw new GatewayError('upstream', `Provider "${provider}" sent an embedding answer of an unexpected shape.`)
  return r.data
}
