import type { ModelCapabilities } from '../core/types.js'

/**
 * What well-known model families can do, for providers whose model lists
 * carry no capabilities (OpenAI-compatible servers, Ollama). Matched on the
 * bare model id, lower-cased, first match wins; a model matching nothing is
 * assumed capable (the upstream will say if it is not).
 */
export interface KnownModel {
  contextWindow?: number
  capabilities: ModelCapabilities
}

const CHAT = { streaming: true, embeddings: false }
/** Text in, text out: no images, documents, audio or video. */
const TEXT = { vision: false, documents: false, audio: false, video: false }
/** OpenAI's and Anthropic's vision models also read PDFs (file / document parts). */
const TOOLS_VISION = { ...CHAT, tools: true, vision: true, documents: true, audio: false, video: false }
const TOOLS_ONLY = { ...CHAT, ...TEXT, tools: true }
/** Gemini reads images, PDFs, audio and video. */
const MULTIMODAL = { ...CHAT, tools: true, vision: true, documents: true, audio: true, video: true }
const EMBEDDINGS = { embeddings: true, tools: false, streaming: false, ...TEXT }

const TABLE: Array<[RegExp, KnownModel]> = [
  // Embedding models first: their names overlap with chat families (e.g. "nomic-embed-text").
  [/(^|[/:-])(text-embedding|embed|embedding)(-|:|$)|^(nomic-embed|mxbai-embed|all-minilm|bge-|e5-|snowflake-arctic-embed)/, { contextWindow: 8191, capabilities: EMBEDDINGS }],
  [/^gpt-4o(-mini)?-audio/, { contextWindow: 128_000, capabilities: { ...CHAT, ...TEXT, tools: true, audio: true } }],
  [/^gpt-4o(-mini)?(-|$)|^chatgpt-4o/, { contextWindow: 128_000, capabilities: TOOLS_VISION }],
  [/^gpt-4\.1/, { contextWindow: 1_047_576, capabilities: TOOLS_VISION }],
  [/^gpt-4\.5/, { contextWindow: 128_000, capabilities: TOOLS_VISION }],
  [/^gpt-5/, { contextWindow: 400_000, capabilities: TOOLS_VISION }],
  [/^gpt-4-turbo|^gpt-4-\d{4}-preview|^gpt-4-vision/, { contextWindow: 128_000, capabilities: TOOLS_VISION }],
  [/^gpt-4(-0613|-0314)?$/, { contextWindow: 8192, capabilities: TOOLS_ONLY }],
  [/^gpt-4-32k/, { contextWindow: 32_768, capabilities: TOOLS_ONLY }],
  [/^gpt-3\.5-turbo-instruct/, { contextWindow: 4096, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^gpt-3\.5-turbo/, { contextWindow: 16_385, capabilities: TOOLS_ONLY }],
  [/^o1-mini/, { contextWindow: 128_000, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^o[134](-mini|-pro)?(-|$)/, { contextWindow: 200_000, capabilities: TOOLS_VISION }],
  [/^claude-(2|instant)/, { contextWindow: 100_000, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^claude-/, { contextWindow: 200_000, capabilities: TOOLS_VISION }],
  [/^gemini-(1\.5|2|3)/, { contextWindow: 1_048_576, capabilities: MULTIMODAL }],
  [/^gemini-1\.0|^gemini-pro$/, { contextWindow: 32_760, capabilities: TOOLS_ONLY }],
  [/^(llama3\.2-vision|llava|bakllava|moondream|minicpm-v|qwen2\.5vl|qwen2-vl|gemma3)/, { contextWindow: 128_000, capabilities: { ...CHAT, ...TEXT, vision: true } }],
  [/^llama3\.[123]|^llama-3\.[123]/, { contextWindow: 128_000, capabilities: TOOLS_ONLY }],
  [/^llama3(:|$)|^llama-3-/, { contextWindow: 8192, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^llama2|^llama-2/, { contextWindow: 4096, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^(mistral-large|mistral-small|mistral-nemo|mixtral|ministral)/, { contextWindow: 128_000, capabilities: TOOLS_ONLY }],
  [/^mistral/, { contextWindow: 32_768, capabilities: TOOLS_ONLY }],
  [/^(qwen2\.5|qwen3|qwq)/, { contextWindow: 32_768, capabilities: TOOLS_ONLY }],
  [/^deepseek-(r1|v3|chat|reasoner)/, { contextWindow: 128_000, capabilities: TOOLS_ONLY }],
  [/^phi3|^phi-3/, { contextWindow: 128_000, capabilities: { ...CHAT, ...TEXT, tools: false } }],
  [/^phi4|^phi-4/, { contextWindow: 16_384, capabilities: { ...CHAT, ...TEXT, tools: false } }],
]

export function knownModel(id: string): KnownModel | undefined {
  const bare = id.toLowerCase().replace(/^.*\//, '')
  for (const [pattern, info] of TABLE) if (pattern.test(bare)) return info
  return undefined
}
