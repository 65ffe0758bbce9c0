/**
 * One CancellationTokenSource per HTTP request, cancelled when that request's
 * AbortSignal fires (client gone, reverse-mode cancel frame). Requests never
 * share a source, so aborting one can never cancel another.
 */
import type * as vscode from 'vscode'
import type { LmApi } from './vscode-api.js'

export interface RequestCancellation {
  readonly token: vscode.CancellationToken
  cancel(): void
  /** Detaches from the signal; call once the model call is completely over. */
  dispose(): void
}

export function linkCancellation(api: LmApi, signal: AbortSignal): RequestCancellation {
  const source = new api.CancellationTokenSource()
  const onAbort = (): void => source.cancel()
  if (signal.aborted) source.cancel()
  else signal.addEventListener('abort', onAbort, { once: true })
  let disposed = false
  return {
    token: source.token,
    cancel: () => source.cancel(),
    dispose: () => {
      if (disposed) return
      disposed = true
      signal.removeEventListener('abort', onAbort)
      source.dispose()
    },
  }
}
