import { decodeEmbedding, EmbeddingRequest, EmbeddingResponse, encodeEmbeddingResult } from '../dialects/openai/embeddings.js'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import { GatewayError } from '../errors.js'
import type { Provider } from '../providers/types.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { callContext } from './respond.js'

export interface EmbeddingRouteDeps {
  pipeline: Provider
  bodyLimit: number
}

const HOW_TO_CONFIGURE =
  'Embeddings need a provider with an embeddings API in gateway.config.json, e.g. {"id":"ollama","type":"ollama"} and model "ollama/nomic-embed-text", ' +
  'an "openai-compatible" or "azure-openai" provider, or {"id":"local","type":"local-embeddings"} for the built-in offline model "local/universal-sentence-encoder-lite". List models with GET /v1/models.'

export function embeddingRoutes(app: GatewayApp, deps: EmbeddingRouteDeps): void {
  const { pipeline, bodyLimit } = deps

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/embeddings',
      operationId: 'createEmbedding',
      tags: ['Embeddings'],
      summary: 'Embedding vectors for text (or token ids, where the provider takes them); large inputs are batched',
      security: [{ bearerAuth: [] }],
      request: { body: { content: { 'application/json': { schema: EmbeddingRequest } }, required: true } },
      responses: {
        200: jsonContent(EmbeddingResponse, 'The embeddings, in input order'),
        400: jsonContent(ErrorResponse, 'Invalid request, or the model has no embeddings API'),
        401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
        404: jsonContent(ErrorResponse, 'No configured provider serves the model'),
        413: jsonContent(ErrorResponse, 'Body too large'),
        429: jsonContent(ErrorResponse, 'Rate limited'),
        502: jsonContent(ErrorResponse, 'Upstream provider failed'),
        503: jsonContent(ErrorResponse, 'Provider unreachable'),
      },
    },
    async (c) => {
      const body = await readJson(c, EmbeddingRequest, bodyLimit)
      const req = decodeEmbedding(body)
      if (!pipeline.embed) throw new GatewayError('invalid_request', `This gateway's pipeline has no embeddings stage. ${HOW_TO_CONFIGURE}`, { code: 'embeddings_not_supported' })
      const ctx = callContext(c)
      let result
      try {
        result = await pipeline.embed(req, ctx)
      } catch (err) {
        const e = GatewayError.from(err)
        // Only when the router found no provider able to embed: a provider's own 404 (e.g. an Ollama model not pulled) says what to do itself.
        if (!ctx.meta?.provider && (e.code === 'model_not_found' || e.code === 'embeddings_not_supported')) {
          throw new GatewayError(e.kind, `${e.message} ${HOW_TO_CONFIGURE}`, { status: e.status, param: e.param, code: e.code, cause: e })
        }
        throw e
      }
      const headers: Record<string, string> = {}
      if (typeof ctx.meta?.servedModel === 'string') headers['x-gateway-model'] = ctx.meta.servedModel
      return c.json(encodeEmbeddingResult(req, result, { model: body.model, encoding: body.encoding_format ?? 'float' }), 200, headers)
    },
  )
}
