/**
 * The chat models VS Code offers, cached between calls because
 * selectChatModels() crosses into the renderer; VS Code tells us when to drop
 * the cache (onDidChangeChatModels: an extension installed a model, sign-out …).
 */
import { BridgeError } from './errors.js'
import type { WireModel } from './protocol.js'
import type { ChatModel, DisposableLike, LmApi } from './vscode-api.js'

export class ModelCatalog {
  private cached: Promise<ChatModel[]> | undefined
  private readonly subscription: DisposableLike

  constructor(private readonly api: LmApi) {
    this.subscription = api.lm.onDidChangeChatModels(() => this.invalidate())
  }

  invalidate(): void {
    this.cached = undefined
  }

  list(): Promise<ChatModel[]> {
    if (!this.cached) {
      const pending = Promise.resolve(this.api.lm.selectChatModels())
      this.cached = pending
      // A failed listing must not stick: the next call asks VS Code again.
      pending.catch(() => {
        if (this.cached === pending) this.cached = undefined
      })
    }
    return this.cached
  }

  /**
   * By id through VS Code's own selector first (always current); then a scan of
   * the full list, which also accepts a family name, since some clients send
   * "gpt-4o" where VS Code's id is e.g. "copilot-gpt-4o".
   */
  async find(id: string): Promise<ChatModel> {
    const selected = await this.api.lm.selectChatModels({ id })
    const exact = selected.find((m) => m.id === id)
    if (exact) return exact
    const all = await this.list()
    const match = all.find((m) => m.id === id) ?? all.find((m) => m.family === id)
    if (match) return match
    throw new BridgeError(404, 'NotFound', `No VS Code language model with id "${id}". GET /v1/models lists them.`)
  }

  dispose(): void {
    this.subscription.dispose()
  }
}

/**
 * Capabilities are not on the 1.95 LanguageModelChat; when VS Code does not say,
 * tool calling is assumed (every vendor shipped with VS Code supports it) and
 * image input is not.
 */
export function describeModel(model: ChatModel): WireModel {
  const caps = model.capabilities
  const imageInput = caps?.supportsImageToText ?? caps?.imageInput ?? false
  const toolCalling = caps?.supportsToolCalling ?? (caps?.toolCalling === undefined ? true : Boolean(caps.toolCalling))
  return {
    id: model.id,
    name: model.name,
    vendor: model.vendor,
    family: model.family,
    version: model.version,
    maxInputTokens: model.maxInputTokens,
    capabilities: { imageInput, toolCalling },
  }
}
