import { estimateRequestTokens, estimateTextTokens } from '../../core/tokens.js'
import type { ChatEvent, ChatRequest, FinishReason, Message, ModelInfo, ToolDefinition } from '../../core/types.js'
import { GatewayError, type ErrorKind } from '../../errors.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'

/**
 * A deterministic provider for demos and tests (like LiteLLM's mock_response).
 * It answers with the last user message. Directives in that message script
 * the rest: `[[mock:tool=NAME {json}]]`, `[[mock:error=rate_limit]]`,
 * `[[mock:fail_after=N]]`, `[[mock:delay=MS]]`, `[[mock:thinking=TEXT]]`,
 * `[[mock:reply=TEXT]]`, `[[mock:system]]` (echo the system prompt).
 */
export interface MockOptions {
  id: string
  models?: Array<string | { id: string }>
  /** Delay between streamed chunks, in ms. */
  delayMs?: number
  /** Start every answer with the system prompt, so adapters and prompts can be asserted. */
  echoSystem?: boolean
  /** Embedding size for embed(). */
  dimensions?: number
}

const DIRECTIVE = /\[\[mock:(\w+)(?:=((?:[^\]]|\](?!\]))*))?\]\]/g

interface Script {
  reply: string
  tools: Array<{ name: string; arguments: string }>
  error?: ErrorKind
  failAfter?: number
  delay: number
  thinking?: string
}

export function mockProvider(options: MockOptions): Provider {
  const id = options.id
  const modelIds = (options.models ?? ['mock-1', 'mock-2']).map((m) => (typeof m === 'string' ? m : m.id))
  const models: ModelInfo[] = modelIds.map((m) => ({
    id: m,
    ownedBy: id,
    contextWindow: 128_000,
    maxOutputTokens: 16_384,
    capabilities: { tools: true, vision: true, embeddings: true, streaming: true, json: true, documents: true, audio: true, video: true, thinking: true },
  }))

  function ensureModel(model: string): void {
    if (!modelIds.includes(model)) throw new GatewayError('not_found', `Model "${model}" does not exist on provider "${id}".`, { code: 'model_not_found', param: 'model' })
  }

  return {
    id,
    type: 'mock',
    async models() {
      return models
    },
    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
        ensureModel(req.model)
        const script = scriptFor(req, options)
        if (script.error) throw scriptedError(id, script.error)
        yield { type: 'start', model: req.model }
        const delay = script.delay
        let sent = 0
        const tick = async () => {
          sent++
          if (script.failAfter !== undefined && sent > script.failAfter) throw new GatewayError('upstream', `Mock provider "${id}" failed mid-stream as asked.`)
          if (delay > 0) await sleep(delay, signal)
        }
        if (script.thinking) {
          await tick()
          yield { type: 'thinking', text: script.thinking }
          yield { type: 'thinking', text: '', signature: `mock-sig-${id}` }
        }
        let { text, finish, stopSequence } = applyLimits(script.reply, req)
        if (script.tools.length > 0 && finish === 'stop') finish = 'tool_calls'
        const words = text.match(/\S+\s*|\s+/g) ?? []
        for (const w of words) {
          await tick()
          yield { type: 'text', text: w }
        }
        if (finish === 'tool_calls') {
          for (const [index, call] of script.tools.entries()) {
            await tick()
            yield { type: 'tool_call_start', index, id: `call_mock_${index}_${hash(call.name + call.arguments).toString(36)}`, name: call.name }
            const half = Math.floor(call.arguments.length / 2)
            yield { type: 'tool_call_delta', index, arguments: call.arguments.slice(0, half) }
            yield { type: 'tool_call_delta', index, arguments: call.arguments.slice(half) }
          }
        }
        const output = estimateTextTokens(text) + script.tools.reduce((n, c) => n + estimateTextTokens(c.name + c.arguments), 0)
        yield { type: 'usage', usage: { inputTokens: estimateRequestTokens(req), outputTokens: output } }
        yield stopSequence === undefined ? { type: 'finish', reason: finish } : { type: 'finish', reason: finish, stopSequence }
      })
    },
    async embed(req) {
      ensureModel(req.model)
      const dims = req.dimensions ?? options.dimensions ?? 16
      return {
        model: req.model,
        embeddings: req.input.map((text) => embedding(text, dims)),
        usage: { inputTokens: req.input.reduce((n, t) => n + estimateTextTokens(t), 0) },
      }
    },
    async countTokens(req) {
      return estimateRequestTokens(req)
    },
    async health() {
      return { ok: true }
    },
  }
}

/** Fails the way a real provider would: its auth problems are the gateway's, not the client's. */
function scriptedError(id: string, kind: ErrorKind): GatewayError {
  const message = `Mock provider "${id}" was asked to fail with ${kind}.`
  if (kind === 'auth' || kind === 'permission') return new GatewayError(kind, message, { status: 502, code: 'provider_auth_error' })
  if (kind === 'rate_limit') return new GatewayError(kind, message, { retryAfter: 7 })
  return new GatewayError(kind, message)
}

function scriptFor(req: ChatRequest, options: MockOptions): Script {
  const last = req.messages[req.messages.length - 1]
  const userText = lastUserText(req.messages)
  const script: Script = { reply: '', tools: [], delay: options.delayMs ?? 0 }
  let echoSystem = options.echoSystem ?? false
  let directives = 0
  const clean = userText
    .replace(DIRECTIVE, (_m, name: string, value: string | undefined) => {
      switch (name) {
        case 'tool': {
          const space = value?.indexOf(' ') ?? -1
          const tool = space === -1 ? (value ?? '') : value!.slice(0, space)
          const args = space === -1 ? '{}' : value!.slice(space + 1)
          script.tools.push({ name: tool, arguments: args })
          break
        }
        case 'error':
          script.error = (value ?? 'upstream') as ErrorKind
          break
        case 'fail_after':
          script.failAfter = Number(value ?? 0)
          break
        case 'delay':
          script.delay = Number(value ?? 0)
          break
        case 'thinking':
          script.thinking = value ?? 'Thinking it over.'
          break
        case 'reply':
          script.reply = value ?? ''
          break
        case 'system':
          echoSystem = true
          break
      }
      directives++
      return ''
    })
    .replace(directives > 0 ? / {2,}/g : /$^/, ' ')
    .trim()
  if (!script.reply) {
    if (last?.role === 'tool') script.reply = `Tool result: ${toolResultText(last)}`
    else script.reply = clean || 'Hello from the mock provider.'
  }
  if (echoSystem) {
    const system = req.messages.filter((m) => m.role === 'system').map(textOf).join('\n')
    if (system) script.reply = `[system: ${system}] ${script.reply}`
  }
  if (script.tools.length === 0 && req.tools?.length && req.toolChoice !== 'none' && last?.role === 'user') {
    const tool = pickTool(req.tools, req.toolChoice, clean)
    if (tool) script.tools.push({ name: tool.name, arguments: JSON.stringify(argumentsFor(tool, clean)) })
  }
  if (script.tools.length > 0 && req.parallelToolCalls === false) script.tools.length = 1
  if (script.tools.length > 0 && !userText.includes('[[mock:reply')) script.reply = ''
  return script
}

function pickTool(tools: ToolDefinition[], choice: ChatRequest['toolChoice'], text: string): ToolDefinition | undefined {
  if (choice && typeof choice === 'object') return tools.find((t) => t.name === choice.name)
  if (choice === 'required') return tools.find((t) => text.includes(t.name)) ?? tools[0]
  return tools.find((t) => text.includes(t.name))
}

/** Fills the schema's properties: strings get the user's text, so round trips are checkable. */
function argumentsFor(tool: ToolDefinition, text: string): Record<string, unknown> {
  const props = (tool.parameters.properties ?? {}) as Record<string, { type?: string; enum?: unknown[] }>
  const out: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(props)) {
    if (schema.enum?.length) out[key] = schema.enum[0]
    else if (schema.type === 'number' || schema.type === 'integer') out[key] = 1
    else if (schema.type === 'boolean') out[key] = true
    else if (schema.type === 'array') out[key] = []
    else if (schema.type === 'object') out[key] = {}
    else out[key] = text
  }
  return out
}

function applyLimits(reply: string, req: ChatRequest): { text: string; finish: FinishReason; stopSequence?: string } {
  let text = reply
  for (const stop of req.stop ?? []) {
    const at = stop ? text.indexOf(stop) : -1
    if (at !== -1) return { text: text.slice(0, at), finish: 'stop_sequence', stopSequence: stop }
  }
  if (req.maxTokens !== undefined && estimateTextTokens(text) > req.maxTokens) {
    text = text.slice(0, Math.max(0, req.maxTokens * 4))
    return { text, finish: 'length' }
  }
  return { text, finish: 'stop' }
}

function lastUserText(messages: Message[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return textOf(messages[i])
  return ''
}

function textOf(m: Message): string {
  let out = ''
  for (const p of m.content) if (p.type === 'text') out += (out ? '\n' : '') + p.text
  return out
}

function toolResultText(m: Message): string {
  const parts: string[] = []
  for (const p of m.content) if (p.type === 'tool_result') for (const c of p.content) if (c.type === 'text') parts.push(c.text)
  return parts.join('\n')
}

function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** A unit vector derived from the text's character trigrams: similar texts get similar vectors. */
function embedding(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0)
  const t = ` ${text.toLowerCase()} `
  for (let i = 0; i + 3 <= t.length; i++) v[hash(t.slice(i, i + 3)) % dims] += 1
  const norm = Math.sqrt(v.reduce((n, x) => n + x * x, 0)) || 1
  return v.map((x) => x / norm)
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
