/**
 * A fake of the `vscode` module's language-model surface (plus the bits of
 * window/env/commands/workspace an extension's lifecycle touches), following
 * vscode.d.ts 1.95+ and the proposals the bridge uses (DataPart, thinking parts,
 * embeddings). It enforces the rules VS Code enforces — roles, part placement,
 * tool-call/tool-result pairing, consent, cancellation — so tests catch
 * conversations a real VS Code would refuse.
 *
 * Usage:
 *   const vscode = createFakeVscode({ dataPart: false })
 *   const model = vscode.fake.addModel({ id: 'm', reply: async function* (ctx) { yield ctx.text('hi') } })
 *   createBridgeApp(vscode, …)            // the fake is the injected module
 *   model.requests[0].messages            // what the model received
 */
import type * as vscode from 'vscode'

// ---------------------------------------------------------------- basics

const disposeCallbacks = new WeakMap<Disposable, () => unknown>()

export class Disposable {
  static from(...disposables: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => {
      for (const d of disposables) d.dispose()
    })
  }

  // Kept outside the instance: a private field would make the class nominal and unassignable to vscode.Disposable.
  constructor(callOnDispose: () => unknown) {
    disposeCallbacks.set(this, callOnDispose)
  }

  dispose(): unknown {
    const call = disposeCallbacks.get(this)
    disposeCallbacks.delete(this)
    return call?.()
  }
}

export type Event<T> = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: { dispose(): unknown }[]) => Disposable

export class EventEmitter<T> {
  private listeners = new Set<(e: T) => unknown>()

  readonly event: Event<T> = (listener, thisArgs, disposables) => {
    const bound = thisArgs === undefined ? listener : (e: T) => listener.call(thisArgs, e)
    this.listeners.add(bound)
    const d = new Disposable(() => this.listeners.delete(bound))
    disposables?.push(d)
    return d
  }

  fire(data: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(data)
      } catch {
        // VS Code isolates listener errors from the emitter; so does the fake.
      }
    }
  }

  dispose(): void {
    this.listeners.clear()
  }
}

/** VS Code's cancellation error: name and message are both "Canceled". */
export class CancellationError extends Error {
  constructor() {
    super('Canceled')
    this.name = 'Canceled'
  }
}

export interface CancellationToken {
  isCancellationRequested: boolean
  onCancellationRequested: Event<unknown>
}

export class CancellationTokenSource {
  private emitter = new EventEmitter<unknown>()
  private cancelled = false
  readonly token: CancellationToken

  constructor() {
    const source = this
    this.token = {
      get isCancellationRequested() {
        return source.cancelled
      },
      onCancellationRequested: (listener, thisArgs, disposables) => {
        // Like VS Code: a listener added after cancellation still hears about it (asynchronously).
        if (source.cancelled) {
          const handle = setTimeout(() => listener.call(thisArgs, undefined), 0)
          const d = new Disposable(() => clearTimeout(handle))
          disposables?.push(d)
          return d
        }
        return source.emitter.event(listener, thisArgs, disposables)
      },
    }
  }

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    this.emitter.fire(undefined)
  }

  dispose(cancel = false): void {
    if (cancel) this.cancel()
    this.emitter.dispose()
  }
}

// ---------------------------------------------------------------- language model types

export enum LanguageModelChatMessageRole {
  User = 1,
  Assistant = 2,
}

export enum LanguageModelChatToolMode {
  Auto = 1,
  Required = 2,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export class LanguageModelTextPart {
  value: string
  constructor(value: string) {
    this.value = value
  }
}

export class LanguageModelToolCallPart {
  callId: string
  name: string
  input: object
  constructor(callId: string, name: string, input: object) {
    this.callId = callId
    this.name = name
    this.input = input
  }
}

export class LanguageModelToolResultPart {
  callId: string
  content: unknown[]
  constructor(callId: string, content: unknown[]) {
    this.callId = callId
    this.content = content
  }
}

export class LanguageModelPromptTsxPart {
  value: unknown
  constructor(value: unknown) {
    this.value = value
  }
}

/** Stable in VS Code ≥1.101 (images and other binary content in messages). */
export class LanguageModelDataPart {
  static image(data: Uint8Array, mime: string): LanguageModelDataPart {
    return new LanguageModelDataPart(data, mime)
  }

  static json(value: unknown, mime = 'text/x-json'): LanguageModelDataPart {
    return new LanguageModelDataPart(new TextEncoder().encode(JSON.stringify(value, undefined, '\t')), mime)
  }

  static text(value: string, mime = 'text/plain'): LanguageModelDataPart {
    return new LanguageModelDataPart(new TextEncoder().encode(value), mime)
  }

  mimeType: string
  data: Uint8Array
  constructor(data: Uint8Array, mimeType: string) {
    this.data = data
    this.mimeType = mimeType
  }
}

/** Proposed API `languageModelThinkingPart`. */
export class LanguageModelThinkingPart {
  value: string | string[]
  id?: string
  metadata?: { readonly [key: string]: unknown }
  constructor(value: string | string[], id?: string, metadata?: { readonly [key: string]: unknown }) {
    this.value = value
    this.id = id
    this.metadata = metadata
  }
}

type MessagePart = LanguageModelTextPart | LanguageModelToolResultPart | LanguageModelToolCallPart

export class LanguageModelChatMessage {
  static User(content: string | (LanguageModelTextPart | LanguageModelToolResultPart)[], name?: string): LanguageModelChatMessage {
    return new LanguageModelChatMessage(LanguageModelChatMessageRole.User, content, name)
  }

  static Assistant(content: string | (LanguageModelTextPart | LanguageModelToolCallPart)[], name?: string): LanguageModelChatMessage {
    return new LanguageModelChatMessage(LanguageModelChatMessageRole.Assistant, content, name)
  }

  role: LanguageModelChatMessageRole
  content: MessagePart[]
  name: string | undefined

  constructor(role: LanguageModelChatMessageRole, content: string | MessagePart[], name?: string) {
    this.role = role
    this.content = typeof content === 'string' ? [new LanguageModelTextPart(content)] : content
    this.name = name
  }
}

export class LanguageModelError extends Error {
  static NoPermissions(message?: string): LanguageModelError {
    return new LanguageModelError(message, 'NoPermissions')
  }

  static Blocked(message?: string): LanguageModelError {
    return new LanguageModelError(message, 'Blocked')
  }

  static NotFound(message?: string): LanguageModelError {
    return new LanguageModelError(message, 'NotFound')
  }

  readonly code: string

  constructor(message?: string, code?: string, cause?: Error) {
    super(message, { cause })
    this.name = 'LanguageModelError'
    this.code = code ?? ''
  }
}

export interface LanguageModelChatTool {
  name: string
  description: string
  inputSchema?: object
}

export interface LanguageModelChatRequestOptions {
  justification?: string
  modelOptions?: { [name: string]: unknown }
  tools?: LanguageModelChatTool[]
  toolMode?: LanguageModelChatToolMode
}

export interface LanguageModelChatSelector {
  vendor?: string
  family?: string
  version?: string
  id?: string
}

export interface LanguageModelChatResponse {
  stream: AsyncIterable<unknown>
  text: AsyncIterable<string>
}

// ---------------------------------------------------------------- VS Code's request rules

/**
 * What VS Code (and the Copilot provider behind it) checks before a request
 * reaches a model; the messages mirror VS Code's so error mapping is realistic.
 */
export function validateMessages(messages: readonly LanguageModelChatMessage[], dataParts: boolean): void {
  messages.forEach((message, index) => {
    if (message.role !== LanguageModelChatMessageRole.User && message.role !== LanguageModelChatMessageRole.Assistant) {
      throw new Error(`Invalid role: ${String(message.role)} (message ${index}); only User and Assistant exist`)
    }
    for (const part of message.content as unknown[]) {
      const isData = dataParts && part instanceof LanguageModelDataPart
      if (part instanceof LanguageModelTextPart || isData) continue
      if (part instanceof LanguageModelToolResultPart) {
        if (message.role !== LanguageModelChatMessageRole.User) {
          throw new Error('Invalid request: a LanguageModelToolResultPart can only be in a User message')
        }
        const previous = messages[index - 1]
        const matched =
          previous?.role === LanguageModelChatMessageRole.Assistant &&
          previous.content.some((p) => p instanceof LanguageModelToolCallPart && p.callId === part.callId)
        if (!matched) {
          throw new Error(
            'Invalid request: a LanguageModelToolResultPart must directly follow an Assistant message with a LanguageModelToolCallPart with a matching callId.',
          )
        }
        continue
      }
      if (part instanceof LanguageModelToolCallPart) {
        if (message.role !== LanguageModelChatMessageRole.Assistant) {
          throw new Error('Invalid request: a LanguageModelToolCallPart can only be in an Assistant message')
        }
        const next = messages[index + 1]
        const answered =
          next?.role === LanguageModelChatMessageRole.User &&
          next.content.some((p) => p instanceof LanguageModelToolResultPart && p.callId === part.callId)
        if (!answered) {
          throw new Error(
            'Invalid request: Tool call part must be followed by a User message with a LanguageModelToolResultPart with a matching callId.',
          )
        }
        continue
      }
      throw new Error(`Invalid request: unsupported message part ${describePart(part)} in message ${index}`)
    }
  })
}

function describePart(part: unknown): string {
  if (typeof part === 'object' && part !== null) return (part as object).constructor?.name ?? 'object'
  return typeof part
}

// ---------------------------------------------------------------- scripted chat models

export interface RecordedRequest {
  readonly messages: LanguageModelChatMessage[]
  readonly options: LanguageModelChatRequestOptions | undefined
  readonly token: CancellationToken | undefined
  /** Set when the request's token fired while the model was still producing. */
  cancelled: boolean
  /** Set once the model stopped producing (done, failed or cancelled). */
  finished: boolean
}

export interface ReplyContext {
  readonly request: RecordedRequest
  readonly token: CancellationToken
  text(value: string): LanguageModelTextPart
  toolCall(callId: string, name: string, input: object): LanguageModelToolCallPart
  thinking(value: string | string[], id?: string): LanguageModelThinkingPart
  /** Resolves after ms, or early when the request is cancelled. */
  sleep(ms: number): Promise<void>
  /** The concatenated text parts of the last User message. */
  lastUserText(): string
}

/** Yields response parts; a bare string is shorthand for a text part. Throwing fails the stream. */
export type ReplyScript = (ctx: ReplyContext) => AsyncIterable<unknown> | Iterable<unknown>

export interface FakeModelDefinition {
  id: string
  name?: string
  vendor?: string
  family?: string
  version?: string
  maxInputTokens?: number
  capabilities?: { supportsImageToText: boolean; supportsToolCalling: boolean }
  /** Default: echo the last user text. */
  reply?: ReplyScript
  /** false: the user refused access; sendRequest rejects with LanguageModelError.NoPermissions. */
  consent?: boolean
  /** When set, sendRequest rejects with this error (Blocked quota, NotFound …). */
  failWith?: () => Error
  /** How the stream behaves on cancellation: end quietly (default) or throw CancellationError. */
  onCancel?: 'end' | 'throw'
  countTokens?: (text: string) => number
}

export const echoLastUserText: ReplyScript = function* (ctx) {
  yield ctx.text(ctx.lastUserText())
}

/** Emits the given chunks as text parts, pausing between them. */
export function slowText(chunks: string[], delayMs: number): ReplyScript {
  return async function* (ctx) {
    for (const chunk of chunks) {
      await ctx.sleep(delayMs)
      if (ctx.token.isCancellationRequested) return
      yield ctx.text(chunk)
    }
  }
}

function textOf(message: LanguageModelChatMessage): string {
  return message.content
    .filter((p): p is LanguageModelTextPart => p instanceof LanguageModelTextPart)
    .map((p) => p.value)
    .join('')
}

const defaultCountTokens = (text: string): number => Math.ceil(text.length / 4)

/**
 * Parts produced by the script are buffered, and every iteration of `stream`
 * or `text` replays the buffer from the start, as VS Code's response does.
 */
class PartBuffer {
  private parts: unknown[] = []
  private done = false
  private error: unknown
  private wake: (() => void)[] = []

  push(part: unknown): void {
    this.parts.push(part)
    this.notify()
  }

  end(error?: unknown): void {
    if (this.done) return
    this.done = true
    this.error = error
    this.notify()
  }

  private notify(): void {
    for (const resolve of this.wake.splice(0)) resolve()
  }

  async *iterate(): AsyncGenerator<unknown> {
    let index = 0
    for (;;) {
      if (index < this.parts.length) {
        yield this.parts[index++]
        continue
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error
        return
      }
      await new Promise<void>((resolve) => this.wake.push(resolve))
    }
  }
}

export class FakeChatModel {
  readonly id: string
  readonly name: string
  readonly vendor: string
  readonly family: string
  readonly version: string
  readonly maxInputTokens: number
  readonly capabilities?: { supportsImageToText: boolean; supportsToolCalling: boolean }

  reply: ReplyScript
  consent: boolean
  failWith: (() => Error) | undefined
  onCancel: 'end' | 'throw'
  countTokensFn: (text: string) => number
  readonly requests: RecordedRequest[] = []
  readonly countTokensCalls: { input: string | LanguageModelChatMessage; token: CancellationToken | undefined }[] = []
  private arrivals: ((request: RecordedRequest) => void)[] = []

  constructor(
    definition: FakeModelDefinition,
    private readonly dataParts: () => boolean,
  ) {
    this.id = definition.id
    this.name = definition.name ?? definition.id
    this.vendor = definition.vendor ?? 'fake'
    this.family = definition.family ?? definition.id
    this.version = definition.version ?? '1'
    this.maxInputTokens = definition.maxInputTokens ?? 128_000
    if (definition.capabilities) this.capabilities = definition.capabilities
    this.reply = definition.reply ?? echoLastUserText
    this.consent = definition.consent ?? true
    this.failWith = definition.failWith
    this.onCancel = definition.onCancel ?? 'end'
    this.countTokensFn = definition.countTokens ?? defaultCountTokens
  }

  get lastRequest(): RecordedRequest | undefined {
    return this.requests[this.requests.length - 1]
  }

  /** Resolves with the n-th request (0-based) once it has reached the model. */
  waitForRequest(n = this.requests.length): Promise<RecordedRequest> {
    const existing = this.requests[n]
    if (existing) return Promise.resolve(existing)
    return new Promise((resolve) => {
      const check = (): void => {
        const r = this.requests[n]
        if (r) resolve(r)
        else this.arrivals.push(check)
      }
      this.arrivals.push(check)
    })
  }

  sendRequest(
    messages: LanguageModelChatMessage[],
    options?: LanguageModelChatRequestOptions,
    token?: CancellationToken,
  ): Promise<LanguageModelChatResponse> {
    try {
      if (!this.consent) throw LanguageModelError.NoPermissions('Access to the language model was not granted.')
      if (this.failWith) throw this.failWith()
      validateMessages(messages, this.dataParts())
    } catch (err) {
      return Promise.reject(err)
    }
    const request: RecordedRequest = { messages, options, token, cancelled: false, finished: false }
    this.requests.push(request)
    for (const notify of this.arrivals.splice(0)) notify(request)

    const buffer = new PartBuffer()
    const runToken = token ?? new CancellationTokenSource().token
    void this.produce(request, runToken, buffer)
    return Promise.resolve({
      stream: { [Symbol.asyncIterator]: () => buffer.iterate() },
      text: {
        async *[Symbol.asyncIterator]() {
          for await (const part of buffer.iterate()) if (part instanceof LanguageModelTextPart) yield part.value
        },
      },
    })
  }

  countTokens(text: string | LanguageModelChatMessage, token?: CancellationToken): Promise<number> {
    this.countTokensCalls.push({ input: text, token })
    if (token?.isCancellationRequested) return Promise.reject(new CancellationError())
    return Promise.resolve(this.countTokensFn(typeof text === 'string' ? text : textOf(text)))
  }

  private async produce(request: RecordedRequest, token: CancellationToken, buffer: PartBuffer): Promise<void> {
    const onCancel = (): void => {
      if (request.finished) return
      request.cancelled = true
      buffer.end(this.onCancel === 'throw' ? new CancellationError() : undefined)
    }
    const subscription = token.onCancellationRequested(onCancel)
    if (token.isCancellationRequested) onCancel()
    const ctx = this.context(request, token)
    try {
      for await (const part of this.reply(ctx)) {
        if (token.isCancellationRequested) break
        buffer.push(typeof part === 'string' ? new LanguageModelTextPart(part) : part)
      }
      buffer.end()
    } catch (err) {
      buffer.end(err)
    } finally {
      request.finished = true
      subscription.dispose()
    }
  }

  private context(request: RecordedRequest, token: CancellationToken): ReplyContext {
    return {
      request,
      token,
      text: (value) => new LanguageModelTextPart(value),
      toolCall: (callId, name, input) => new LanguageModelToolCallPart(callId, name, input),
      thinking: (value, id) => new LanguageModelThinkingPart(value, id),
      sleep: (ms) =>
        new Promise<void>((resolve) => {
          if (token.isCancellationRequested) return resolve()
          const sub = token.onCancellationRequested(() => {
            clearTimeout(timer)
            resolve()
          })
          const timer = setTimeout(() => {
            sub.dispose()
            resolve()
          }, ms)
        }),
      lastUserText: () => {
        const users = request.messages.filter((m) => m.role === LanguageModelChatMessageRole.User)
        const last = users[users.length - 1]
        return last ? textOf(last) : ''
      },
    }
  }
}

// ---------------------------------------------------------------- workbench fakes

export class FakeStatusBarItem {
  text = ''
  tooltip: unknown = undefined
  command: unknown = undefined
  name: string | undefined
  visible = false
  disposed = false
  constructor(
    readonly alignment: StatusBarAlignment,
    readonly priority: number | undefined,
  ) {}
  show(): void {
    this.visible = true
  }
  hide(): void {
    this.visible = false
  }
  dispose(): void {
    this.disposed = true
    this.visible = false
  }
}

export class FakeSecretStorage {
  private readonly values = new Map<string, string>()
  private readonly changed = new EventEmitter<{ key: string }>()
  readonly onDidChange = this.changed.event

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.values.get(key))
  }

  store(key: string, value: string): Promise<void> {
    this.values.set(key, value)
    this.changed.fire({ key })
    return Promise.resolve()
  }

  delete(key: string): Promise<void> {
    this.values.delete(key)
    this.changed.fire({ key })
    return Promise.resolve()
  }

  keys(): Promise<string[]> {
    return Promise.resolve([...this.values.keys()])
  }
}

/** A LogOutputChannel: lines are kept so tests can check what the extension logs (and what it must not). */
export class FakeOutputChannel {
  readonly lines: string[] = []
  constructor(readonly name: string) {}
  append(value: string): void {
    this.lines.push(value)
  }
  appendLine(value: string): void {
    this.lines.push(value)
  }
  trace(message: string): void {
    this.lines.push(`[trace] ${message}`)
  }
  debug(message: string): void {
    this.lines.push(`[debug] ${message}`)
  }
  info(message: string): void {
    this.lines.push(`[info] ${message}`)
  }
  warn(message: string): void {
    this.lines.push(`[warning] ${message}`)
  }
  error(message: string | Error): void {
    this.lines.push(`[error] ${String(message)}`)
  }
  clear(): void {
    this.lines.length = 0
  }
  show(): void {}
  hide(): void {}
  dispose(): void {}
}

export interface FakeExtensionContext {
  readonly subscriptions: { dispose(): unknown }[]
  readonly secrets: FakeSecretStorage
  readonly extensionPath: string
}

export interface ShownMessage {
  level: 'info' | 'warning' | 'error'
  message: string
  items: string[]
}

export interface FakeVscodeOptions {
  /** vscode.version; default 1.104.0. */
  version?: string
  /** Expose LanguageModelDataPart (VS Code ≥1.101). Default true; false models older VS Code. */
  dataPart?: boolean
  /** Expose the (proposed) LanguageModelThinkingPart class. Default false, as for most extensions. */
  thinkingPart?: boolean
  /** Expose the proposed lm.computeEmbeddings. true uses a deterministic toy embedding. Default false. */
  embeddings?: boolean | ((model: string, input: string) => number[])
  /** Embedding model ids reported in lm.embeddingModels (when embeddings are on). */
  embeddingModels?: string[]
  /** Initial settings, by full key (e.g. 'lmGateway.bridge.port'). */
  settings?: Record<string, unknown>
}

function toyEmbedding(_model: string, input: string): number[] {
  let sum = 0
  for (const ch of input) sum += ch.codePointAt(0) ?? 0
  return [input.length, sum % 97, input.split(/\s+/).filter(Boolean).length, 1]
}

/** Builds a fresh fake `vscode` module; `fake` holds the test-only controls. */
export function createFakeVscode(options: FakeVscodeOptions = {}) {
  const dataParts = options.dataPart ?? true
  const models: FakeChatModel[] = []
  const modelsChanged = new EventEmitter<void>()
  const configChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>()
  const settings = new Map<string, unknown>(Object.entries(options.settings ?? {}))
  const commandHandlers = new Map<string, (...args: unknown[]) => unknown>()
  const statusBarItems: FakeStatusBarItem[] = []
  const outputChannels: FakeOutputChannel[] = []
  const messages: ShownMessage[] = []
  const messageChoices: (string | undefined)[] = []
  const embedCalls: { model: string; input: string[]; token: CancellationToken | undefined }[] = []
  let clipboard = ''

  const show = (level: ShownMessage['level']) =>
    (message: string, ...items: unknown[]): Promise<string | undefined> => {
      // The real API also accepts an options object and MessageItems; tests only use strings.
      const labels = items.filter((i): i is string => typeof i === 'string')
      messages.push({ level, message, items: labels })
      const choice = messageChoices.shift()
      return Promise.resolve(choice !== undefined && labels.includes(choice) ? choice : undefined)
    }

  const embed = options.embeddings
  const embedOne = typeof embed === 'function' ? embed : toyEmbedding
  const embeddingModels = options.embeddingModels ?? ['text-embedding-3-small']

  function computeEmbeddings(model: string, input: string, token?: CancellationToken): Promise<{ values: number[] }>
  function computeEmbeddings(model: string, input: string[], token?: CancellationToken): Promise<{ values: number[] }[]>
  function computeEmbeddings(
    model: string,
    input: string | string[],
    token?: CancellationToken,
  ): Promise<{ values: number[] } | { values: number[] }[]> {
    const list = typeof input === 'string' ? [input] : input
    embedCalls.push({ model, input: list, token })
    if (!embeddingModels.includes(model)) return Promise.reject(LanguageModelError.NotFound(`Unknown embeddings model ${model}`))
    const result = list.map((text) => ({ values: embedOne(model, text) }))
    return Promise.resolve(typeof input === 'string' ? result[0]! : result)
  }

  const lm = {
    selectChatModels(selector?: LanguageModelChatSelector): Promise<FakeChatModel[]> {
      return Promise.resolve(
        models.filter(
          (m) =>
            (!selector?.id || m.id === selector.id) &&
            (!selector?.vendor || m.vendor === selector.vendor) &&
            (!selector?.family || m.family === selector.family) &&
            (!selector?.version || m.version === selector.version),
        ),
      )
    },
    onDidChangeChatModels: modelsChanged.event,
    ...(embed ? { computeEmbeddings, embeddingModels } : {}),
  }

  const fake = {
    models,
    messages,
    statusBarItems,
    outputChannels,
    embedCalls,
    get clipboard(): string {
      return clipboard
    },
    addModel(definition: FakeModelDefinition): FakeChatModel {
      const model = new FakeChatModel(definition, () => dataParts)
      models.push(model)
      modelsChanged.fire()
      return model
    },
    removeModel(id: string): void {
      const index = models.findIndex((m) => m.id === id)
      if (index >= 0) models.splice(index, 1)
      modelsChanged.fire()
    },
    /** The answer the next shown message resolves with (a button label). */
    chooseNextMessageItem(label: string | undefined): void {
      messageChoices.push(label)
    },
    setSetting(key: string, value: unknown): void {
      settings.set(key, value)
      configChanged.fire({ affectsConfiguration: (section) => key === section || key.startsWith(`${section}.`) })
    },
    executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
      const handler = commandHandlers.get(id)
      if (!handler) return Promise.reject(new Error(`command '${id}' not found`))
      return Promise.resolve(handler(...args))
    },
    hasCommand(id: string): boolean {
      return commandHandlers.has(id)
    },
    createExtensionContext(): FakeExtensionContext {
      return { subscriptions: [], secrets: new FakeSecretStorage(), extensionPath: '/fake/extension' }
    },
  }

  return {
    version: options.version ?? '1.104.0',
    Disposable,
    EventEmitter,
    CancellationError,
    CancellationTokenSource,
    LanguageModelChatMessageRole,
    LanguageModelChatToolMode,
    LanguageModelChatMessage,
    LanguageModelTextPart,
    LanguageModelToolCallPart,
    LanguageModelToolResultPart,
    LanguageModelPromptTsxPart,
    LanguageModelError,
    StatusBarAlignment,
    ...(dataParts ? { LanguageModelDataPart } : {}),
    ...(options.thinkingPart ? { LanguageModelThinkingPart } : {}),
    lm,
    window: {
      showInformationMessage: show('info'),
      showWarningMessage: show('warning'),
      showErrorMessage: show('error'),
      createOutputChannel(name: string, _options?: string | { log: true }): FakeOutputChannel {
        const channel = new FakeOutputChannel(name)
        outputChannels.push(channel)
        return channel
      },
      createStatusBarItem(alignment?: StatusBarAlignment, priority?: number): FakeStatusBarItem {
        const item = new FakeStatusBarItem(alignment ?? StatusBarAlignment.Left, priority)
        statusBarItems.push(item)
        return item
      },
    },
    env: {
      clipboard: {
        readText: (): Promise<string> => Promise.resolve(clipboard),
        writeText: (value: string): Promise<void> => {
          clipboard = value
          return Promise.resolve()
        },
      },
    },
    commands: {
      registerCommand(id: string, callback: (...args: unknown[]) => unknown, thisArg?: unknown): Disposable {
        // VS Code refuses a second registration of the same id.
        if (commandHandlers.has(id)) throw new Error(`command '${id}' already exists`)
        commandHandlers.set(id, thisArg === undefined ? callback : (...args) => callback.apply(thisArg, args))
        return new Disposable(() => commandHandlers.delete(id))
      },
      executeCommand: (id: string, ...args: unknown[]) => fake.executeCommand(id, ...args),
    },
    workspace: {
      getConfiguration(section?: string) {
        const full = (key: string): string => (section ? `${section}.${key}` : key)
        return {
          get<T>(key: string, defaultValue?: T): T {
            return (settings.has(full(key)) ? settings.get(full(key)) : defaultValue) as T
          },
          has: (key: string): boolean => settings.has(full(key)),
          update: (key: string, value: unknown): Promise<void> => {
            fake.setSetting(full(key), value)
            return Promise.resolve()
          },
        }
      },
      onDidChangeConfiguration: configChanged.event,
    },
    fake,
  }
}

export type FakeVscode = ReturnType<typeof createFakeVscode>

// ---------------------------------------------------------------- fidelity checks (compile time only)
// The fake's classes and models must be usable wherever the real typings are expected.
type Assignable<T, _U extends T> = true
export type FidelityChecks = [
  Assignable<typeof vscode.LanguageModelChatMessage, typeof LanguageModelChatMessage>,
  Assignable<typeof vscode.LanguageModelTextPart, typeof LanguageModelTextPart>,
  Assignable<typeof vscode.LanguageModelToolCallPart, typeof LanguageModelToolCallPart>,
  Assignable<typeof vscode.LanguageModelToolResultPart, typeof LanguageModelToolResultPart>,
  // LanguageModelError is left out: its d.ts inherits Error's (message, options) constructor while
  // the runtime class takes (message, code, cause), which the fake follows.
  Assignable<typeof vscode.CancellationTokenSource, typeof CancellationTokenSource>,
  Assignable<typeof vscode.EventEmitter<number>, typeof EventEmitter<number>>,
  Assignable<vscode.LanguageModelChat, FakeChatModel>,
  Assignable<typeof vscode.lm.selectChatModels, FakeVscode['lm']['selectChatModels']>,
]
