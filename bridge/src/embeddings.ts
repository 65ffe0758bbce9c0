/**
 * POST /v1/embeddings over the proposed `vscode.lm.computeEmbeddings` API,
 * which only some VS Code builds expose to an extension: elsewhere it is 501.
 */
import { linkCancellation } from './cancellation.js'
import { BridgeError, toBridgeError } from './errors.js'
import type { EmbeddingsBody } from './protocol.js'
import type { LmApi } from './vscode-api.js'

export function embeddingsSupported(api: LmApi): boolean {
  return typeof api.lm.computeEmbeddings === 'function'
}

export function embeddingsUnsupported(api: LmApi): BridgeError {
  return new BridgeError(501, 'not_supported', `This VS Code (${api.version}) exposes no embeddings API to extensions.`)
}

export async function computeEmbeddings(api: LmApi, body: EmbeddingsBody, signal: AbortSignal): Promise<number[][]> {
  const compute = api.lm.computeEmbeddings
  if (!compute) throw embeddingsUnsupported(api)
  const known = api.lm.embeddingModels
  if (Array.isArray(known) && !known.includes(body.model)) {
    throw new BridgeError(404, 'NotFound', `No VS Code embeddings model "${body.model}" (available: ${known.join(', ') || 'none'}).`)
  }
  const cancellation = linkCancellation(api, signal)
  try {
    const result = await compute.call(api.lm, body.model, body.input, cancellation.token)
    return result.map((e) => Array.from(e.values))
  } catch (err) {
    throw toBridgeError(err)
  } finally {
    cancellation.dispose()
  }
}
