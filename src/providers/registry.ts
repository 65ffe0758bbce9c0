import type { ProviderConfig } from '../config.js'
import { azureOpenAIProvider } from './azure-openai/index.js'
import { bedrockProvider } from './bedrock/index.js'
import { anthropicProvider } from './anthropic/index.js'
import { localEmbeddingsProvider } from './local-embeddings/index.js'
import { mockProvider } from './mock/index.js'
import { ollamaProvider } from './ollama/index.js'
import { openAICompatibleProvider } from './openai-compatible/index.js'
import { vscodeBridgeProvider } from './vscode-bridge/index.js'
import { geminiProvider } from './vertex/gemini.js'
import { vertexProvider } from './vertex/index.js'
import type { HttpClient } from './shared/http.js'
import type { Provider } from './types.js'

export interface ProviderDeps {
  http: HttpClient
}

type Factory = (config: ProviderConfig, deps: ProviderDeps) => Provider

/** One line per provider type. */
const factories: Record<string, Factory> = {
  mock: (c) => mockProvider(c as never),
  'openai-compatible': (c, d) => openAICompatibleProvider(c as never, d.http),
  anthropic: (c, d) => anthropicProvider(c as never, d.http),
  bedrock: (c, d) => bedrockProvider(c as never, d.http),
  vertex: (c, d) => vertexProvider(c as never, d.http),
  gemini: (c, d) => geminiProvider(c as never, d.http),
  ollama: (c, d) => ollamaProvider(c as never, d.http),
  'azure-openai': (c, d) => azureOpenAIProvider(c as never, d.http),
  'vscode-bridge': (c, d) => vscodeBridgeProvider(c as never, d.http),
  'local-embeddings': (c) => localEmbeddingsProvider(c as never),
}

export function registerProviderType(type: string, factory: Factory): void {
  factories[type] = factory
}

export function providerTypes(): string[] {
  return Object.keys(factories)
}

export function createProviders(configs: ProviderConfig[], deps: ProviderDeps): Provider[] {
  return configs.map((c, i) => {
    const factory = factories[c.type]
    if (!factory) throw new Error(`providers[${i}].type: unknown provider type "${c.type}" (known: ${providerTypes().join(', ')})`)
    try {
      return factory(c, deps)
    } catch (err) {
      const issues = (err as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues
      if (issues) throw new Error(`providers[${i}] (${c.id}): ${issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`)
      throw err
    }
  })
}
