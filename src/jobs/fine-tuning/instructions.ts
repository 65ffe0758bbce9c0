import { answerText, contentText, type TrainingExample } from './training-file.js'

export interface DerivedInstructions {
  text: string
  /** What the text was derived from, for the job's events (counts only, never content). */
  sharedSentences: number
  systemPrompts: number
  jsonAnswers: boolean
  typicalWords: number
}

/**
 * The examples' common instructions: the system-prompt sentences that at
 * least half of the examples share (in their first order), plus what every
 * answer has in common that a model can be told (JSON only; typical length).
 */
export function deriveInstructions(examples: TrainingExample[]): DerivedInstructions {
  const seen = new Map<string, { text: string; count: number; order: number }>()
  let systemPrompts = 0
  for (const ex of examples) {
    const system = ex.prompt.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => contentText(m.content)).join('\n')
    if (!system.trim()) continue
    systemPrompts++
    const mine = new Set<string>()
    for (const sentence of sentences(system)) {
      const key = sentence.toLowerCase().replace(/\s+/g, ' ')
      if (mine.has(key)) continue
      mine.add(key)
      const entry = seen.get(key)
      if (entry) entry.count++
      else seen.set(key, { text: sentence, count: 1, order: seen.size })
    }
  }
  const needed = Math.max(1, Math.ceil(examples.length / 2))
  const shared = [...seen.values()].filter((s) => s.count >= needed).sort((a, b) => a.order - b.order)
  const lines: string[] = []
  if (shared.length) lines.push(shared.map((s) => s.text).join(' '))

  const answers = examples.map((e) => answerText(e.answer)).filter((t) => t.trim())
  const jsonAnswers = answers.length > 0 && examples.every((e) => !e.answer.tool_calls?.length) && answers.every(isJsonObject)
  if (jsonAnswers) lines.push('Answer with a single JSON object and nothing else, as in the examples.')
  const lengths = answers.map((a) => a.split(/\s+/).filter(Boolean).length).sort((a, b) => a - b)
  const typicalWords = lengths.length ? lengths[Math.floor(lengths.length / 2)] : 0
  if (typicalWords > 0 && !jsonAnswers) lines.push(`Keep answers about as long as the examples' (typically ${typicalWords} word${typicalWords === 1 ? '' : 's'}).`)
  return { text: lines.join('\n'), sharedSentences: shared.length, systemPrompts, jsonAnswers, typicalWords }
}

function sentences(text: string): string[] {
  return text
    .split(/\n+|(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter(Boolean)
}

function isJsonObject(text: string): boolean {
  try {
    const v = JSON.parse(text) as unknown
    return !!v && typeof v === 'object'
  } catch {
    return false
  }
}
