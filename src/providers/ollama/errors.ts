import { GatewayError } from '../../errors.js'
import { safeOrigin, upstreamError, type HttpResponse } from '../shared/http.js'

/**
 * Ollama's error answers are `{"error": "<text>"}`. A model that is not on
 * the machine is a 404 ("model 'x' not found", "try pulling it first"): the
 * client learns the command that fixes it. Others keep Ollama's own words.
 */
export async function ollamaError(provider: string, baseURL: string, model: string | undefined, res: HttpResponse): Promise<GatewayError> {
  const e = await upstreamError(provider, res)
  if (res.status === 404 && model && /not found|pull/i.test(e.message)) {
    return new GatewayError(
      'not_found',
      `The model "${model}" is not pulled on the Ollama server of provider "${provider}" (${safeOrigin(baseURL)}). Run \`ollama pull ${model}\` there, then retry.`,
      { code: 'model_not_found', param: 'model', cause: e },
    )
  }
  return e
}
