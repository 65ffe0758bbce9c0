import { z } from '@hono/zod-openapi'

/**
 * Wire schemas of the Anthropic Messages dialect. Requests are loose objects
 * (new top-level fields and beta parameters are ignored, never rejected);
 * content blocks are a closed union, so an unknown block type is a clear 400.
 */

const CacheControl = z.looseObject({ type: z.literal('ephemeral'), ttl: z.string().optional() }).nullable().optional()

const TextBlock = z.looseObject({ type: z.literal('text'), text: z.string(), cache_control: CacheControl })

const ImageSource = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('base64'), media_type: z.string(), data: z.string() }),
  z.looseObject({ type: z.literal('url'), url: z.string() }),
  z.looseObject({ type: z.literal('file'), file_id: z.string().min(1) }),
])
const ImageBlock = z.looseObject({ type: z.literal('image'), source: ImageSource, cache_control: CacheControl })

const DocumentSource = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('base64'), media_type: z.string(), data: z.string() }),
  z.looseObject({ type: z.literal('text'), media_type: z.string().optional(), data: z.string() }),
  z.looseObject({ type: z.literal('url'), url: z.string() }),
  z.looseObject({ type: z.literal('file'), file_id: z.string().min(1) }),
  z.looseObject({ type: z.literal('content'), content: z.union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))]) }),
])
const DocumentBlock = z.looseObject({
  type: z.literal('document'),
  source: DocumentSource,
  title: z.string().nullable().optional(),
  context: z.string().nullable().optional(),
  citations: z.looseObject({ enabled: z.boolean().optional() }).nullable().optional(),
  cache_control: CacheControl,
})

const ToolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  cache_control: CacheControl,
})

const ToolResultContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [TextBlock, ImageBlock, DocumentBlock]))])
const ToolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: ToolResultContent.optional(),
  is_error: z.boolean().optional(),
  cache_control: CacheControl,
})

const ThinkingBlock = z.looseObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().optional() })
const RedactedThinkingBlock = z.looseObject({ type: z.literal('redacted_thinking'), data: z.string() })

export const ContentBlock = z
  .discriminatedUnion('type', [TextBlock, ImageBlock, DocumentBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock])
  .openapi('AnthropicContentBlock')
export type ContentBlock = z.infer<typeof ContentBlock>

const Content = z.union([z.string(), z.array(ContentBlock)])

export const MessageParam = z
  .looseObject({
    // Claude Code sends role "system" inside messages for models it does not know.
    role: z.enum(['user', 'assistant', 'system']),
    content: Content,
  })
  .openapi('AnthropicMessageParam')

const Tool = z.looseObject({
  name: z.string().min(1),
  type: z.string().nullable().optional(),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
  cache_control: CacheControl,
})

const ToolChoice = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('tool'), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('none') }),
])

const Thinking = z.looseObject({ type: z.string(), budget_tokens: z.number().int().positive().optional() })

const fields = {
  model: z.string().min(1),
  messages: z.array(MessageParam).min(1),
  system: z.union([z.string(), z.array(TextBlock)]).optional(),
  tools: z.array(Tool).optional(),
  tool_choice: ToolChoice.optional(),
  thinking: Thinking.optional(),
  output_config: z.looseObject({ effort: z.string().optional(), format: z.looseObject({ type: z.string(), schema: z.record(z.string(), z.unknown()).optional() }).nullable().optional() }).optional(),
  metadata: z.looseObject({ user_id: z.string().nullable().optional() }).optional(),
}

export const MessagesRequest = z
  .looseObject({
    ...fields,
    max_tokens: z.number().int().positive(),
    stream: z.boolean().optional(),
    stop_sequences: z.array(z.string()).optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
  })
  .openapi('CreateMessageRequest')
export type MessagesRequest = z.infer<typeof MessagesRequest>

export const CountTokensRequest = z.looseObject(fields).openapi('CountMessageTokensRequest')
export type CountTokensRequest = z.infer<typeof CountTokensRequest>

export const CountTokensResponse = z.object({ input_tokens: z.number().int() }).openapi('CountMessageTokensResponse')

const Usage = z
  .object({
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cache_creation_input_tokens: z.number().int().nullable(),
    cache_read_input_tokens: z.number().int().nullable(),
  })
  .openapi('AnthropicUsage')

export const MessageResponse = z
  .object({
    id: z.string(),
    type: z.literal('message'),
    role: z.literal('assistant'),
    content: z.array(
      z.union([
        z.object({ type: z.literal('text'), text: z.string() }),
        z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.record(z.string(), z.unknown()) }),
        z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() }),
        z.object({ type: z.literal('redacted_thinking'), data: z.string() }),
      ]),
    ),
    model: z.string(),
    stop_reason: z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'refusal']).nullable(),
    stop_sequence: z.string().nullable(),
    usage: Usage,
  })
  .openapi('AnthropicMessage')

export const StreamEvent = z
  .looseObject({ type: z.enum(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop', 'ping', 'error']) })
  .openapi('AnthropicStreamEvent')

export const ErrorResponse = z
  .object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }), request_id: z.string().nullable() })
  .openapi('AnthropicErrorResponse')
