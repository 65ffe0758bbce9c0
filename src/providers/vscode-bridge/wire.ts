import { z } from 'zod'

/**
 * Bridge protocol v1 as the gateway reads it (bridge/README.md is the
 * reference). Answers are parsed here, at the wire edge; requests are typed
 * only, since the bridge validates them itself.
 */

export type WirePart =
  | { type: 'text'; text: string }
  | { type: 'image'; mimeType: string; data: string }
  /** Any other binary input (PDF …), as a LanguageModelDataPart: for models configured to read documents. */
  | { type: 'data'; mimeType: string; data: string }
  | { type: 'tool_call'; callId: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; callId: string; content: Array<{ type: 'text'; text: string } | { type: 'image' | 'data'; mimeType: string; data: string }> }

export interface WireMessage {
  role: 'user' | 'assistant'
  content: WirePart[]
}

export interface WireTool {
  name: string
  description: string
  inputSchema?: Record<string, unknown>
}

export interface WireChatBody {
  model: string
  messages: WireMessage[]
  tools?: WireTool[]
  toolMode?: 'auto' | 'required'
  modelOptions?: Record<string, unknown>
  justification?: string
}

export const WireEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('thinking'), text: z.string() }),
  z.object({ type: z.literal('tool_call'), callId: z.string(), name: z.string(), input: z.unknown() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string().optional() }),
  z.object({ type: z.literal('end') }),
])
export type WireEvent = z.infer<typeof WireEvent>

export const WireModels = z.object({
  models: z.array(
    z.looseObject({
      id: z.string(),
      name: z.string().optional(),
      vendor: z.string().optional(),
      family: z.string().optional(),
      version: z.string().optional(),
      maxInputTokens: z.number().optional(),
      capabilities: z.looseObject({ imageInput: z.boolean().optional(), toolCalling: z.boolean().optional() }).optional(),
    }),
  ),
})

export const WireHealth = z.looseObject({ ok: z.boolean(), bridge: z.string().optional(), vscode: z.string().optional() })
export const WireTokens = z.object({ tokens: z.number().int().nonnegative() })
export const WireEmbeddings = z.object({ embeddings: z.array(z.array(z.number())) })
export const WireError = z.object({ error: z.looseObject({ code: z.string().optional(), message: z.string().optional() }) })
