/**
 * The dialect-neutral model of the gateway. Every dialect decodes into these
 * types and every provider consumes them. This module imports nothing.
 */

export interface CacheControl {
  type: 'ephemeral'
  ttl?: string
}

/**
 * Binary or remote media: exactly one of `data` (base64), `url` or `fileId` is
 * set. The media stage (src/pipeline/media.ts) turns `fileId` (a Files API
 * upload) and allowed `url`s into `data` before any provider sees them.
 */
export interface MediaSource {
  mimeType: string
  data?: string
  url?: string
  fileId?: string
}

export interface TextPart {
  type: 'text'
  text: string
  cacheControl?: CacheControl
}
export interface ImagePart extends MediaSource {
  type: 'image'
  detail?: 'auto' | 'low' | 'high'
  cacheControl?: CacheControl
}
export interface DocumentPart extends MediaSource {
  type: 'document'
  /** Plain-text documents carry their text here instead of data/url. */
  text?: string
  title?: string
  context?: string
  citations?: boolean
  cacheControl?: CacheControl
}
export interface AudioPart extends MediaSource {
  type: 'audio'
}
export interface VideoPart extends MediaSource {
  type: 'video'
}
export interface ToolCallPart {
  type: 'tool_call'
  id: string
  name: string
  /** The arguments as JSON text, exactly as the model produced them. */
  arguments: string
}
export interface ToolResultPart {
  type: 'tool_result'
  callId: string
  content: Array<TextPart | ImagePart | DocumentPart>
  isError?: boolean
  cacheControl?: CacheControl
}
export interface ThinkingPart {
  type: 'thinking'
  text: string
  /** Opaque signature from the provider that produced the thinking. */
  signature?: string
  /** Redacted thinking: encrypted data only the producing provider can read. */
  redacted?: string
  /** Id of the provider that produced it; foreign signatures are not forwarded. */
  provider?: string
}

export type ContentPart = TextPart | ImagePart | DocumentPart | AudioPart | VideoPart
export type Part = ContentPart | ToolCallPart | ToolResultPart | ThinkingPart

export type Role = 'system' | 'user' | 'assistant' | 'tool'

export interface Message {
  role: Role
  content: Part[]
  name?: string
}

export interface ToolDefinition {
  name: string
  description?: string
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>
  strict?: boolean
  cacheControl?: CacheControl
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string }

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict?: boolean; description?: string }

export interface ChatRequest {
  /** The model as the provider knows it (after routing), or as the client sent it before. */
  model: string
  messages: Message[]
  tools?: ToolDefinition[]
  toolChoice?: ToolChoice
  parallelToolCalls?: boolean
  maxTokens?: number
  temperature?: number
  topP?: number
  topK?: number
  stop?: string[]
  seed?: number
  n?: number
  user?: string
  responseFormat?: ResponseFormat
  thinking?: { type: 'enabled'; budgetTokens?: number } | { type: 'disabled' } | { type: 'adaptive' }
  reasoningEffort?: 'minimal' | 'low' | 'medium' | 'high'
  promptCacheKey?: string
  metadata?: Record<string, unknown>
  /** Whether the client wants a stream; providers may use it to pick the cheaper upstream call. */
  stream: boolean
  /** Provider-specific options passed through untouched (e.g. Ollama `keep_alive`). */
  providerOptions?: Record<string, unknown>
  /** Set by routing for a target that cannot read binary documents: convert them to text first (opt-in, media.conversions). */
  documentsAsText?: boolean
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'stop_sequence' | 'error'

export interface Usage {
  inputTokens: number
  outputTokens: number
  /** Input tokens read from a provider's prompt cache. */
  cacheReadTokens?: number
  /** Input tokens written to a provider's prompt cache. */
  cacheWriteTokens?: number
  reasoningTokens?: number
  /** True when the counts are estimates rather than the provider's own. */
  estimated?: boolean
}

/**
 * What a provider streams. Tool calls are announced by `tool_call_start` with
 * their index among this answer's tool calls, then receive argument fragments.
 * Errors are not events: the stream errors with a GatewayError.
 */
export type ChatEvent =
  | { type: 'start'; id?: string; model?: string }
  | { type: 'text'; text: string }
  | { type: 'thinking'; text: string; signature?: string; redacted?: string }
  | { type: 'tool_call_start'; index: number; id: string; name: string }
  | { type: 'tool_call_delta'; index: number; arguments: string }
  | { type: 'usage'; usage: Usage }
  | { type: 'finish'; reason: FinishReason; stopSequence?: string }

export interface ChatResult {
  id?: string
  model?: string
  /** One assistant message: text, thinking and tool calls of one turn, in order. */
  content: Array<TextPart | ThinkingPart | ToolCallPart>
  finishReason: FinishReason
  stopSequence?: string
  usage?: Usage
}

export interface ModelInfo {
  id: string
  /** Display name, where the provider has one. */
  name?: string
  ownedBy: string
  provider?: string
  contextWindow?: number
  maxOutputTokens?: number
  capabilities?: ModelCapabilities
  created?: number
}

export interface ModelCapabilities {
  tools?: boolean
  vision?: boolean
  embeddings?: boolean
  streaming?: boolean
  json?: boolean
  documents?: boolean
  audio?: boolean
  video?: boolean
  thinking?: boolean
}

export interface EmbedRequest {
  model: string
  /** The texts to embed; empty when the client sent token ids instead (`tokens`). */
  input: string[]
  /** Token-id arrays sent instead of text. Only providers with `embedsTokens` receive them. */
  tokens?: number[][]
  dimensions?: number
  user?: string
}

export interface EmbedResult {
  model?: string
  embeddings: number[][]
  usage?: { inputTokens: number }
}
