/**
 * Run with Bun (`bun test/runtimes/ws-global-client.ts <url> <key>`): drives
 * GET /v1/ws with the runtime's own global WebSocket, the way a browser does
 * (the key as the subprotocol `bearer.<key>`), and prints what it saw as JSON.
 */
const [url, key] = process.argv.slice(2)
const wsUrl = `${url.replace(/^http/, 'ws')}/v1/ws`

type Frame = { type: string; id?: string; [k: string]: any }

function open(protocols: string[]): Promise<{ ws: WebSocket; frames: Frame[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(wsUrl, protocols)
  const frames: Frame[] = []
  ws.onmessage = (e) => frames.push(JSON.parse(String(e.data)))
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (ws.onclose = (e) => resolve({ code: e.code, reason: e.reason })))
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, frames, closed })
    ws.onerror = () => reject(new Error('socket error'))
  })
}

async function until(frames: Frame[], pred: (f: Frame) => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!frames.some(pred)) {
    if (Date.now() > deadline) throw new Error(`timeout; frames: ${JSON.stringify(frames.slice(-3))}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const out: Record<string, unknown> = { hasGlobalWebSocket: typeof WebSocket === 'function' }
const bad = await open(['bearer.sk-wrong', 'lm-gateway.v1'])
out.badKeyClose = await bad.closed
const good = await open([`bearer.${key}`, 'lm-gateway.v1'])
out.protocol = good.ws.protocol
const ids = ['g0', 'g1', 'g2']
for (const id of ids) good.ws.send(JSON.stringify({ id, type: 'request', path: '/v1/chat/completions', body: { model: 'mock-1', stream: true, messages: [{ role: 'user', content: `global client ${id} one two three` }] } }))
await Promise.all(ids.map((id) => until(good.frames, (f) => f.id === id && f.type === 'done')))
const texts: Record<string, string> = {}
for (const id of ids) texts[id] = good.frames.filter((f) => f.id === id && f.type === 'event').map((f) => f.data.choices[0]?.delta?.content ?? '').join('')
out.texts = texts
good.ws.send('{oops')
await until(good.frames, (f) => f.type === 'error' && f.error?.error?.code === 'invalid_json')
good.ws.send(JSON.stringify({ type: 'ping', id: 'p' }))
await until(good.frames, (f) => f.type === 'pong')
out.keptAfterBadFrame = good.ws.readyState === WebSocket.OPEN
good.ws.close()
console.log(JSON.stringify(out))
process.exit(0)
export {}
