import { createGateway } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/logger.js'

/** The OpenAPI document as committed: stable JSON of the routes of a default gateway. */
export async function buildSpec(): Promise<string> {
  const gateway = await createGateway(loadConfig({}, {}), { logger: silentLogger })
  const text = `${JSON.stringify(gateway.openapi(), null, 2)}\n`
  await gateway.close()
  return text
}
