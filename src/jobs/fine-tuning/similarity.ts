import { cosine, normalise, words } from '../../pipeline/text-vectors.js'

/**
 * ROUGE-L F1 over words: the longest common subsequence of the answer and
 * the expected answer, as a harmonic mean of its precision and recall.
 * 1 for the same words in the same order, 0 for nothing in common.
 */
export function rougeL(answer: string, expected: string): number {
  const a = words(answer).slice(0, 2000)
  const b = words(expected).slice(0, 2000)
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 1 : 0
  let prev = new Array<number>(b.length + 1).fill(0)
  for (let i = 1; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0)
    for (let j = 1; j <= b.length; j++) row[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1])
    prev = row
  }
  const lcs = prev[b.length]
  if (lcs === 0) return 0
  const p = lcs / a.length
  const r = lcs / b.length
  return (2 * p * r) / (p + r)
}

/** Cosine of two embeddings, clamped to [0, 1]. */
export function embeddingSimilarity(a: number[], b: number[]): number {
  return Math.max(0, Math.min(1, cosine(normalise(a), normalise(b))))
}
