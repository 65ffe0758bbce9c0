import { GatewayError } from '../../errors.js'
import { upstreamError, type HttpResponse } from '../shared/http.js'

/**
 * Azure OpenAI's error answers: `{"error": {code, message, param?, innererror?}}`.
 * Two need more than the generic mapping:
 *  - a prompt stopped by the content filter (400, code `content_filter`,
 *    innererror `ResponsibleAIPolicyViolation` with per-category results) is
 *    the client's to fix: say so, and which categories fired;
 *  - `DeploymentNotFound` (404) means the model → deployment mapping is wrong.
 */
interface AzureErrorBody {
  error?: {
    code?: string | null
    message?: string
    innererror?: { code?: string; content_filter_result?: Record<string, { filtered?: boolean; severity?: string; detected?: boolean }> }
  }
}

export async function azureError(provider: string, res: HttpResponse, target: { model: string; deployment: string }): Promise<GatewayError> {
  const text = await res.text().catch(() => '')
  let body: AzureErrorBody | undefined
  try {
    body = JSON.parse(text) as AzureErrorBody
  } catch {
    body = undefined
  }
  const err = body?.error
  if (res.status === 400 && (err?.code === 'content_filter' || err?.innererror?.code === 'ResponsibleAIPolicyViolation')) {
    const fired = Object.entries(err.innererror?.content_filter_result ?? {})
      .filter(([, r]) => r.filtered)
      .map(([name, r]) => (r.severity && r.severity !== 'safe' ? `${name} (${r.severity})` : name))
    return new GatewayError(
      'invalid_request',
      `The prompt was filtered by Azure OpenAI's content management policy (provider "${provider}")${fired.length ? `: ${fired.join(', ')}` : ''}. Rephrase the prompt and retry.`,
      { code: 'content_filter', param: 'messages' },
    )
  }
  if (res.status === 404 && err?.code === 'DeploymentNotFound') {
    return new GatewayError(
      'not_found',
      `Azure OpenAI provider "${provider}" has no deployment "${target.deployment}" for the model "${target.model}". Create it, or map the model to an existing deployment with "deployments": {"${target.model}": "<deployment name>"} in the provider config.`,
      { code: 'model_not_found', param: 'model' },
    )
  }
  return upstreamError(provider, replay(res, text))
}

/** The body was read once; hand the generic mapper a response that returns the same text. */
function replay(res: HttpResponse, text: string): HttpResponse {
  return { ...res, status: res.status, header: (n) => res.header(n), text: async () => text, json: async () => JSON.parse(text) }
}
