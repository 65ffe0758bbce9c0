import { z } from 'zod'
import type { EmbedRequest, EmbedResult } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedInBatches, type BatchOptions } from '../shared/embed-batches.js'
import { googlePost, type GoogleTransport } from './transport.js'

const PredictAnswer = z.looseObject({
  predictions: z.array(z.looseObject({ embeddings: z.looseObject({ values: z.array(z.number()), statistics: z.looseObject({ token_count: z.number().optional() }).optional() }) })),
})
const BatchEmbedAnswer = z.looseObject({ embeddings: z.array(z.looseObject({ values: z.array(z.number()) })) })

function parse<T>(id: string, schema: z.ZodType<T>, json: unknown): T {
  const r = schema.safeParse(json)
  if (!r.success) throw new GatewayError('upstream', `Provider "${id}" sent an embedding answer of an unexpected shape.`)
  return r.data
}

async function jsonOf(id: string, res: { json(): Promise<unknown> }): Promise<unknown> {
  try {
    return await res.json()
  } catch (err) {
    throw new GatewayError('upstream', `Provider "${id}" sent an embedding answer that is not JSON.`, { cause: err })
  }
}

/** Vertex's gemini-embedding-001 takes one instance per :predict call; the text-embedding models take up to 250. */
export function vertexBatchSize(model: string, configured: number): number {
  return model.startsWith('gemini-embedding') ? 1 : configured
}

/** Vertex AI: `:predict` on a text-embedding model; token counts come back per text. */
export function vertexEmbed(t: GoogleTransport, req: EmbedRequest, batch: BatchOptions, signal: AbortSignal): Promise<EmbedResult> {
  const size = vertexBatchSize(req.model, batch.batchSize)
  return embedInBatches(t.id, req.input, { batchSize: size, concurrency: batch.concurrency }, signal, async (texts, s) => {
    const body = { instances: texts.map((content) => ({ content })), parameters: { autoTruncate: true, ...(req.dimensions !== undefined ? { outputDimensionality: req.dimensions } : {}) } }
    const answer = parse(t.id, PredictAnswer, await jsonOf(t.id, await googlePost(t, t.methodUrl(req.model, 'predict'), body, s)))
    let tokens = 0
    for (const p of answer.predictions) tokens += p.embeddings.statistics?.token_count ?? 0
    return { model: req.model, embeddings: answer.predictions.map((p) => p.embeddings.values), inputTokens: tokens }
  })
}

/** Gemini API: `:batchEmbedContents`, at most 100 requests per call; it reports no token counts. */
export function geminiEmbed(t: GoogleTransport, req: EmbedRequest, batch: BatchOptions, signal: AbortSignal): Promise<EmbedResult> {
  const model = `models/${req.model}`
  return embedInBatches(t.id, req.input, { batchSize: Math.min(batch.batchSize, 100), concurrency: batch.concurrency }, signal, async (texts, s) => {
    const body = { requests: texts.map((text) => ({ model, content: { parts: [{ text }] }, ...(req.dimensions !== undefined ? { outputDimensionality: req.dimensions } : {}) })) }
    const answer = parse(t.id, BatchEmbedAnswer, await jsonOf(t.id, await googlePost(t, t.methodUrl(req.model, 'batchEmbedContents'), body, s)))
    return { model: req.model, embeddings: answer.embeddings.map((e) => e.values) }
  })
}
