import type { ErrorKind } from '../errors.js'

/**
 * One request, as analytics sees it. This is the complete list of what is
 * collected: no prompt, no completion, no IP address, no API key (only the
 * hash-derived key id the auth middleware computes).
 */
export interface UsageRecord {
  /** Request start, epoch milliseconds. */
  time: number
  /** The route pattern, e.g. `POST /v1/chat/completions` (bounded: never the raw path). */
  endpoint: string
  dialect: 'openai' | 'anthropic'
  /** The model name the client sent (empty when the request never named one). */
  requestedModel: string
  /** `provider/model` that served it, when routing got that far. */
  servedModel?: string
  provider?: string
  keyId?: string
  status: number
  errorKind?: ErrorKind
  latencyMs: number
  /** Time to first token (text, thinking or tool call), from request start. */
  ttftMs?: number
  inputTokens: number
  outputTokens: number
  /** Input tokens read from a provider's prompt cache (included in inputTokens). */
  cachedTokens: number
  streamed: boolean
  /** Answered from the gateway's response cache. */
  cacheHit: boolean
  queueWaitMs?: number
}

/** What the privacy panel and the API say is collected: kept next to the type it describes. */
export const COLLECTED_FIELDS: ReadonlyArray<{ field: keyof UsageRecord; description: string }> = [
  { field: 'time', description: 'when the request started' },
  { field: 'endpoint', description: 'the API route (pattern, not the full URL)' },
  { field: 'dialect', description: 'openai or anthropic' },
  { field: 'requestedModel', description: 'the model name the client asked for' },
  { field: 'servedModel', description: 'the provider/model that answered' },
  { field: 'provider', description: 'the provider id' },
  { field: 'keyId', description: 'a hash-derived id of the API key (never the key)' },
  { field: 'status', description: 'HTTP status' },
  { field: 'errorKind', description: 'the error category, if any (no message)' },
  { field: 'latencyMs', description: 'total duration' },
  { field: 'ttftMs', description: 'time to first token' },
  { field: 'inputTokens', description: 'input token count' },
  { field: 'outputTokens', description: 'output token count' },
  { field: 'cachedTokens', description: 'input tokens read from the provider prompt cache' },
  { field: 'streamed', description: 'whether the answer was streamed' },
  { field: 'cacheHit', description: 'whether the gateway cache answered' },
  { field: 'queueWaitMs', description: 'time spent waiting in the queue' },
]

export const NOT_COLLECTED = ['prompts', 'completions', 'tool arguments or results', 'images or files', 'IP addresses', 'API keys', 'user agents', 'error messages']
