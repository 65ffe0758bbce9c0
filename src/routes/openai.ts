import { z } from '@hono/zod-openapi'
import { ChatChunkEncoder, decodeChat, encodeChatResult } from '../dialects/openai/chat.js'
import { CompletionChunkEncoder, decodeCompletion, encodeCompletionResult } from '../dialects/openai/completions.js'
import { openAIErrorBody } from '../dialects/openai/errors.js'
import {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionRequest,
  CompletionResponse,
  ErrorResponse,
  Model,
  ModelList,
} from '../dialects/openai/schemas.js'
import { GatewayError } from '../errors.js'
import type { ModelInfo } from '../core/types.js'
import type { Router } from '../pipeline/router.js'
import type { Provider } from '../providers/types.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { chatJson, chatSse, reportedModel } from './respond.js'

export interface OpenAIRouteDeps {
  pipeline: Provider
  router: Router
  bodyLimit: number
  allowRemoteMedia: boolean
  /** Models only the calling key sees (its fine-tuned adapters), listed after the others. */
  ownModels?: (keyId: string | undefined) => ModelInfo[]
}

const errors = {
  400: jsonContent(ErrorResponse, 'Invalid request'),
  401: jsonContent(ErrorResponse, 'Missing or wrong API key'),
  404: jsonContent(ErrorResponse, 'Unknown model'),
  413: jsonContent(ErrorResponse, 'Body too large'),
  429: jsonContent(ErrorResponse, 'Rate limited'),
  502: jsonContent(ErrorResponse, 'Upstream provider failed'),
  503: jsonContent(ErrorResponse, 'Provider unreachable'),
}

const security = [{ bearerAuth: [] }]

/** OpenAI's in-band stream error: a data line whose JSON has `error` (the SDK throws it as an APIError). */
const inbandError = (e: GatewayError) => [{ data: JSON.stringify(openAIErrorBody(e)) }]

function toWireModel(m: ModelInfo) {
  return { id: m.id, object: 'model' as const, created: m.created ?? 0, owned_by: m.ownedBy }
}

export function openAIRoutes(app: GatewayApp, deps: OpenAIRouteDeps): void {
  const { pipeline, router, bodyLimit } = deps
  const decodeOptions = { allowRemoteMedia: deps.allowRemoteMedia }

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/models',
      operationId: 'listModels',
      tags: ['Models'],
      summary: 'List the models every provider serves, as provider/model, and the configured aliases',
      security,
      responses: { 200: jsonContent(ModelList, 'The models'), 401: errors[401] },
    },
    async (c) => {
      const models = [...(await router.models(c.req.raw.signal)), ...(deps.ownModels?.(c.get('keyId')) ?? [])]
      return c.json({ object: 'list', data: models.map(toWireModel) })
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/models/{model}',
      honoPath: '/v1/models/:model{.+}',
      operationId: 'retrieveModel',
      tags: ['Models'],
      summary: 'One model, by any name a client may send (provider/model, bare id, alias)',
      security,
      request: { params: z.object({ model: z.string().openapi({ param: { name: 'model', in: 'path' }, example: 'mock/mock-1' }) }) },
      responses: { 200: jsonContent(Model, 'The model'), 401: errors[401], 404: errors[404] },
    },
    async (c) => {
      const name = decodeURIComponent(c.req.param('model') ?? '')
      const models = [...(await router.models(c.req.raw.signal)), ...(deps.ownModels?.(c.get('keyId')) ?? [])]
      let found = models.find((m) => m.id === name)
      if (!found) {
        const targets = await router.resolve(name, c.req.raw.signal).catch(() => undefined)
        const t = targets?.[0]
        const served = t && models.find((m) => m.id === `${t.provider.id}/${t.model}`)
        if (served) found = { ...served, id: name }
      }
      if (!found) throw new GatewayError('not_found', `The model '${name}' does not exist.`, { code: 'model_not_found', param: 'model' })
      return c.json(toWireModel(found))
    },
  )

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/chat/completions',
      operationId: 'createChatCompletion',
      tags: ['Chat'],
      summary: 'Chat completion, streaming (SSE) or not, on any provider',
      security,
      request: { body: { content: { 'application/json': { schema: ChatCompletionRequest } }, required: true } },
      responses: {
        200: {
          description: 'A chat completion, or with stream: true an SSE stream of chunks ending in data: [DONE]',
          content: { 'application/json': { schema: ChatCompletionResponse }, 'text/event-stream': { schema: ChatCompletionChunk } },
        },
        ...errors,
      },
    },
    async (c) => {
      const body = await readJson(c, ChatCompletionRequest, bodyLimit)
      const req = decodeChat(body, decodeOptions)
      const meta = reportedModel(c, { model: body.model })
      if (!req.stream) return chatJson(c, pipeline, req, (r) => encodeChatResult(r, meta))
      const enc = new ChatChunkEncoder(meta, body.stream_options?.include_usage === true)
      return chatSse(
        c,
        pipeline,
        req,
        { start: () => enc.start(), push: (e) => enc.push(e), end: () => enc.end(), error: inbandError, progress: (p) => enc.progress(p), omitEmpty: () => enc.omitEmpty() },
        body.stream_options,
      )
    },
  )

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/completions',
      operationId: 'createCompletion',
      tags: ['Completions'],
      summary: 'Legacy text completion on chat models (the prompt is sent as one user message)',
      security,
      request: { body: { content: { 'application/json': { schema: CompletionRequest } }, required: true } },
      responses: {
        200: { description: 'A text_completion, or an SSE stream of them', content: { 'application/json': { schema: CompletionResponse } } },
        ...errors,
      },
    },
    async (c) => {
      const body = await readJson(c, CompletionRequest, bodyLimit)
      const { req, echo } = decodeCompletion(body)
      const meta = reportedModel(c, { model: body.model })
      if (!req.stream) return chatJson(c, pipeline, req, (r) => encodeCompletionResult(r, meta, echo))
      const enc = new CompletionChunkEncoder(meta, body.stream_options?.include_usage === true, echo)
      return chatSse(c, pipeline, req, { start: () => enc.start(), push: (e) => enc.push(e), end: () => enc.end(), error: inbandError, progress: (p) => enc.progress(p) }, body.stream_options)
    },
  )
}
