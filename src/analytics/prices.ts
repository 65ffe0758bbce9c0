/**
 * Cost estimates. Prices are USD per million tokens; Copilot models (served
 * through the VS Code bridge) are counted in premium requests instead, each
 * weighted by the model's multiplier. Everything here is an estimate: list
 * prices change, and providers bill on their own counts.
 */
export interface Price {
  input: number
  output: number
  /** Price of input tokens read from the provider's prompt cache; defaults to `input`. */
  cached?: number
}

/** List prices of well-known models (USD / 1M tokens), as published by their vendors in 2025. */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  'gpt-5': { input: 1.25, output: 10, cached: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cached: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cached: 0.005 },
  'gpt-4.1': { input: 2, output: 8, cached: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cached: 0.1 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4, cached: 0.025 },
  'gpt-4o': { input: 2.5, output: 10, cached: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cached: 0.075 },
  o3: { input: 2, output: 8, cached: 0.5 },
  'o3-mini': { input: 1.1, output: 4.4, cached: 0.55 },
  'o4-mini': { input: 1.1, output: 4.4, cached: 0.275 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'claude-opus-4-5': { input: 5, output: 25, cached: 0.5 },
  'claude-opus-4-1': { input: 15, output: 75, cached: 1.5 },
  'claude-opus-4': { input: 15, output: 75, cached: 1.5 },
  'claude-sonnet-4-5': { input: 3, output: 15, cached: 0.3 },
  'claude-sonnet-4': { input: 3, output: 15, cached: 0.3 },
  'claude-3-7-sonnet': { input: 3, output: 15, cached: 0.3 },
  'claude-haiku-4-5': { input: 1, output: 5, cached: 0.1 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cached: 0.08 },
  'gemini-2.5-pro': { input: 1.25, output: 10, cached: 0.125 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cached: 0.03 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cached: 0.01 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4, cached: 0.025 },
}

/** GitHub Copilot premium-request multipliers of well-known models (0 = included in the plan). */
export const DEFAULT_PREMIUM_MULTIPLIERS: Readonly<Record<string, number>> = {
  'gpt-4.1': 0,
  'gpt-4o': 0,
  'gpt-5-mini': 0,
  'gpt-5': 1,
  o3: 1,
  'o4-mini': 0.33,
  'claude-sonnet-4': 1,
  'claude-sonnet-4-5': 1,
  'claude-3-7-sonnet': 1,
  'claude-haiku-4-5': 0.33,
  'claude-opus-4-1': 10,
  'claude-opus-4': 10,
  'gemini-2.5-pro': 1,
  'gemini-2.0-flash': 0.25,
}

/** Copilot's price of one premium request beyond the plan's allowance (USD). */
export const DEFAULT_PREMIUM_REQUEST_USD = 0.04

/**
 * Reduces the many spellings of one model to the table's: provider prefix,
 * Vertex `@version` and case dropped, dots as dashes (`claude-sonnet-4.5` and
 * `claude-sonnet-4-5` are the same model).
 */
export function normalizeModel(model: string): string {
  let m = model.toLowerCase()
  const slash = m.lastIndexOf('/')
  if (slash !== -1) m = m.slice(slash + 1)
  const at = m.indexOf('@')
  if (at !== -1) m = m.slice(0, at)
  return m.replace(/\./g, '-')
}

/**
 * A lookup over a table keyed by model names. Order: the exact `provider/model`
 * key, the exact model, a `prefix*` key, then the longest table key the model
 * starts with followed by `-` (dated snapshots: `gpt-4o-2024-08-06`).
 */
export function modelLookup<T>(table: Readonly<Record<string, T>>): (providerModel: string) => T | undefined {
  const exact = new Map<string, T>()
  const globs: Array<[string, T]> = []
  for (const [k, v] of Object.entries(table)) {
    if (k.endsWith('*')) globs.push([k.slice(0, -1).toLowerCase(), v])
    else if (k.includes('/')) exact.set(k.toLowerCase(), v)
    else exact.set(normalizeModel(k), v)
  }
  globs.sort((a, b) => b[0].length - a[0].length)
  const prefixes = [...exact.keys()].filter((k) => !k.includes('/')).sort((a, b) => b.length - a.length)
  const memo = new Map<string, T | undefined>()
  return (providerModel) => {
    if (memo.has(providerModel)) return memo.get(providerModel)
    const lower = providerModel.toLowerCase()
    const bare = normalizeModel(providerModel)
    let hit = exact.get(lower) ?? exact.get(bare)
    if (hit === undefined) hit = globs.find(([p]) => lower.startsWith(p) || bare.startsWith(p))?.[1]
    if (hit === undefined) {
      const prefix = prefixes.find((p) => bare.startsWith(`${p}-`))
      if (prefix) hit = exact.get(prefix)
    }
    if (memo.size < 10_000) memo.set(providerModel, hit)
    return hit
  }
}

export interface CostOptions {
  /** Config prices, merged over the defaults (a config key wins). */
  prices?: Record<string, Price>
  /** Provider ids whose models are Copilot's: counted in premium requests, not tokens. */
  premiumProviders?: string[]
  premiumMultipliers?: Record<string, number>
  premiumRequestUsd?: number
}

export interface CostInput {
  /** `provider/model`. */
  model: string
  provider: string
  /** Successful requests (premium requests are charged per request). */
  requests: number
  inputTokens: number
  outputTokens: number
  cachedTokens: number
}

export interface CostEstimate {
  usd: number
  premiumRequests: number
  /** Whether a price or multiplier was known; unpriced usage counts 0 USD. */
  priced: boolean
}

export type CostModel = (input: CostInput) => CostEstimate

export function costModel(options: CostOptions = {}): CostModel {
  const price = modelLookup<Price>({ ...DEFAULT_PRICES, ...options.prices })
  const multiplier = modelLookup<number>({ ...DEFAULT_PREMIUM_MULTIPLIERS, ...options.premiumMultipliers })
  const premium = new Set(options.premiumProviders ?? [])
  const perRequest = options.premiumRequestUsd ?? DEFAULT_PREMIUM_REQUEST_USD
  return (x) => {
    if (premium.has(x.provider)) {
      const m = multiplier(x.model)
      const premiumRequests = x.requests * (m ?? 1)
      return { usd: premiumRequests * perRequest, premiumRequests, priced: m !== undefined }
    }
    const p = price(x.model)
    if (!p) return { usd: 0, premiumRequests: 0, priced: false }
    const cached = Math.min(x.cachedTokens, x.inputTokens)
    const usd = ((x.inputTokens - cached) * p.input + cached * (p.cached ?? p.input) + x.outputTokens * p.output) / 1_000_000
    return { usd, premiumRequests: 0, priced: true }
  }
}
