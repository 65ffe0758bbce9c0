type NodeCrypto = typeof import('node:crypto')

/**
 * node:crypto where the runtime has it (Node, Bun, workerd with nodejs_compat),
 * found without an import so the module still loads anywhere else. Its hashes
 * and ciphers run synchronously; WebCrypto's go through a thread pool, a round
 * trip that costs 50 µs or more on a busy machine, several times per cache hit.
 */
export const nodeCrypto: NodeCrypto | undefined = (() => {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    return proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
  } catch {
    return undefined
  }
})()
