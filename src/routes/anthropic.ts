import type { ChatEvent, ChatRequest } from '../core/types.js'
import { countPromptTokens, encodeCountTokens } from '../dialects/anthropic/count-tokens.js'
import { decodeMessages, encodeMessage, MessageStreamEncoder, type DecodableBody } from '../dialects/anthropic/messages.js'
import { CountTokensRequest, CountTokensResponse, ErrorResponse, MessageResponse, MessagesRequest, StreamEvent } from '../dialects/anthropic/schemas.js'
import type { Router } from '../pipeline/router.js'
import type { CallContext, Provider } from '../providers/types.js'
import { readJson } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'
import { callContext, chatJson, chatSse, gatewayHeaders, reportedModel } from './respond.js'
import { enforceToolPairs } from './tool-pairs.js'

export interface AnthropicRouteDeps {
  pipeline: Provider
  router: Router
  bodyLimit: number
  allowRemoteMedia: boolean
  /** Repair orphaned tool_use/tool_result pairs instead of answering 400. */
  repairToolPairs: boolean
  /** The request a model name stands for before routing (an `ft:` adapter: its base model, adapter applied), so counts are of what is sent. */
  expand?: (req: ChatRequest, ctx: CallContext) => Promise<ChatRequest>
}

const errors = {
  400: jsonContent(ErrorResponse, 'invalid_request_error'),
  401: jsonContent(ErrorResponse, 'authentication_error'),
  404: jsonContent(ErrorResponse, 'not_found_error (unknown model)'),
  413: jsonContent(ErrorResponse, 'request_too_large'),
  429: jsonContent(ErrorResponse, 'rate_limit_error'),
  500: jsonContent(ErrorResponse, 'api_error'),
  529: jsonContent(ErrorResponse, 'overloaded_error'),
}

const security = [{ bearerAuth: [] }]

/**
 * The Anthropic Messages API: POST /v1/messages and /v1/messages/count_tokens.
 * `?beta=true` (older SDKs), `anthropic-version` (any value, or none) and
 * `anthropic-beta` need no handling: the path match ignores the query and
 * the headers change nothing here.
 */
export function anthropicRoutes(app: GatewayApp, deps: AnthropicRouteDeps): void {
  const { pipeline, router, bodyLimit } = deps
  const decodeOptions = { allowRemoteMedia: deps.allowRemoteMedia }

  /** The provider's exact count when it has a tokenizer; resolving also turns an unknown model into a 404. */
  async function exactCounter(req: ChatRequest, ctx: CallContext) {
    const [t] = await router.resolve(req.model, ctx.signal)
    const count = t.provider.countTokens
    return count ? (r: ChatRequest) => count.call(t.provider, { ...r, model: t.model }, ctx) : undefined
  }

  function decode(body: DecodableBody): ChatRequest {
    const { req, wireIndex } = decodeMessages(body, decodeOptions)
    req.messages = enforceToolPairs(req.messages, deps.repairToolPairs, {
      call: 'tool_use',
      result: 'tool_result',
      where: (i) => (wireIndex[i] >= 0 ? `messages[${wireIndex[i]}]` : 'system'),
    })
    return req
  }

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/messages',
      operationId: 'createMessage',
      tags: ['Anthropic'],
      summary: 'Anthropic Messages: a message, or with stream: true the SSE event sequence (message_start … message_stop)',
      security,
      request: { body: { content: { 'application/json': { schema: MessagesRequest } }, required: true } },
      responses: {
        200: {
          description: 'A message, or an SSE stream of events, each with its `event:` line',
          content: { 'application/json': { schema: MessageResponse }, 'text/event-stream': { schema: StreamEvent } },
        },
        ...errors,
      },
    },
    async (c) => {
      const body = await readJson(c, MessagesRequest, bodyLimit)
      const req = decode(body)
      const meta = reportedModel(c, { model: body.model, inputTokens: 0 })
      // Claude Code reads message_start's input_tokens to manage its context: that number must be real.
      const count = async (ctx: CallContext) => {
        const sent = deps.expand ? await deps.expand(req, ctx) : req
        return (meta.inputTokens = (await countPromptTokens(sent, await exactCounter(sent, ctx).catch(() => undefined))).tokens)
      }
      const counting: Provider = { id: pipeline.id, type: pipeline.type, models: (s) => pipeline.models(s), chat: (r, ctx) => withInputCount(pipeline.chat(r, ctx), () => count(ctx)) }
      if (!req.stream) return chatJson(c, counting, req, (result) => encodeMessage(result, meta))
      return chatSse(c, counting, req, new MessageStreamEncoder(meta))
    },
  )

  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/messages/count_tokens',
      operationId: 'countMessageTokens',
      tags: ['Anthropic'],
      summary: "Count a Messages request's input tokens: the provider's tokenizer where it has one, else the documented estimate",
      security,
      request: { body: { content: { 'application/json': { schema: CountTokensRequest } }, required: true } },
      responses: { 200: jsonContent(CountTokensResponse, 'The count'), ...errors },
    },
    async (c) => {
      const body = await readJson(c, CountTokensRequest, bodyLimit)
      const req = decode(body)
      const ctx = callContext(c)
      const sent = deps.expand ? await deps.expand(req, ctx) : req
      const { tokens } = await countPromptTokens(sent, await exactCounter(sent, ctx))
      return c.json(encodeCountTokens(tokens), 200, gatewayHeaders(ctx, c))
    },
  )
}

/**
 * Holds back the first events until the prompt's count is known, so that
 * every encoded frame can use it. A provider that reports its own usage
 * before any content (Anthropic's message_start) needs no count; others are
 * counted once their first content arrives (one tokenizer call, only then).
 */
function withInputCount(source: ReadableStream<ChatEvent>, count: () => Promise<unknown>): ReadableStream<ChatEvent> {
  const reader = source.getReader()
  const held: ChatEvent[] = []
  let primed = false
  return new ReadableStream<ChatEvent>(
    {
      async pull(controller) {
        if (!primed) {
          primed = true
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            held.push(value)
            if (value.type !== 'start') break
          }
          const first = held[held.length - 1]
          if (!(first?.type === 'usage' && !first.usage.estimated && first.usage.inputTokens > 0)) await count()
        }
        const next = held.shift()
        if (next) return controller.enqueue(next)
        const { done, value } = await reader.read()
        if (done) controller.close()
        else controller.enqueue(value)
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
}
