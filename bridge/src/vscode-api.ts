/**
 * The slices of the `vscode` module the bridge touches, as types. The bridge
 * receives them as a parameter instead of importing `vscode`, so the same code
 * runs inside VS Code and, in tests, against test/fakes/vscode.ts.
 *
 * Where @types/vscode 1.95 already declares something we Pick it, so the real
 * module is checked against what we use. Newer or proposed API (DataPart,
 * embeddings, thinking parts, model capabilities) is declared here, optional.
 */
import type * as vscode from 'vscode'

export interface DataPart {
  readonly mimeType: string
  readonly data: Uint8Array
}

/** `vscode.LanguageModelDataPart`: stable in newer VS Code, absent in 1.95. */
export interface DataPartStatic {
  new (data: Uint8Array, mimeType: string): DataPart
  image(data: Uint8Array, mime: string): DataPart
}

/** Proposed `embeddings` API. */
export interface Embedding {
  readonly values: number[]
}
export type ComputeEmbeddings = (
  model: string,
  input: string[],
  token?: vscode.CancellationToken,
) => Thenable<Embedding[]>

/** What the HTTP surface needs: chat models, parts, cancellation. */
export type LmApi = Pick<
  typeof vscode,
  | 'version'
  | 'LanguageModelChatMessage'
  | 'LanguageModelTextPart'
  | 'LanguageModelToolCallPart'
  | 'LanguageModelToolResultPart'
  | 'LanguageModelChatToolMode'
  | 'CancellationTokenSource'
> & {
  readonly lm: Pick<typeof vscode.lm, 'selectChatModels' | 'onDidChangeChatModels'> & {
    readonly computeEmbeddings?: ComputeEmbeddings
    readonly embeddingModels?: readonly string[]
  }
  readonly LanguageModelDataPart?: DataPartStatic
  /** Proposed `languageModelThinkingPart` API; present only where the proposal is enabled. */
  readonly LanguageModelThinkingPart?: abstract new (...args: never[]) => object
}

/**
 * Capabilities as newer VS Code versions expose them on a chat model; both the
 * proposed (`supports*`) and the provider-side (`imageInput`) spellings exist.
 */
export interface ModelCapabilities {
  readonly supportsImageToText?: boolean
  readonly supportsToolCalling?: boolean
  readonly imageInput?: boolean
  readonly toolCalling?: boolean | number
}

export type ChatModel = vscode.LanguageModelChat & { readonly capabilities?: ModelCapabilities }

export interface DisposableLike {
  dispose(): unknown
}

export type EventLike<T> = (listener: (e: T) => unknown) => DisposableLike

/** Written, never read back: `unknown` keeps the real wider types (MarkdownString, Command) assignable. */
export interface StatusBarItemLike {
  text: string
  tooltip: unknown
  command: unknown
  show(): void
  dispose(): void
}

export interface SecretStorageLike {
  get(key: string): Thenable<string | undefined>
  store(key: string, value: string): Thenable<void>
}

export interface ExtensionContextLike {
  readonly secrets: SecretStorageLike
  readonly subscriptions: DisposableLike[]
}

/** What the extension's lifecycle (settings, commands, status bar) needs on top of LmApi. */
export type HostApi = LmApi & {
  readonly window: {
    showInformationMessage(message: string, ...items: string[]): Thenable<string | undefined>
    showWarningMessage(message: string, ...items: string[]): Thenable<string | undefined>
    createStatusBarItem(alignment?: number, priority?: number): StatusBarItemLike
  }
  readonly env: { readonly clipboard: { writeText(value: string): Thenable<void> } }
  readonly commands: {
    registerCommand(command: string, callback: (...args: unknown[]) => unknown): DisposableLike
  }
  readonly workspace: {
    getConfiguration(section?: string): { get<T>(key: string, defaultValue: T): T }
    readonly onDidChangeConfiguration: EventLike<{ affectsConfiguration(section: string): boolean }>
  }
  readonly StatusBarAlignment: { readonly Left: number; readonly Right: number }
}
