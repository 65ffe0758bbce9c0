import type { ChatRequest, Message, Part, ToolResultPart } from '../../core/types.js'
import { GatewayError } from '../../errors.js'

/**
 * Core request → Gemini GenerateContentRequest (the same body on Vertex AI
 * and on the Gemini API). Gemini's roles are `user` and `model`; function
 * results go back as `functionResponse` parts in a user turn, named after
 * the call they answer.
 */
type GPart = Record<string, unknown>
type Content = { role: 'user' | 'model'; parts: GPart[] }

export function toGeminiBody(req: ChatRequest): Record<string, unknown> {
  const names = new Map<string, string>()
  for (const m of req.messages) for (const p of m.content) if (p.type === 'tool_call') names.set(p.id, p.name)

  const system: GPart[] = []
  const contents: Content[] = []
  req.messages.forEach((m, i) => {
    if (m.role === 'system') {
      for (const p of m.content) if (p.type === 'text') system.push({ text: p.text })
      return
    }
    const parts = partsOf(m, i, names)
    if (!parts.length) return
    const role = m.role === 'assistant' ? 'model' : 'user'
    const last = contents[contents.length - 1]
    if (last?.role === role) last.parts.push(...parts)
    else contents.push({ role, parts })
  })

  const body: Record<string, unknown> = { contents }
  if (system.length) body.systemInstruction = { parts: system }
  if (req.tools?.length) {
    body.tools = [
      {
        functionDeclarations: req.tools.map((t) => {
          const params = toGeminiSchema(t.parameters)
          const empty = !params || (params.type === 'object' && !Object.keys((params.properties as object | undefined) ?? {}).length)
          return { name: t.name, ...(t.description ? { description: t.description } : {}), ...(empty ? {} : { parameters: params }) }
        }),
      },
    ]
    const c = req.toolChoice
    if (c !== undefined) {
      body.toolConfig = {
        functionCallingConfig:
          typeof c === 'object' ? { mode: 'ANY', allowedFunctionNames: [c.name] } : { mode: c === 'required' ? 'ANY' : c === 'none' ? 'NONE' : 'AUTO' },
      }
    }
  }

  const g: Record<string, unknown> = {}
  if (req.maxTokens !== undefined) g.maxOutputTokens = req.maxTokens
  if (req.temperature !== undefined) g.temperature = req.temperature
  if (req.topP !== undefined) g.topP = req.topP
  if (req.topK !== undefined) g.topK = req.topK
  if (req.stop?.length) g.stopSequences = req.stop
  if (req.seed !== undefined) g.seed = req.seed
  const f = req.responseFormat
  if (f?.type === 'json_object') g.responseMimeType = 'application/json'
  else if (f?.type === 'json_schema') {
    g.responseMimeType = 'application/json'
    g.responseSchema = toGeminiSchema(f.schema)
  }
  if (req.thinking?.type === 'enabled') g.thinkingConfig = { includeThoughts: true, ...(req.thinking.budgetTokens !== undefined ? { thinkingBudget: req.thinking.budgetTokens } : {}) }
  else if (req.thinking?.type === 'adaptive') g.thinkingConfig = { includeThoughts: true, thinkingBudget: -1 }
  else if (req.thinking?.type === 'disabled') g.thinkingConfig = { thinkingBudget: 0 }
  if (Object.keys(g).length) body.generationConfig = g
  if (req.providerOptions) Object.assign(body, req.providerOptions)
  return body
}

function partsOf(m: Message, i: number, names: Map<string, string>): GPart[] {
  const out: GPart[] = []
  m.content.forEach((p, j) => {
    const part = partOf(p, `messages[${i}].content[${j}]`, names)
    if (part) out.push(part)
  })
  return out
}

function partOf(p: Part, param: string, names: Map<string, string>): GPart | null {
  switch (p.type) {
    case 'text':
      return p.text ? { text: p.text } : null
    case 'image':
    case 'audio':
    case 'video':
      return media(p.mimeType, p.data, p.url)
    case 'document':
      if (p.text !== undefined) return { text: p.text }
      return media(p.mimeType, p.data, p.url)
    case 'tool_call': {
      let args: unknown = {}
      try {
        args = p.arguments ? JSON.parse(p.arguments) : {}
      } catch {
        throw new GatewayError('invalid_request', 'Tool call arguments must be JSON for Gemini.', { param })
      }
      return { functionCall: { name: p.name, args } }
    }
    case 'tool_result':
      return functionResponse(p, param, names)
    case 'thinking':
      // Gemini's thoughts are not sent back as text; their signatures are not kept in core parts.
      return null
  }
}

function media(mimeType: string, data: string | undefined, url: string | undefined): GPart {
  return data !== undefined ? { inlineData: { mimeType, data } } : { fileData: { mimeType, fileUri: url } }
}

function functionResponse(p: ToolResultPart, param: string, names: Map<string, string>): GPart {
  const name = names.get(p.callId)
  if (!name) throw new GatewayError('invalid_request', `Tool result for "${p.callId}" has no matching tool call earlier in the conversation; Gemini needs the function name.`, { param })
  const text = p.content.map((c) => (c.type === 'text' ? c.text : '')).join('')
  // Gemini's documented convention: "output" for the result, "error" for a failure.
  return { functionResponse: { name, response: p.isError ? { error: text } : { output: text } } }
}

const KEEP = new Set(['type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties', 'required', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf', 'propertyOrdering', 'default', 'items', 'minimum', 'maximum'])

/**
 * JSON Schema → the OpenAPI-3.0 subset Gemini's `parameters`/`responseSchema`
 * accept: unsupported keywords are dropped (Gemini rejects e.g.
 * additionalProperties and $schema), `const` becomes a one-value enum and
 * `type: [T, "null"]` becomes `nullable`.
 */
export function toGeminiSchema(schema: unknown): Record<string, unknown> | undefined {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return undefined
  const s = schema as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s)) {
    if (!KEEP.has(k)) continue
    if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([name, sub]) => [name, toGeminiSchema(sub) ?? {}]))
    } else if (k === 'items') out.items = toGeminiSchema(v)
    else if (k === 'anyOf' && Array.isArray(v)) out.anyOf = v.map((x) => toGeminiSchema(x) ?? {})
    else if (k === 'type' && Array.isArray(v)) {
      const types = v.filter((t) => t !== 'null')
      if (types.length !== v.length) out.nullable = true
      if (types.length) out.type = types[0]
    } else out[k] = v
  }
  if ('const' in s) out.enum = [s.const]
  if (Array.isArray(out.enum)) out.enum = out.enum.map(String)
  return out
}
