import { z } from '@hono/zod-openapi'

/**
 * Wire schemas of the OpenAI dialect. Requests are loose objects: fields
 * this gateway does not know are accepted and ignored, so newer clients keep
 * working; the fields it does know are type-checked.
 */

const TextPart = z.looseObject({ type: z.literal('text'), text: z.string() })
const ImageUrlPart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }),
})
const InputAudioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
})
const FilePart = z.looseObject({
  type: z.literal('file'),
  file: z.looseObject({ file_data: z.string().optional(), file_id: z.string().optional(), filename: z.string().optional() }),
})
const RefusalPart = z.looseObject({ type: z.literal('refusal'), refusal: z.string() })

export const ContentPart = z.discriminatedUnion('type', [TextPart, ImageUrlPart, InputAudioPart, FilePart, RefusalPart]).openapi('ChatContentPart')

const Content = z.union([z.string(), z.array(ContentPart)])

const ToolCall = z.looseObject({
  id: z.string(),
  type: z.literal('function').default('function'),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
})

export const ChatMessage = z
  .discriminatedUnion('role', [
    z.looseObject({ role: z.literal('system'), content: Content, name: z.string().optional() }),
    z.looseObject({ role: z.literal('developer'), content: Content, name: z.string().optional() }),
    z.looseObject({ role: z.literal('user'), content: Content, name: z.string().optional() }),
    z.looseObject({
      role: z.literal('assistant'),
      content: Content.nullable().optional(),
      name: z.string().optional(),
      tool_calls: z.array(ToolCall).optional(),
      refusal: z.string().nullable().optional(),
    }),
    z.looseObject({ role: z.literal('tool'), content: Content, tool_call_id: z.string() }),
  ])
  .openapi('ChatMessage')

export const FunctionTool = z
  .looseObject({
    type: z.literal('function'),
    function: z.looseObject({
      name: z.string().min(1),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  })
  .openapi('FunctionTool')

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
])

const ResponseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string(),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
])

const Stop = z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional()

export const StreamOptions = z
  .looseObject({
    include_usage: z.boolean().optional(),
    // The gateway's own stream options (also settable by header, for every dialect).
    progress: z.boolean().nullable().optional().openapi({ description: 'Gateway: send `event: progress` frames (queued/waiting_first_token/generating) as chunks with empty choices. Header: x-gateway-progress: 1.' }),
    coalesce_ms: z.number().int().min(0).max(1000).nullable().optional().openapi({ description: 'Gateway: merge tiny deltas arriving within this many ms (the first token is never delayed). Header: x-gateway-coalesce-ms.' }),
    events: z
      .union([z.string(), z.array(z.string())])
      .nullable()
      .optional()
      .openapi({ description: 'Gateway: event filter, any of text, no-thinking, no-tools, no-ping, no-empty (array or comma list). Header: x-gateway-events.' }),
  })
  .nullable()
  .optional()

export const ChatCompletionRequest = z
  .looseObject({
    model: z.string().min(1),
    messages: z.array(ChatMessage).min(1),
    stream: z.boolean().nullable().optional(),
    stream_options: StreamOptions,
    tools: z.array(FunctionTool).optional(),
    tool_choice: ToolChoice.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: ResponseFormat.optional(),
    max_tokens: z.number().int().positive().nullable().optional(),
    max_completion_tokens: z.number().int().positive().nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    stop: Stop,
    seed: z.number().int().nullable().optional(),
    user: z.string().optional(),
    reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullable().optional(),
    prompt_cache_key: z.string().optional(),
    metadata: z.record(z.string(), z.string()).nullable().optional(),
  })
  .openapi('CreateChatCompletionRequest')
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>

export const CompletionRequest = z
  .looseObject({
    model: z.string().min(1),
    prompt: z.union([z.string(), z.array(z.string()).min(1).max(1)]),
    suffix: z.string().nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: StreamOptions,
    max_tokens: z.number().int().positive().nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    echo: z.boolean().nullable().optional(),
    stop: Stop,
    seed: z.number().int().nullable().optional(),
    user: z.string().optional(),
  })
  .openapi('CreateCompletionRequest')
export type CompletionRequest = z.infer<typeof CompletionRequest>

const Usage = z
  .object({
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    total_tokens: z.number().int(),
    prompt_tokens_details: z.object({ cached_tokens: z.number().int() }).optional(),
    completion_tokens_details: z.object({ reasoning_tokens: z.number().int() }).optional(),
  })
  .openapi('CompletionUsage')

const FinishReason = z.enum(['stop', 'length', 'tool_calls', 'content_filter', 'function_call'])

export const ChatCompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number().int(),
    model: z.string(),
    system_fingerprint: z.string().nullable().optional(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal('assistant'),
          content: z.string().nullable(),
          refusal: z.string().nullable(),
          tool_calls: z.array(z.object({ id: z.string(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) })).optional(),
        }),
        logprobs: z.null(),
        finish_reason: FinishReason,
      }),
    ),
    usage: Usage.optional(),
  })
  .openapi('CreateChatCompletionResponse')

export const ChatCompletionChunk = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion.chunk'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({
          role: z.literal('assistant').optional(),
          content: z.string().nullable().optional(),
          tool_calls: z
            .array(z.object({ index: z.number().int(), id: z.string().optional(), type: z.literal('function').optional(), function: z.object({ name: z.string().optional(), arguments: z.string().optional() }) }))
            .optional(),
        }),
        logprobs: z.null().optional(),
        finish_reason: FinishReason.nullable(),
      }),
    ),
    usage: Usage.nullable().optional(),
  })
  .openapi('CreateChatCompletionStreamResponse')

export const CompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('text_completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(z.object({ text: z.string(), index: z.number().int(), logprobs: z.null(), finish_reason: z.enum(['stop', 'length', 'content_filter']) })),
    usage: Usage.optional(),
  })
  .openapi('CreateCompletionResponse')

export const Model = z
  .object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() })
  .openapi('Model')

export const ModelList = z.object({ object: z.literal('list'), data: z.array(Model) }).openapi('ListModelsResponse')

export const ErrorResponse = z
  .object({
    error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
  })
  .openapi('ErrorResponse')
