import { aggregate } from '../core/aggregate.js'
import { estimateRequestTokens } from '../core/tokens.js'
import { decodeResponses, encodeResponse, ResponseStreamEncoder } from '../dialects/openai/responses.js'
import { ResponseObject, ResponsesRequest, ResponseStreamEvent } from '../dialects/openai/responses-schemas.js'
import { ErrorResponse } from '../dialects/openai/schemas.js'
import type { Provider } from '../providers/types.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { callContext, chatSse, gatewayHeaders, reportedModel } from './respond.js'
import { enforceToolPairs } from './tool-pairs.js'

export interface ResponsesRouteDeps {
  pipeline: Provider
  bodyLimit: number
  allowRemoteMedia: boolean
  repairToolPairs: boolean
}

const errors = {
  400: jsonContent(ErrorResponse, 'Invalid request (also: previous_response_id, since no state is kept)'),
  401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
  404: jsonContent(ErrorResponse, 'Unknown model'),
  413: jsonContent(ErrorResponse, 'Body too large'),
  429: jsonContent(ErrorResponse, 'Rate limited'),
  502: jsonContent(ErrorResponse, 'Upstream provider failed'),
  503: jsonContent(ErrorResponse, 'Provider unreachable'),
}

/** POST /v1/responses, stateless: every request carries its whole conversation. */
export function responsesRoutes(app: GatewayApp, deps: ResponsesRouteDeps): void {
  const { pipeline, bodyLimit } = deps
  const decodeOptions = { allowRemoteMedia: deps.allowRemoteMedia }

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/responses',
      operationId: 'createResponse',
      tags: ['Responses'],
      summary: 'OpenAI Responses API (stateless: store is always false), streaming or not, on any provider',
      security: [{ bearerAuth: [] }],
      request: { body: { content: { 'application/json': { schema: ResponsesRequest } }, required: true } },
      responses: {
        200: {
          description: 'A response object, or with stream: true an SSE stream of events starting with response.created, each with a sequence_number',
          content: { 'application/json': { schema: ResponseObject }, 'text/event-stream': { schema: ResponseStreamEvent } },
        },
        ...errors,
      },
    },
    async (c) => {
      const body = await readJson(c, ResponsesRequest, bodyLimit)
      const { req, wireIndex, namespaces } = decodeResponses(body, decodeOptions)
      req.messages = enforceToolPairs(req.messages, deps.repairToolPairs, {
        call: 'function_call',
        result: 'function_call_output',
        where: (i) => (wireIndex[i] >= 0 ? `input[${wireIndex[i]}]` : 'instructions'),
      })
      // Only used when the provider reports no usage; computed lazily then.
      const meta = reportedModel(c, {
        model: body.model,
        body,
        namespaces,
        get inputTokens() {
          return estimateRequestTokens(req)
        },
      })
      const ctx = callContext(c)
      if (!req.stream) {
        const result = await aggregate(pipeline.chat(req, ctx))
        return c.json(encodeResponse(result, meta), 200, gatewayHeaders(ctx, c))
      }
      const enc = new ResponseStreamEncoder(meta)
      return chatSse(c, pipeline, req, enc)
    },
  )
}
