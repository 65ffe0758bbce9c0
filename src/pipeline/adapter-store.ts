import type { Storage } from 'unstorage'
import type { LexicalModel, StoredVector } from './text-vectors.js'

/**
 * An in-context adapter: what a fine-tuning job learnt from its examples,
 * applied to every request for its `ft:` model. No weights are involved.
 */
export interface Adapter {
  /** The model id clients call: `ft:<base>:<suffix>:<id>`. */
  id: string
  jobId: string
  /** The model the adapter runs on, as the job named it (any name the router resolves). */
  base: string
  /** Hash id of the key that created it: adapters hold training text, so they are private to it. */
  owner: string | null
  createdAt: number
  /** Instructions derived from the examples' common system prompts and answers. */
  instructions: string
  /** Rendered demonstrations shown on every request (and the fallback of retrieval). */
  demonstrations: string[]
  /** When set, each request gets the `k` demonstrations closest to its last user turn instead. */
  retrieval?: {
    k: number
    method: 'embedding' | 'lexical'
    embeddingModel?: string
    lexical?: LexicalModel
    pool: Array<{ text: string; vector: StoredVector }>
  }
}

const PREFIX = 'ftadapters'
/** How long a looked-up adapter is trusted before storage is read again (other instances may delete it). */
const RECHECK_MS = 30_000

/**
 * Adapters on the `jobs:` mount at `ftadapters:<job id>`. All are loaded
 * once at start-up; a request for an unknown or stale `ft:` id reads
 * storage, so adapters made by another instance are found too.
 */
export class AdapterStore {
  private readonly byJob = new Map<string, { adapter: Adapter; checkedAt: number }>()

  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<number> {
    const keys = await this.storage.getKeys(PREFIX)
    for (const k of keys) {
      const a = await this.storage.getItem<Adapter>(k)
      if (isAdapter(a)) this.byJob.set(a.jobId, { adapter: a, checkedAt: this.now() })
    }
    return this.byJob.size
  }

  async save(adapter: Adapter): Promise<void> {
    await this.storage.setItem(`${PREFIX}:${adapter.jobId}`, adapter)
    this.byJob.set(adapter.jobId, { adapter, checkedAt: this.now() })
  }

  /** The caller's adapter for a model id, or undefined (unknown, deleted, or another key's). */
  async lookup(model: string, owner: string | undefined): Promise<Adapter | undefined> {
    const jobId = jobIdOf(model)
    if (!jobId) return undefined
    let entry = this.byJob.get(jobId)
    if (!entry || this.now() - entry.checkedAt > RECHECK_MS) {
      const stored = await this.storage.getItem<Adapter>(`${PREFIX}:${jobId}`)
      if (isAdapter(stored)) this.byJob.set(jobId, (entry = { adapter: stored, checkedAt: this.now() }))
      else {
        this.byJob.delete(jobId)
        entry = undefined
      }
    }
    const a = entry?.adapter
    return a && a.id === model && a.owner === (owner ?? null) ? a : undefined
  }

  /** The caller's adapters, oldest first. */
  list(owner: string | undefined): Adapter[] {
    return [...this.byJob.values()].map((e) => e.adapter).filter((a) => a.owner === (owner ?? null)).sort((a, b) => a.createdAt - b.createdAt)
  }

  async remove(model: string, owner: string | undefined): Promise<boolean> {
    const a = await this.lookup(model, owner)
    if (!a) return false
    await this.storage.removeItem(`${PREFIX}:${a.jobId}`)
    this.byJob.delete(a.jobId)
    return true
  }
}

/** `ft:<base>:<suffix>:<id>` → the job that made it; the id is the last segment (base names may hold colons). */
function jobIdOf(model: string): string | undefined {
  if (!model.startsWith('ft:')) return undefined
  const seg = model.slice(model.lastIndexOf(':') + 1)
  return /^[A-Za-z0-9]{8,64}$/.test(seg) ? `ftjob-${seg}` : undefined
}

function isAdapter(v: unknown): v is Adapter {
  return !!v && typeof v === 'object' && typeof (v as Adapter).id === 'string' && typeof (v as Adapter).jobId === 'string' && Array.isArray((v as Adapter).demonstrations)
}
