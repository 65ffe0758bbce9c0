import { z } from 'zod'
import type { ChatEvent, ChatRequest, EmbedRequest, FinishReason, ModelInfo } from '../../core/types.js'
import { estimateRequestTokens, estimateTextTokens } from '../../core/tokens.js'
import { GatewayError } from '../../errors.js'
import { embedBatchOptions, embedInBatches } from '../shared/embed-batches.js'
import { safeOrigin, type HttpClient } from '../shared/http.js'
import { eventStream } from '../shared/stream.js'
import type { CallContext, Provider } from '../types.js'
import { bridgeError, languageModelError } from './errors.js'
import { OutputGuard } from './output-guard.js'
import { relayTransport, type RelayStub } from './relay.js'
import { BridgeHub } from './reverse.js'
import { toWireChat } from './to-bridge.js'
import { PromptCounter } from './token-counter.js'
import { directTransport, type BridgeReply, type BridgeTransport } from './transport.js'
import { WireEmbeddings, WireEvent, WireHealth, WireModels, WireTokens } from './wire.js'

export const VscodeBridgeOptions = z.looseObject({
  id: z.string(),
  /** The bridge's URL: loopback, or a tunnel (https, any path prefix). */
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//i.test(u), 'url must be http:// or https://')
    .default('http://127.0.0.1:3775'),
  /** The bridge token ("LM Gateway Bridge: Copy token" in VS Code). */
  token: z.string().default(''),
  /** Extra headers for the tunnel in front of the bridge (Cloudflare Access service token, dev tunnels' anti-phishing skip). */
  headers: z.record(z.string(), z.string()).default(() => ({})),
  /**
   * Until the model's first part: the bridge waits for it before answering,
   * and VS Code's consent prompt may be waiting for a click on first use.
   */
  firstByteTimeoutMs: z.number().int().positive().default(300_000),
  /** Model lists, token counts, health. */
  timeoutMs: z.number().int().positive().default(30_000),
  /** Accept this bridge dialling in to GET /bridge/connect with the same token. */
  reverse: z.boolean().default(true),
  /** Keep-alive ping on reverse sockets, under the idle cut of tunnels and proxies. */
  pingIntervalMs: z.number().int().positive().default(25_000),
  /** Usage from the model's own tokenizer (extra bridge calls, cached) instead of the estimate. */
  countUsage: z.boolean().default(true),
  /** Shown by VS Code in its consent prompt. */
  justification: z.string().default('vscode-lm-gateway serves this model to your OpenAI- and Anthropic-API tools.'),
  ...embedBatchOptions(64),
})
export type VscodeBridgeOptions = z.input<typeof VscodeBridgeOptions>

/** What the reverse-mode endpoint needs from a provider: where sockets go, and the token they must present. */
export interface ReverseEndpoint {
  hub: BridgeHub
  token: string
}

export type VscodeBridgeProvider = Provider & { readonly reverse?: ReverseEndpoint }

export function isReverseCapable(p: Provider): p is VscodeBridgeProvider & { reverse: ReverseEndpoint } {
  return (p as VscodeBridgeProvider).reverse !== undefined
}

export function vscodeBridgeProvider(input: VscodeBridgeOptions, http: HttpClient): VscodeBridgeProvider {
  const opts = VscodeBridgeOptions.parse(input)
  const id = opts.id
  const base = opts.url.replace(/\/+$/, '')
  const reverseOn = opts.reverse && opts.token !== ''
  const hub = reverseOn ? new BridgeHub(id, opts.pingIntervalMs) : undefined
  const direct = directTransport({ provider: id, base, token: opts.token, headers: opts.headers, http, reverseEnabled: reverseOn })
  const batching = { batchSize: opts.embedBatchSize, concurrency: opts.embedConcurrency }

  let relayed: { stub: () => RelayStub; transport: BridgeTransport } | undefined
  /** A connected reverse socket wins: it is how a bridge behind NAT is reached at all (on Workers, through the relay object). */
  const transport = (): BridgeTransport => {
    const channel = hub?.current()
    if (channel) return channel
    if (!hub?.relay) return direct
    if (relayed?.stub !== hub.relay) relayed = { stub: hub.relay, transport: relayTransport({ provider: id, stub: hub.relay, fallback: direct, url: base, onChange: () => hub.notifyChanged() }) }
    return relayed.transport
  }

  /** A short call (not a chat stream) with its own deadline, parsed with `schema`. */
  async function simple<T>(path: string, body: unknown, signal: AbortSignal, schema: z.ZodType<T>): Promise<T> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs)])
    let reply: BridgeReply
    try {
      reply = await transport().call(body === undefined ? 'GET' : 'POST', path, body, deadline)
    } catch (err) {
      if (deadline.aborted && !signal.aborted) throw new GatewayError('timeout', `The VS Code bridge (provider "${id}") did not answer ${path} within ${opts.timeoutMs} ms.`)
      throw err
    }
    if (reply.status !== 200) throw await bridgeError(id, base, reply)
    const parsed = schema.safeParse(await reply.json())
    if (!parsed.success) throw new GatewayError('upstream', `The VS Code bridge (provider "${id}") sent an unexpected ${path} answer; is the extension up to date?`, { code: 'bridge_protocol_error' })
    return parsed.data
  }

  const counter = new PromptCounter(async (model, input, signal) => (await simple('/v1/count-tokens', { model, ...input }, signal, WireTokens)).tokens)

  async function openChat(body: ReturnType<typeof toWireChat>, signal: AbortSignal): Promise<BridgeReply> {
    const ctrl = new AbortController()
    const follow = () => ctrl.abort(signal.reason)
    if (signal.aborted) follow()
    else signal.addEventListener('abort', follow, { once: true })
    const timer = setTimeout(() => ctrl.abort(new GatewayError('timeout', `The VS Code model (provider "${id}") did not start answering within ${opts.firstByteTimeoutMs} ms. If VS Code shows a prompt asking to allow the LM Gateway Bridge to use the model, accept it.`)), opts.firstByteTimeoutMs)
    try {
      const reply = await transport().call('POST', '/v1/chat', body, ctrl.signal)
      if (reply.status !== 200) throw await bridgeError(id, base, reply)
      return reply
    } catch (err) {
      if (ctrl.signal.aborted && ctrl.signal.reason instanceof GatewayError) throw ctrl.signal.reason
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  const provider: VscodeBridgeProvider = {
    id,
    type: 'vscode-bridge',
    ...(hub ? { reverse: { hub, token: opts.token } } : {}),

    async models(signal) {
      const body = await simple('/v1/models', undefined, signal ?? AbortSignal.timeout(opts.timeoutMs), WireModels)
      return body.models.map(
        (m): ModelInfo => ({
          id: m.id,
          ...(m.name ? { name: m.name } : {}),
          ownedBy: m.vendor ?? id,
          ...(m.maxInputTokens ? { contextWindow: m.maxInputTokens } : {}),
          capabilities: { tools: m.capabilities?.toolCalling ?? true, vision: m.capabilities?.imageInput ?? false, streaming: true, embeddings: false },
        }),
      )
    },

    chat(req: ChatRequest, ctx: CallContext) {
      return eventStream(ctx.signal, async function* (signal): AsyncGenerator<ChatEvent> {
        const body = toWireChat(req, opts.justification)
        // Counted while the model works, so usage costs no latency up front.
        const prompt = opts.countUsage ? counter.prompt(req.model, body.messages, body.tools, signal) : undefined
        prompt?.catch(() => {})
        const reply = await openChat(body, signal)

        const guard = new OutputGuard({ stop: req.stop, maxTokens: req.maxTokens })
        let produced = ''
        let calls = 0
        let cut: { reason: FinishReason; stopSequence?: string } | undefined
        let ended = false
        try {
          for await (const raw of reply.events()) {
            const parsed = WireEvent.safeParse(raw)
            if (!parsed.success) throw new GatewayError('upstream', `The VS Code bridge (provider "${id}") sent an unknown event; is the extension up to date?`, { code: 'bridge_protocol_error' })
            const e = parsed.data
            if (e.type === 'end') {
              ended = true
              break
            }
            if (e.type === 'error') throw languageModelError(id, e.code, e.message ?? '')
            if (e.type === 'text') {
              const step = guard.text(e.text)
              if (step.text) {
                produced += step.text
                yield { type: 'text', text: step.text }
              }
              cut = step.stop
            } else {
              const pre = guard.release()
              if (pre.text) {
                produced += pre.text
                yield { type: 'text', text: pre.text }
              }
              cut = pre.stop
              if (cut) break
              let spent: string
              if (e.type === 'thinking') {
                spent = e.text
                yield { type: 'thinking', text: e.text }
              } else {
                const args = JSON.stringify(e.input ?? {})
                spent = e.name + args
                const index = calls++
                yield { type: 'tool_call_start', index, id: e.callId || `call_${crypto.randomUUID().replace(/-/g, '').slice(0, 24)}`, name: e.name }
                yield { type: 'tool_call_delta', index, arguments: args }
              }
              produced += spent
              cut = guard.spendOther(spent.length).stop
            }
            if (cut) break
          }
        } finally {
          // Cut short (stop sequence, max tokens, error, client gone): the model call is cancelled.
          if (!ended) await reply.discard().catch(() => {})
        }
        if (!ended && !cut) throw new GatewayError('upstream', `The VS Code bridge (provider "${id}") ended the answer without finishing it.`, { code: 'bridge_stream_truncated' })
        const rest = guard.flush()
        if (rest.text) {
          produced += rest.text
          yield { type: 'text', text: rest.text }
        }
        cut ??= rest.stop

        if (prompt) {
          const [input, output] = await Promise.all([prompt, counter.text(req.model, produced, signal)])
          yield { type: 'usage', usage: { inputTokens: input.tokens, outputTokens: output.tokens, ...(input.estimated || output.estimated ? { estimated: true } : {}) } }
        } else {
          yield { type: 'usage', usage: { inputTokens: estimateRequestTokens(req), outputTokens: estimateTextTokens(produced), estimated: true } }
        }
        const reason: FinishReason = cut?.reason ?? (calls > 0 ? 'tool_calls' : 'stop')
        yield cut?.stopSequence !== undefined ? { type: 'finish', reason, stopSequence: cut.stopSequence } : { type: 'finish', reason }
      })
    },

    async countTokens(req: ChatRequest, ctx: CallContext) {
      const body = toWireChat(req, undefined)
      return (await counter.prompt(req.model, body.messages, body.tools, ctx.signal)).tokens
    },

    async embed(req: EmbedRequest, ctx: CallContext) {
      return embedInBatches(id, req.input, batching, ctx.signal, async (batch, signal) => {
        const reply = await transport().call('POST', '/v1/embeddings', { model: req.model, input: batch }, AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs)]))
        if (reply.status === 501) {
          throw new GatewayError(
            'invalid_request',
            `VS Code has no embeddings API for extensions (vscode.lm.computeEmbeddings is a proposed API), so provider "${id}" cannot embed. Configure an embeddings provider (openai-compatible, ollama …) and use one of its models.`,
            { param: 'model', code: 'embeddings_not_supported' },
          )
        }
        if (reply.status !== 200) throw await bridgeError(id, base, reply)
        const parsed = WireEmbeddings.safeParse(await reply.json())
        if (!parsed.success) throw new GatewayError('upstream', `The VS Code bridge (provider "${id}") sent an unexpected embeddings answer.`, { code: 'bridge_protocol_error' })
        return { embeddings: parsed.data.embeddings, model: req.model }
      })
    },

    async health(signal) {
      try {
        const via = transport()
        const h = await simple('/v1/health', undefined, signal ?? AbortSignal.timeout(opts.timeoutMs), WireHealth)
        const where = via.kind === 'reverse' ? 'connected in reverse mode' : `at ${safeOrigin(base)}`
        return { ok: h.ok, detail: `VS Code ${h.vscode ?? '?'}, bridge protocol ${h.bridge ?? '?'}, ${where}` }
      } catch (err) {
        return { ok: false, detail: GatewayError.from(err).message }
      }
    },
  }
  return provider
}
