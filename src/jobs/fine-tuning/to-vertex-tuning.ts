import { decodeChat } from '../../dialects/openai/chat.js'
import { ChatCompletionRequest } from '../../dialects/openai/schemas.js'
import { GatewayError } from '../../errors.js'
import { toGeminiBody } from '../../providers/vertex/to-gemini.js'
import type { LineError } from '../jsonl.js'
import { parseTrainingFile, type TrainingExample } from './training-file.js'

/**
 * OpenAI fine-tuning JSONL → Vertex AI's supervised tuning dataset for
 * Gemini, one example a line:
 * `{"systemInstruction":{"role":"system","parts":[…]},"contents":[…],"tools"?:[…]}`.
 * Each example goes through the same conversion as a chat request to Vertex
 * (OpenAI wire → core → Gemini `contents`): assistant turns become `model`
 * turns, tool calls `functionCall` parts, tool results `functionResponse`
 * parts in a user turn. Gemini's format has no per-message weight, so the
 * example ends at the answer it teaches (later turns teach nothing) and an
 * earlier assistant turn with weight 0 cannot be expressed: its line is
 * rejected rather than silently trained on.
 */
export function toVertexTuningJsonl(text: string): { jsonl: string; examples: number; errors: LineError[] } {
  const parsed = parseTrainingFile(text)
  if (parsed.errors.length) return { jsonl: '', examples: 0, errors: parsed.errors }
  if (parsed.format === 'preference') {
    const line = parsed.examples[0]?.line ?? 1
    return { jsonl: '', examples: 0, errors: [{ line, message: 'Preference (DPO) examples need Vertex AI preference tuning, which the gateway does not pass through; use chat or prompt/completion examples.' }] }
  }
  const errors: LineError[] = []
  const lines: string[] = []
  for (const example of parsed.examples) {
    const converted = tuningLine(example)
    if (typeof converted === 'string') lines.push(converted)
    else errors.push({ line: example.line, message: converted.error })
  }
  return { jsonl: errors.length ? '' : `${lines.join('\n')}\n`, examples: lines.length, errors }
}

function tuningLine(example: TrainingExample): string | { error: string } {
  const unweighted = example.prompt.findIndex((m) => m.role === 'assistant' && m.weight === 0)
  if (unweighted !== -1) {
    return { error: `messages[${unweighted}] has weight 0, which Vertex AI's tuning format cannot express (it has no per-message weight and trains on every model turn); remove that message or its weight.` }
  }
  const messages = [...example.prompt, example.answer].map(({ weight: _w, ...m }) => m)
  const request = ChatCompletionRequest.safeParse({ model: 'tuning', messages, ...(example.tools ? { tools: example.tools } : {}) })
  if (!request.success) {
    const issue = request.error.issues[0]
    return { error: `${issue.path.join('.')}: ${issue.message}` }
  }
  try {
    const body = toGeminiBody(decodeChat(request.data, { allowRemoteMedia: true }))
    const system = body.systemInstruction as { parts: unknown[] } | undefined
    return JSON.stringify({
      ...(system ? { systemInstruction: { role: 'system', parts: system.parts } } : {}),
      contents: body.contents,
      ...(body.tools ? { tools: body.tools } : {}),
    })
  } catch (err) {
    if (err instanceof GatewayError) return { error: err.message }
    throw err
  }
}
