import type { CatalogEntry } from './router.js'

/**
 * Model names as clients in the field send them, resolved to the closest
 * model a provider has. Claude Code and the Anthropic SDK send dated ids
 * (`claude-sonnet-4-5-20250929`, `claude-3-5-haiku-latest`) while VS Code /
 * Copilot calls the same models `claude-sonnet-4.5`, `claude-3.5-sonnet`.
 * Only names nothing else resolves come here (the router's not-found path).
 *
 * Config (`routing.modelNames`, optional):
 *   false                      turn the mapping off
 *   { "map": { "claude-haiku-*": "vscode/gpt-4o-mini" } }
 *                              patterns (`*` wildcard) checked first, to any name the router resolves
 *   { "families": false }      keep the map, turn the built-in Claude matching off
 */
export interface ModelNameOptions {
  map?: Record<string, string>
  families?: boolean
}

interface Claude {
  family: 'opus' | 'sonnet' | 'haiku'
  /** Version as a number: 4.5, 3.7, 4. */
  version: number
}

// Newer ids: claude-sonnet-4-5-20250929, claude-opus-4-1, claude-sonnet-4.5, claude-haiku-4-5@20251001 (Vertex)
const NEW = /^claude-(opus|sonnet|haiku)-(\d+)(?:[.-](\d{1,2}))?(?=$|[-@.:_])/
// Older ids: claude-3-5-sonnet-20241022, claude-3-7-sonnet-latest, claude-3.5-sonnet, claude-3-opus-20240229
const OLD = /^claude-(\d+)(?:[.-](\d{1,2}))?-(opus|sonnet|haiku)(?=$|[-@.:_])/

/** Reads a Claude model id (with an optional `provider/` or vendor prefix like `anthropic.`); undefined for anything else. */
export function parseClaude(name: string): Claude | undefined {
  let id = name.toLowerCase()
  const slash = id.lastIndexOf('/')
  if (slash !== -1) id = id.slice(slash + 1)
  id = id.replace(/^(?:[a-z]{2}\.)?anthropic\./, '').replace(/\[[^\]]*\]$/, '')
  let m = NEW.exec(id)
  if (m) {
    // Copilot writes 4.1 as "41" (claude-opus-41): Claude majors have one digit.
    if (!m[3] && m[2].length === 2) return { family: m[1] as Claude['family'], version: Number(m[2][0]) + Number(m[2][1]) / 10 }
    return { family: m[1] as Claude['family'], version: Number(m[2]) + (m[3] ? Number(m[3]) / 10 : 0) }
  }
  m = OLD.exec(id)
  if (m) return { family: m[3] as Claude['family'], version: Number(m[1]) + (m[2] ? Number(m[2]) / 10 : 0) }
  return undefined
}

/** The date or `-latest` suffix of a model id, removed: `gpt-4o-2024-08-06` → `gpt-4o`. */
export function undated(name: string): string {
  return name.replace(/(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-latest)$/, '')
}

// When a provider lacks the family asked for, the nearest tier stands in.
const FAMILY_FALLBACK: Record<Claude['family'], Array<Claude['family']>> = {
  haiku: ['haiku', 'sonnet', 'opus'],
  sonnet: ['sonnet', 'opus', 'haiku'],
  opus: ['opus', 'sonnet', 'haiku'],
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i')
}

/**
 * The closest Claude model among `entries`: same family first, then the
 * nearest version (a newer one on a tie), then the next family.
 */
export function closestClaude(wanted: Claude, entries: readonly CatalogEntry[]): CatalogEntry | undefined {
  const parsed = entries.map((e) => ({ e, c: parseClaude(e.info.id) })).filter((x): x is { e: CatalogEntry; c: Claude } => x.c !== undefined)
  for (const family of FAMILY_FALLBACK[wanted.family]) {
    let best: { e: CatalogEntry; c: Claude } | undefined
    for (const x of parsed) {
      if (x.c.family !== family) continue
      if (!best) best = x
      else {
        const d = Math.abs(x.c.version - wanted.version) - Math.abs(best.c.version - wanted.version)
        if (d < 0 || (d === 0 && x.c.version > best.c.version)) best = x
      }
    }
    if (best) return best.e
  }
  return undefined
}

/**
 * A resolver for the router's not-found path: returns a name the router can
 * resolve (`provider/model` or an alias), or undefined. Answers are memoised
 * per catalog listing, so a client that always sends the same dated id costs
 * one map lookup per request.
 */
export function modelNameResolver(config: unknown, list: (signal?: AbortSignal) => Promise<readonly CatalogEntry[]>): ((name: string, signal?: AbortSignal) => Promise<string | undefined>) | undefined {
  if (config === false) return undefined
  const opts = (config && typeof config === 'object' ? config : {}) as ModelNameOptions
  const rules = Object.entries(opts.map ?? {}).map(([pattern, target]) => ({ re: globToRegExp(pattern), target }))
  const families = opts.families !== false
  let memo = new Map<string, string | undefined>()
  let memoFor: readonly CatalogEntry[] | undefined

  return async (name, signal) => {
    for (const r of rules) if (r.re.test(name)) return r.target
    const entries = await list(signal)
    if (entries !== memoFor) {
      memo = new Map()
      memoFor = entries
    }
    if (memo.has(name)) return memo.get(name)
    const found = nearest(name, entries, families)
    const answer = found ? `${found.provider.id}/${found.info.id}` : undefined
    memo.set(name, answer)
    return answer
  }
}

function nearest(name: string, entries: readonly CatalogEntry[], families: boolean): CatalogEntry | undefined {
  const bare = name.includes('/') ? name.slice(name.indexOf('/') + 1) : name
  const plain = undated(bare)
  if (plain !== bare) {
    const exact = entries.find((e) => e.info.id === plain)
    if (exact) return exact
  }
  if (!families) return undefined
  const wanted = parseClaude(bare)
  return wanted ? closestClaude(wanted, entries) : undefined
}
