import { cosine, type StoredVector } from '../../pipeline/text-vectors.js'

export interface Candidate {
  vector: StoredVector
  /** Estimated prompt tokens the demonstration costs on every request. */
  tokens: number
}

/**
 * Picks a compact, diverse set: first the most representative example (the
 * one closest to all others on average), then again and again the example
 * farthest from everything chosen so far (greedy k-center), skipping those
 * that no longer fit the token budget. Returns indices in pick order.
 */
export function selectDiverse(candidates: Candidate[], max: number, tokenBudget: number): number[] {
  const n = candidates.length
  if (n === 0 || max <= 0) return []
  const chosen: number[] = []
  let budget = tokenBudget
  // Closeness to the rest; O(n²) up to a sample, which is plenty for a representative start.
  const sample = n <= 400 ? candidates.map((_, i) => i) : Array.from({ length: 400 }, (_, k) => Math.floor((k * n) / 400))
  let first = -1
  let best = -Infinity
  for (let i = 0; i < n; i++) {
    if (candidates[i].tokens > budget) continue
    let s = 0
    for (const j of sample) if (j !== i) s += cosine(candidates[i].vector, candidates[j].vector)
    if (s > best) {
      best = s
      first = i
    }
  }
  if (first === -1) return []
  chosen.push(first)
  budget -= candidates[first].tokens
  const nearest = candidates.map((c) => cosine(c.vector, candidates[first].vector))
  while (chosen.length < max) {
    let pick = -1
    let far = -Infinity
    for (let i = 0; i < n; i++) {
      if (chosen.includes(i) || candidates[i].tokens > budget) continue
      const distance = 1 - nearest[i]
      if (distance > far) {
        far = distance
        pick = i
      }
    }
    if (pick === -1) break
    chosen.push(pick)
    budget -= candidates[pick].tokens
    for (let i = 0; i < n; i++) nearest[i] = Math.max(nearest[i], cosine(candidates[i].vector, candidates[pick].vector))
  }
  return chosen
}

/** A seeded shuffle (mulberry32), so a job's held-out split is the same after a restart. */
export function seededOrder(n: number, seed: number): number[] {
  let a = seed >>> 0
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  return order
}
