import { z } from 'zod'
import type { EmbedResult } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/** The provider options every embeddings-capable provider takes; the default size is the provider's own. */
export function embedBatchOptions(defaultSize: number) {
  return {
    /** Most inputs sent upstream in one call; larger requests are split. */
    embedBatchSize: z.number().int().positive().default(defaultSize),
    /** Sub-batches in flight at once for one request. */
    embedConcurrency: z.number().int().positive().default(4),
  }
}

/**
 * A vector of numbers, checked with one plain loop: a zod array of numbers
 * costs a per-element parse, which for 1,000 × 1,536 floats is most of a request.
 */
export const Vector = z.custom<number[]>((v) => {
  if (!Array.isArray(v)) return false
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'number') return false
  return true
}, 'expected an array of numbers')

export interface BatchOptions {
  batchSize: number
  concurrency: number
}

/** What one upstream call returns for one batch. */
export interface BatchResult {
  embeddings: number[][]
  inputTokens?: number
  model?: string
}

/**
 * Embeds `items` in sub-batches of at most `batchSize`, `concurrency` at a
 * time, and reassembles the vectors in input order. The first failing batch
 * fails the whole request (the others are aborted): a partial answer would
 * silently shift every index after the gap.
 */
export async function embedInBatches<T>(
  provider: string,
  items: T[],
  opts: BatchOptions,
  signal: AbortSignal,
  run: (batch: T[], signal: AbortSignal) => Promise<BatchResult>,
): Promise<EmbedResult> {
  const size = Math.max(1, opts.batchSize)
  const count = Math.ceil(items.length / size)
  if (count <= 1) {
    const r = checked(provider, await run(items, signal), items.length)
    return { model: r.model, embeddings: r.embeddings, ...(r.inputTokens !== undefined ? { usage: { inputTokens: r.inputTokens } } : {}) }
  }

  const ctrl = new AbortController()
  const onAbort = () => ctrl.abort(signal.reason)
  if (signal.aborted) ctrl.abort(signal.reason)
  else signal.addEventListener('abort', onAbort, { once: true })

  const results = new Array<BatchResult>(count)
  let next = 0
  let failure: GatewayError | undefined
  const worker = async () => {
    while (!failure && !ctrl.signal.aborted && next < count) {
      const i = next++
      const start = i * size
      const batch = items.slice(start, start + size)
      // A signal per batch, detached when it is done: listeners that upstream calls hang on it go with it.
      const child = new AbortController()
      const onFail = () => child.abort(ctrl.signal.reason)
      ctrl.signal.addEventListener('abort', onFail, { once: true })
      try {
        results[i] = checked(provider, await run(batch, child.signal), batch.length)
      } catch (err) {
        if (failure) return
        const e = GatewayError.from(err)
        failure =
          e.kind === 'cancelled'
            ? e
            : new GatewayError(e.kind, `Embedding batch ${i + 1} of ${count} (inputs ${start}-${start + batch.length - 1}) failed, so the whole request failed: ${e.message}`, {
                status: e.status,
                retryable: e.retryable,
                param: e.param,
                code: e.code,
                retryAfter: e.retryAfter,
                cause: e,
              })
        ctrl.abort(failure)
      } finally {
        ctrl.signal.removeEventListener('abort', onFail)
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(Math.max(1, opts.concurrency), count) }, worker))
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  if (failure) throw failure
  if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.')

  const embeddings: number[][] = []
  let inputTokens: number | undefined = 0
  for (const r of results) {
    for (const e of r.embeddings) embeddings.push(e)
    inputTokens = r.inputTokens === undefined || inputTokens === undefined ? undefined : inputTokens + r.inputTokens
  }
  return { model: results[0].model, embeddings, ...(inputTokens !== undefined ? { usage: { inputTokens } } : {}) }
}

function checked(provider: string, r: BatchResult, expected: number): BatchResult {
  if (r.embeddings.length !== expected) {
    throw new GatewayError('upstream', `Provider "${provider}" returned ${r.embeddings.length} embeddings for ${expected} inputs.`, { code: 'embedding_count_mismatch' })
  }
  return r
}
