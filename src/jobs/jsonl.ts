import { BATCH_ENDPOINTS, isBatchEndpoint } from './dispatch.js'

export interface LineError {
  line: number
  message: string
}

export interface BatchLine {
  custom_id: string
  method: 'POST'
  url: string
  body: Record<string, unknown>
}

/** Splits JSONL into numbered non-empty lines (1-based, as editors count). */
export function jsonlLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = []
  text.split(/\r?\n/).forEach((t, i) => {
    if (t.trim()) out.push({ line: i + 1, text: t })
  })
  return out
}

/** The lines that parse as JSON objects; every other line gets its line error. */
export function jsonlObjects(raw: Array<{ line: number; text: string }>, errors: LineError[]): Array<{ line: number; value: Record<string, unknown> }> {
  const out: Array<{ line: number; value: Record<string, unknown> }> = []
  for (const { line, text } of raw) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      errors.push({ line, message: 'This line is not valid JSON.' })
      continue
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) errors.push({ line, message: 'Each line must be a JSON object.' })
    else out.push({ line, value: value as Record<string, unknown> })
  }
  return out
}

/**
 * Validates a batch input file line by line, as OpenAI does: each line a JSON
 * object with a unique custom_id, method POST, a batchable url and a body.
 */
export function parseBatchJsonl(text: string, maxLines = 50_000): { lines: BatchLine[]; errors: LineError[] } {
  const errors: LineError[] = []
  const lines: BatchLine[] = []
  const seen = new Map<string, number>()
  const raw = jsonlLines(text)
  if (raw.length === 0) errors.push({ line: 1, message: 'The file has no requests.' })
  if (raw.length > maxLines) errors.push({ line: maxLines + 1, message: `A batch file may hold at most ${maxLines} requests.` })
  for (const { line, value: v } of jsonlObjects(raw.slice(0, maxLines), errors)) {
    if (typeof v.custom_id !== 'string' || !v.custom_id) errors.push({ line, message: "Missing required field 'custom_id' (a non-empty string)." })
    else if (seen.has(v.custom_id)) errors.push({ line, message: `custom_id "${v.custom_id}" is also used on line ${seen.get(v.custom_id)}; custom ids must be unique.` })
    else seen.set(v.custom_id, line)
    if (v.method !== 'POST') errors.push({ line, message: "Field 'method' must be \"POST\"." })
    if (typeof v.url !== 'string' || !isBatchEndpoint(v.url)) errors.push({ line, message: `Field 'url' must be one of ${BATCH_ENDPOINTS.join(', ')}; got ${JSON.stringify(v.url)}.` })
    if (!v.body || typeof v.body !== 'object' || Array.isArray(v.body)) errors.push({ line, message: "Missing required field 'body' (a JSON object)." })
    else if (typeof (v.body as { model?: unknown }).model !== 'string') errors.push({ line, message: "The request body needs a 'model'." })
    if (errors.length === 0 || errors[errors.length - 1].line !== line) lines.push(v as unknown as BatchLine)
  }
  // Line order, as an editor shows them (unparseable lines were reported first).
  errors.sort((a, b) => a.line - b.line)
  return { lines, errors }
}

/** Human-readable summary of line errors, capped so a broken file still gives a short message. */
export function describeLineErrors(errors: LineError[], max = 10): string {
  const shown = errors.slice(0, max).map((e) => `line ${e.line}: ${e.message}`)
  const more = errors.length > max ? ` (and ${errors.length - max} more)` : ''
  return `${shown.join('; ')}${more}`
}
