/** POST /v1/count-tokens: the model's own tokenizer, per text or summed per message. */
import { linkCancellation } from './cancellation.js'
import { toChatMessages } from './convert.js'
import { toBridgeError } from './errors.js'
import type { CountTokensBody } from './protocol.js'
import type { ChatModel, LmApi } from './vscode-api.js'

export async function countTokens(
  api: LmApi,
  model: ChatModel,
  body: CountTokensBody,
  signal: AbortSignal,
): Promise<number> {
  // Converted before a token source exists: a 400 here needs no cleanup.
  const messages = 'messages' in body ? toChatMessages(api, body.messages) : undefined
  const cancellation = linkCancellation(api, signal)
  try {
    if (!messages) return await model.countTokens((body as { text: string }).text, cancellation.token)
    let total = 0
    for (const message of messages) total += await model.countTokens(message, cancellation.token)
    return total
  } catch (err) {
    throw toBridgeError(err)
  } finally {
    cancellation.dispose()
  }
}
