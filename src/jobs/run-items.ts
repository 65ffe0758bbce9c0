/**
 * Runs items in parallel (bounded) or one after another, reporting each
 * result as it lands. With stopOnError, items not yet started when one fails
 * are skipped; items already running finish.
 */
export interface RunOptions {
  mode: 'parallel' | 'serial'
  concurrency: number
  stopOnError: boolean
  signal?: AbortSignal
}

export async function runItems<T, R>(
  items: readonly T[],
  options: RunOptions,
  run: (item: T, index: number) => Promise<{ ok: boolean; result: R }>,
  onResult: (index: number, result: R | undefined, skipped: boolean) => void | Promise<void>,
): Promise<void> {
  const width = options.mode === 'serial' ? 1 : Math.max(1, Math.min(options.concurrency, items.length))
  let next = 0
  let stopped = false
  const worker = async () => {
    for (;;) {
      const index = next++
      if (index >= items.length) return
      if (stopped || options.signal?.aborted) {
        await onResult(index, undefined, true)
        continue
      }
      const { ok, result } = await run(items[index], index)
      if (!ok && options.stopOnError) stopped = true
      await onResult(index, result, false)
    }
  }
  await Promise.all(Array.from({ length: width }, worker))
}
