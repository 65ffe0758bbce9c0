/**
 * Writes openapi/openapi.json from the route definitions. `--check` exits 1
 * when the committed file is stale. The gateway is built from a fixed config
 * so that the document does not depend on the machine's environment.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildSpec } from './spec.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const file = join(root, 'openapi', 'openapi.json')
const text = await buildSpec()
if (process.argv.includes('--check')) {
  const committed = await readFile(file, 'utf8').catch(() => '')
  if (committed !== text) {
    console.error('openapi/openapi.json is stale: run `npm run openapi` and commit the result.')
    process.exit(1)
  }
  console.log('openapi/openapi.json is up to date')
} else {
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, text)
  console.log(`wrote ${file}`)
}
