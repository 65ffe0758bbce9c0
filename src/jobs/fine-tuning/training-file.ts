import { describeLineErrors, jsonlLines, jsonlObjects, type LineError } from '../jsonl.js'

/** One message of a training example, as OpenAI's chat format writes it (validated). */
export interface WireMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool'
  content?: string | Array<Record<string, unknown>> | null
  name?: string
  weight?: 0 | 1
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>
  tool_call_id?: string
}

export type TrainingFormat = 'chat' | 'completion' | 'preference'

/**
 * One example, split where it teaches: `prompt` is the conversation before
 * the answer (system messages included), `answer` the last assistant message
 * trained on (weight ≠ 0). Earlier assistant turns stay in the prompt.
 */
export interface TrainingExample {
  line: number
  prompt: WireMessage[]
  answer: WireMessage
  tools?: unknown[]
}

export interface ParsedTrainingFile {
  format: TrainingFormat | undefined
  examples: TrainingExample[]
  errors: LineError[]
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'weight', 'tool_calls', 'tool_call_id', 'function_call', 'refusal'])
const FORMAT_NAMES: Record<TrainingFormat, string> = { chat: 'chat (messages)', completion: 'prompt/completion', preference: 'preference (input, preferred_output, non_preferred_output)' }

/**
 * Validates a fine-tuning file line by line, as OpenAI does before a job
 * starts: the chat format (`messages`, optional `tools`), the legacy
 * prompt/completion format, or the preference (DPO) format; one format per
 * file. Every problem is reported with its 1-based line number.
 */
export function parseTrainingFile(text: string): ParsedTrainingFile {
  const errors: LineError[] = []
  const examples: TrainingExample[] = []
  let format: TrainingFormat | undefined
  let formatLine = 0
  const raw = jsonlLines(text)
  if (raw.length === 0) errors.push({ line: 1, message: 'The file has no examples.' })
  for (const { line, value } of jsonlObjects(raw, errors)) {
    const problems: string[] = []
    const lineFormat = formatOf(value)
    if (!lineFormat) {
      errors.push({ line, message: "Missing 'messages' (chat format), 'prompt' and 'completion' (prompt/completion format) or 'input' and 'preferred_output' (preference format)." })
      continue
    }
    if (format === undefined) {
      format = lineFormat
      formatLine = line
    } else if (lineFormat !== format) {
      errors.push({ line, message: `This line is in the ${FORMAT_NAMES[lineFormat]} format but line ${formatLine} is in the ${FORMAT_NAMES[format]} format; use one format per file.` })
      continue
    }
    const example = lineFormat === 'chat' ? chatExample(value, problems) : lineFormat === 'completion' ? completionExample(value, problems) : preferenceExample(value, problems)
    if (problems.length) for (const message of problems) errors.push({ line, message })
    else if (example) examples.push({ line, ...example })
  }
  // Line order, as an editor shows them (unparseable lines were reported first).
  errors.sort((a, b) => a.line - b.line)
  return { format, examples, errors }
}

function formatOf(v: Record<string, unknown>): TrainingFormat | undefined {
  if ('messages' in v) return 'chat'
  if ('input' in v || 'preferred_output' in v || 'non_preferred_output' in v) return 'preference'
  if ('prompt' in v || 'completion' in v) return 'completion'
  return undefined
}

function chatExample(v: Record<string, unknown>, problems: string[]): Omit<TrainingExample, 'line'> | undefined {
  const tools = checkTools(v.tools, 'tools', problems)
  const messages = checkMessages(v.messages, 'messages', tools, problems)
  if (!messages) return undefined
  let at = -1
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'assistant' && messages[i].weight !== 0) {
      at = i
      break
    }
  }
  if (at === -1) {
    problems.push('The example has no assistant message to learn from (every example needs one whose weight is not 0).')
    return undefined
  }
  return { prompt: messages.slice(0, at), answer: messages[at], ...(tools ? { tools: v.tools as unknown[] } : {}) }
}

function completionExample(v: Record<string, unknown>, problems: string[]): Omit<TrainingExample, 'line'> | undefined {
  if (typeof v.prompt !== 'string') problems.push("'prompt' must be a string.")
  if (typeof v.completion !== 'string') problems.push("'completion' must be a string.")
  else if (!v.completion.trim()) problems.push("'completion' is empty.")
  if (problems.length) return undefined
  return { prompt: [{ role: 'user', content: v.prompt as string }], answer: { role: 'assistant', content: v.completion as string } }
}

function preferenceExample(v: Record<string, unknown>, problems: string[]): Omit<TrainingExample, 'line'> | undefined {
  if (!isObject(v.input)) {
    problems.push("'input' must be an object with 'messages'.")
    return undefined
  }
  const tools = checkTools(v.input.tools, 'input.tools', problems)
  const messages = checkMessages(v.input.messages, 'input.messages', tools, problems)
  const preferred = checkOutput(v.preferred_output, 'preferred_output', tools, problems)
  checkOutput(v.non_preferred_output, 'non_preferred_output', tools, problems)
  if (!messages || !preferred || problems.length) return undefined
  if (messages[messages.length - 1]?.role === 'assistant') problems.push("'input.messages' must end with a user (or tool) message: the outputs are the assistant's answer to it.")
  return { prompt: messages, answer: preferred, ...(tools ? { tools: v.input.tools as unknown[] } : {}) }
}

function checkOutput(value: unknown, at: string, tools: Set<string> | undefined, problems: string[]): WireMessage | undefined {
  if (!Array.isArray(value) || value.length !== 1) {
    problems.push(`'${at}' must be an array holding one assistant message.`)
    return undefined
  }
  const before = problems.length
  const m = checkMessage(value[0], `${at}[0]`, tools, new Set(), problems)
  if (m && m.role !== 'assistant') problems.push(`${at}[0].role must be "assistant"; got "${m.role}".`)
  return problems.length === before ? m : undefined
}

function checkTools(value: unknown, at: string, problems: string[]): Set<string> | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) {
    problems.push(`'${at}' must be an array of function tools.`)
    return undefined
  }
  const names = new Set<string>()
  value.forEach((tool, i) => {
    const fn = isObject(tool) ? tool.function : undefined
    if (!isObject(tool) || tool.type !== 'function' || !isObject(fn)) problems.push(`${at}[${i}] must be {"type": "function", "function": {"name": …}}.`)
    else if (typeof fn.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fn.name)) problems.push(`${at}[${i}].function.name must be 1-64 letters, digits, "_" or "-".`)
    else {
      if (fn.parameters !== undefined && !isObject(fn.parameters)) problems.push(`${at}[${i}].function.parameters must be a JSON Schema object.`)
      names.add(fn.name)
    }
  })
  return names
}

function checkMessages(value: unknown, at: string, tools: Set<string> | undefined, problems: string[]): WireMessage[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`'${at}' must be a non-empty array of messages.`)
    return undefined
  }
  const callIds = new Set<string>()
  const out: WireMessage[] = []
  const before = problems.length
  value.forEach((m, i) => {
    const checked = checkMessage(m, `${at}[${i}]`, tools, callIds, problems)
    if (checked) out.push(checked)
  })
  return problems.length === before ? out : undefined
}

function checkMessage(m: unknown, at: string, tools: Set<string> | undefined, callIds: Set<string>, problems: string[]): WireMessage | undefined {
  if (!isObject(m)) {
    problems.push(`${at} must be an object.`)
    return undefined
  }
  const before = problems.length
  for (const key of Object.keys(m)) if (!MESSAGE_KEYS.has(key)) problems.push(`${at} has an unrecognized key '${key}'.`)
  const role = m.role
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    problems.push(`${at}.role must be one of ${ROLES.join(', ')}; got ${JSON.stringify(role ?? null)}.`)
    return undefined
  }
  if (m.weight !== undefined) {
    if (role !== 'assistant') problems.push(`${at}.weight is only allowed on assistant messages.`)
    else if (m.weight !== 0 && m.weight !== 1) problems.push(`${at}.weight must be 0 or 1; got ${JSON.stringify(m.weight)}.`)
  }
  if (m.name !== undefined && typeof m.name !== 'string') problems.push(`${at}.name must be a string.`)
  if (m.function_call !== undefined) problems.push(`${at}.function_call is the deprecated functions format; use tool_calls (with tools) instead.`)
  const hasCalls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0
  if (m.tool_calls !== undefined) {
    if (role !== 'assistant') problems.push(`${at}.tool_calls is only allowed on assistant messages.`)
    else checkToolCalls(m.tool_calls, `${at}.tool_calls`, tools, callIds, problems)
  }
  if (role === 'tool') {
    if (typeof m.tool_call_id !== 'string' || !m.tool_call_id) problems.push(`${at}.tool_call_id is required on tool messages.`)
    else if (!callIds.has(m.tool_call_id)) problems.push(`${at}.tool_call_id "${m.tool_call_id}" does not match a tool call of an earlier assistant message.`)
  } else if (m.tool_call_id !== undefined) problems.push(`${at}.tool_call_id is only allowed on tool messages.`)
  checkContent(m.content, `${at}.content`, role, hasCalls, problems)
  return problems.length === before ? (m as unknown as WireMessage) : undefined
}

function checkToolCalls(value: unknown, at: string, tools: Set<string> | undefined, callIds: Set<string>, problems: string[]): void {
  if (!Array.isArray(value)) {
    problems.push(`${at} must be an array.`)
    return
  }
  value.forEach((call, i) => {
    const fn = isObject(call) ? call.function : undefined
    if (!isObject(call) || typeof call.id !== 'string' || !call.id) return void problems.push(`${at}[${i}].id is required (a string).`)
    if (call.type !== 'function') problems.push(`${at}[${i}].type must be "function".`)
    if (!isObject(fn) || typeof fn.name !== 'string' || !fn.name) return void problems.push(`${at}[${i}].function.name is required.`)
    if (tools && !tools.has(fn.name)) problems.push(`${at}[${i}] calls "${fn.name}", which is not one of the example's tools (${[...tools].join(', ') || 'none'}).`)
    if (typeof fn.arguments !== 'string') problems.push(`${at}[${i}].function.arguments must be a string of JSON.`)
    else {
      try {
        JSON.parse(fn.arguments)
      } catch {
        problems.push(`${at}[${i}].function.arguments is not valid JSON.`)
      }
    }
    callIds.add(call.id)
  })
}

function checkContent(content: unknown, at: string, role: string, hasCalls: boolean, problems: string[]): void {
  if (content === undefined || content === null) {
    if (role !== 'assistant' || !hasCalls) problems.push(`${at} is missing${role === 'assistant' ? ' (an assistant message needs content or tool_calls)' : ''}.`)
    return
  }
  if (typeof content === 'string') {
    if (!content && !(role === 'assistant' && hasCalls)) problems.push(`${at} is empty.`)
    return
  }
  if (!Array.isArray(content)) {
    problems.push(`${at} must be a string or an array of content parts.`)
    return
  }
  content.forEach((part, i) => {
    const type = isObject(part) ? part.type : undefined
    if (type === 'text') {
      if (typeof (part as { text?: unknown }).text !== 'string') problems.push(`${at}[${i}].text must be a string.`)
    } else if (type === 'image_url') {
      if (role !== 'user') problems.push(`${at}[${i}]: images are only allowed in user messages.`)
      const url = (part as { image_url?: { url?: unknown } }).image_url?.url
      if (typeof url !== 'string') problems.push(`${at}[${i}].image_url.url must be a string.`)
    } else problems.push(`${at}[${i}].type must be "text"${role === 'user' ? ' or "image_url"' : ''}; got ${JSON.stringify(type ?? null)}.`)
  })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v)
}

/** The text of a message's content (images as a marker). */
export function contentText(content: WireMessage['content']): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content.map((p) => (p.type === 'text' ? String(p.text ?? '') : '[image]')).join('\n')
}

/** An answer as text: its content, then its tool calls written out. */
export function answerText(m: WireMessage): string {
  const calls = (m.tool_calls ?? []).map((c) => `[calls ${c.function.name}(${c.function.arguments})]`)
  return [contentText(m.content), ...calls].filter(Boolean).join('\n')
}

/** The text that identifies what an example asks: its last user (or tool) turn. */
export function queryText(prompt: WireMessage[]): string {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const m = prompt[i]
    if (m.role === 'user' || m.role === 'tool') return contentText(m.content)
  }
  return ''
}

/** The Files API's check of a `fine-tune` upload: line-numbered problems, or undefined when the file is valid. */
export function validateFineTuneFile(text: string): string | undefined {
  const { errors } = parseTrainingFile(text)
  return errors.length ? describeLineErrors(errors) : undefined
}
