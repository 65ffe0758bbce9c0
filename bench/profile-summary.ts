/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by
 * function and by file, so per-request costs can be found and removed.
 * Usage: npx tsx bench/profile-summary.ts bench/profiles/<file>.cpuprofile [top]
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
const profile = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
const top = Number(process.argv[3] ?? 30)
const self = new Map<number, number>()
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const byFn = new Map<string, number>()
const byFile = new Map<string, number>()
const short = (url: string) => url.replace(/^file:\/\/.*?\/node_modules\//, 'nm:').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/') || '(native)'
for (const n of profile.nodes) {
  const t = self.get(n.id) ?? 0
  if (!t) continue
  const file = short(n.callFrame.url)
  const fn = `${n.callFrame.functionName || '(anonymous)'}  ${file}:${n.callFrame.lineNumber + 1}`
  byFn.set(fn, (byFn.get(fn) ?? 0) + t)
  const pkg = file.startsWith('nm:') ? file.split('/').slice(0, file.startsWith('nm:@') ? 2 : 1).join('/') : file
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + t)
}
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
console.log(`total sampled: ${(total / 1000).toFixed(0)} ms\n\nself time by function:`)
for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`)
// Inclusive time of our own functions (src/): where a request's time goes, callees included.
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const inclusive = new Map<string, number>()
for (const [id, t] of self) {
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!
    const file = short(n.callFrame.url)
    if (!file.startsWith('src/')) continue
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${file}`
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + t)
  }
}
console.log('\ninclusive time of src/ functions:')
for (const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`)
console.log('\nself time by file / package:')
for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`)
