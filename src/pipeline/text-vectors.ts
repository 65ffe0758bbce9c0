/**
 * Lexical text vectors for adapters: hashed TF-IDF over words and word pairs,
 * L2-normalised, so that cosine similarity is a dot product. Used to pick
 * diverse demonstrations and to retrieve the closest ones per request when no
 * embeddings backend is configured. Hashing keeps the model a fixed size.
 */
export const LEXICAL_DIMS = 1024

/** Stored compactly: only the non-zero entries of a normalised vector. */
export interface SparseVector {
  idx: number[]
  val: number[]
}

export type StoredVector = number[] | SparseVector

/** Inverse document frequencies per hashed feature, learnt from the examples. */
export interface LexicalModel {
  dims: number
  idf: number[]
}

export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []
}

function features(text: string, dims: number): Map<number, number> {
  const w = words(text)
  const counts = new Map<number, number>()
  const add = (f: string) => {
    const h = fnv(f) % dims
    counts.set(h, (counts.get(h) ?? 0) + 1)
  }
  for (let i = 0; i < w.length; i++) {
    add(w[i])
    if (i + 1 < w.length) add(`${w[i]} ${w[i + 1]}`)
  }
  return counts
}

export function lexicalModel(texts: string[], dims = LEXICAL_DIMS): LexicalModel {
  const df = new Array<number>(dims).fill(0)
  for (const t of texts) for (const f of features(t, dims).keys()) df[f]++
  const n = texts.length
  return { dims, idf: df.map((d) => Math.log((1 + n) / (1 + d)) + 1) }
}

export function lexicalVector(model: LexicalModel, text: string): SparseVector {
  const idx: number[] = []
  const val: number[] = []
  for (const [f, tf] of features(text, model.dims)) {
    idx.push(f)
    val.push((1 + Math.log(tf)) * model.idf[f])
  }
  const norm = Math.sqrt(val.reduce((s, x) => s + x * x, 0)) || 1
  return { idx, val: val.map((x) => round(x / norm)) }
}

export function normalise(v: number[]): number[] {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1
  return v.map((x) => round(x / norm))
}

/** Cosine of two normalised vectors of the same kind. */
export function cosine(a: StoredVector, b: StoredVector): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    let s = 0
    for (let i = 0; i < Math.min(a.length, b.length); i++) s += a[i] * b[i]
    return s
  }
  if (!Array.isArray(a) && !Array.isArray(b)) {
    const small = a.idx.length <= b.idx.length ? a : b
    const large = small === a ? b : a
    const at = new Map<number, number>()
    large.idx.forEach((i, k) => at.set(i, large.val[k]))
    let s = 0
    small.idx.forEach((i, k) => (s += small.val[k] * (at.get(i) ?? 0)))
    return s
  }
  return 0
}

function round(x: number): number {
  return Math.round(x * 1e5) / 1e5
}

function fnv(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}
