import { z } from '@hono/zod-openapi'

/**
 * Wire schemas of the OpenAI Responses API (POST /v1/responses). Requests are
 * loose: fields this gateway does not act on (reasoning, include,
 * prompt_cache_key, client_metadata, truncation …) are accepted and ignored.
 * Item and content types are closed unions, so an unknown one is a clear 400.
 */

const InputText = z.looseObject({ type: z.literal('input_text'), text: z.string() })
const InputImage = z.looseObject({
  type: z.literal('input_image'),
  image_url: z.string().nullable().optional(),
  file_id: z.string().nullable().optional(),
  detail: z.enum(['auto', 'low', 'high']).optional(),
})
const InputFile = z.looseObject({
  type: z.literal('input_file'),
  file_data: z.string().optional(),
  file_id: z.string().nullable().optional(),
  file_url: z.string().optional(),
  filename: z.string().optional(),
})
// What the gateway itself answered, replayed by stateless clients (Codex) on the next turn.
const OutputText = z.looseObject({ type: z.literal('output_text'), text: z.string(), annotations: z.array(z.unknown()).optional(), logprobs: z.array(z.unknown()).optional() })
const Refusal = z.looseObject({ type: z.literal('refusal'), refusal: z.string() })

const MessageContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [InputText, InputImage, InputFile, OutputText, Refusal]))])

const MessageItem = z.looseObject({
  type: z.literal('message').optional(),
  id: z.string().optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: MessageContent,
  status: z.string().optional(),
})
const FunctionCallItem = z.looseObject({
  type: z.literal('function_call'),
  id: z.string().optional(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().optional(),
  arguments: z.string(),
  status: z.string().optional(),
})
const FunctionCallOutputItem = z.looseObject({
  type: z.literal('function_call_output'),
  id: z.string().nullable().optional(),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(z.discriminatedUnion('type', [InputText, InputImage, InputFile]))]),
  status: z.string().nullable().optional(),
})
// Reasoning items carry another provider's encrypted state: accepted, not forwarded.
const ReasoningItem = z.looseObject({ type: z.literal('reasoning'), id: z.string().optional(), summary: z.array(z.unknown()).optional(), encrypted_content: z.string().nullable().optional() })
const ItemReference = z.looseObject({ type: z.literal('item_reference'), id: z.string() })

export const InputItem = z.discriminatedUnion('type', [MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem, ItemReference]).openapi('ResponseInputItem')
export type InputItem = z.infer<typeof InputItem>

const FunctionTool = z.looseObject({
  type: z.literal('function'),
  name: z.string().min(1),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
})
export type FunctionTool = z.infer<typeof FunctionTool>

/** Any tool: function tools are used, `namespace` tools are flattened, the rest (web_search …) are ignored. */
const Tool = z.looseObject({ type: z.string(), name: z.string().optional(), tools: z.array(z.looseObject({ type: z.string() })).optional() })

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), name: z.string() }),
  z.looseObject({ type: z.string() }),
])

const TextFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    name: z.string().min(1),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
    strict: z.boolean().nullable().optional(),
  }),
])

export const ResponsesRequest = z
  .looseObject({
    model: z.string().min(1),
    input: z.union([z.string(), z.array(InputItem)]),
    instructions: z.string().nullable().optional(),
    tools: z.array(Tool).optional(),
    tool_choice: ToolChoice.optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    max_output_tokens: z.number().int().positive().nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    text: z.looseObject({ format: TextFormat.optional() }).nullable().optional(),
    stream: z.boolean().nullable().optional(),
    store: z.boolean().nullable().optional(),
    previous_response_id: z.string().nullable().optional(),
    conversation: z.unknown().optional(),
    background: z.boolean().nullable().optional(),
    reasoning: z.looseObject({ effort: z.string().nullable().optional() }).nullable().optional(),
    prompt_cache_key: z.string().optional(),
    metadata: z.record(z.string(), z.string()).nullable().optional(),
    user: z.string().optional(),
  })
  .openapi('CreateResponseRequest')
export type ResponsesRequest = z.infer<typeof ResponsesRequest>

const OutputItem = z.union([
  z.object({
    id: z.string(),
    type: z.literal('message'),
    status: z.string(),
    role: z.literal('assistant'),
    content: z.array(z.object({ type: z.literal('output_text'), text: z.string(), annotations: z.array(z.unknown()), logprobs: z.array(z.unknown()) })),
  }),
  z.object({ id: z.string(), type: z.literal('function_call'), status: z.string(), call_id: z.string(), name: z.string(), arguments: z.string() }),
])

export const ResponseObject = z
  .object({
    id: z.string(),
    object: z.literal('response'),
    created_at: z.number().int(),
    status: z.enum(['completed', 'incomplete', 'in_progress', 'failed']),
    model: z.string(),
    output: z.array(OutputItem),
    usage: z
      .object({
        input_tokens: z.number().int(),
        input_tokens_details: z.object({ cached_tokens: z.number().int() }),
        output_tokens: z.number().int(),
        output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
        total_tokens: z.number().int(),
      })
      .nullable(),
  })
  .openapi('Response')

export const ResponseStreamEvent = z.looseObject({ type: z.string(), sequence_number: z.number().int() }).openapi('ResponseStreamEvent')
