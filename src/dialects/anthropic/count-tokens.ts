import { estimateRequestTokens } from '../../core/tokens.js'
import type { ChatRequest } from '../../core/types.js'

/**
 * The prompt's token count: the provider's own tokenizer where it has one
 * (VS Code's countTokens), else the documented estimate of core/tokens.ts.
 * A failing tokenizer falls back to the estimate: a count is advice, and the
 * chat itself must not fail because of it.
 */
export async function countPromptTokens(req: ChatRequest, exact: ((req: ChatRequest) => Promise<number>) | undefined): Promise<{ tokens: number; exact: boolean }> {
  if (exact) {
    try {
      const tokens = await exact(req)
      if (Number.isFinite(tokens) && tokens >= 0) return { tokens: Math.round(tokens), exact: true }
    } catch {
      /* fall through to the estimate */
    }
  }
  return { tokens: estimateRequestTokens(req), exact: false }
}

/** Anthropic's count_tokens answer. */
export function encodeCountTokens(tokens: number): { input_tokens: number } {
  return { input_tokens: tokens }
}
