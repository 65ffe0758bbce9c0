import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv2020 from 'ajv/dist/2020.js'
import { parse } from 'yaml'

/**
 * Validators for OpenAI's own schemas (../shared/reference/openai-openapi.yaml,
 * MIT). Tests check the gateway's bodies and stream chunks against them.
 */
const here = dirname(fileURLToPath(import.meta.url))
const specPath = join(here, '..', '..', '..', 'shared', 'reference', 'openai-openapi.yaml')

let ajv: InstanceType<typeof Ajv2020> | undefined

function instance(): InstanceType<typeof Ajv2020> {
  if (ajv) return ajv
  const spec = parse(readFileSync(specPath, 'utf8')) as { components: { schemas: Record<string, unknown> } }
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
  ajv.addKeyword({ keyword: 'x-oaiMeta' })
  ajv.addSchema({ $id: 'openai', components: stripNullable(spec.components) })
  return ajv
}

/**
 * `nullable: true` is OpenAPI 3.0, not JSON Schema 2020-12, yet the 3.1 spec
 * still uses it (with enums and $refs, where ajv's own support falls short).
 * Rewrite each such node as `anyOf: [node, {type: "null"}]`.
 */
function stripNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripNullable)
  if (!node || typeof node !== 'object') return node
  const o: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') o[k] = stripNullable(v)
  if ((node as { nullable?: unknown }).nullable === true) {
    const { description, ...rest } = o
    return { ...(description === undefined ? {} : { description }), anyOf: [rest, { type: 'null' }] }
  }
  return o
}

/** Throws with ajv's errors when `value` does not match components.schemas[name]. */
export function assertOpenAISchema(name: string, value: unknown): void {
  const validate = instance().getSchema(`openai#/components/schemas/${name}`)
  if (!validate) throw new Error(`no schema ${name} in the OpenAI spec`)
  if (!validate(value)) throw new Error(`${name} does not match OpenAI's schema: ${JSON.stringify(validate.errors?.slice(0, 5), null, 1)}\n${JSON.stringify(value).slice(0, 800)}`)
}
