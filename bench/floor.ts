/**
 * The bench's floor: the least any gateway built on this stack does for the
 * same requests, so `npm run bench` shows what the stack itself costs next to
 * what the gateway's own work adds. Hono on @hono/node-server, one route,
 * the gateway's own upstream client (src/entry/undici-client.ts: undici's
 * pool), and the minimum of a translating proxy: parse the JSON body, send it
 * on, parse the answer and write it back; for a stream, parse each SSE event
 * and write it re-encoded. No auth, config, routing, pipeline, usage,
 * metrics, resume log or error mapping.
 *
 * The same file is Bun's floor: Bun.serve and Bun's fetch, as the gateway's Bun entry.
 *
 * Run (bundled by bench/run.ts): `UPSTREAM=http://127.0.0.1:P/v1 PORT=N node dist/bench/floor.mjs`, or `bun bench/floor.ts`.
 */
import { Hono } from 'hono'
import type { HttpClient } from '../src/providers/shared/http.js'

declare const Bun: { serve(o: { port: number; hostname: string; fetch(req: Request): Response | Promise<Response> }): unknown } | undefined
const onBun = typeof Bun !== 'undefined'

const upstream = process.env.UPSTREAM!
// The gateway's own clients: undici on Node, fetch on Bun (as src/entry/bun.ts).
const http: HttpClient = onBun ? (await import('../src/providers/shared/http.js')).fetchClient() : (await import('../src/entry/undici-client.js')).undiciClient()
const app = new Hono()
const encoder = new TextEncoder()

app.get('/health', (c) => c.json({ ok: true }))
app.post('/v1/chat/completions', async (c) => {
  const body = (await c.req.json()) as { stream?: boolean }
  const res = await http(`${upstream}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: c.req.raw.signal })
  if (!body.stream) return c.json(await res.json())
  const iterator = res.body[Symbol.asyncIterator]()
  const decoder = new TextDecoder()
  let buffered = ''
  const out = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      for (;;) {
        const { done, value } = await iterator.next()
        if (done) return ctrl.close()
        buffered += decoder.decode(value, { stream: true })
        let sent = false
        // One write per event, as any proxy that works event by event does.
        for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
          const data = buffered.slice(buffered.indexOf('data: ') + 6, end)
          buffered = buffered.slice(end + 2)
          ctrl.enqueue(encoder.encode(data === '[DONE]' ? 'data: [DONE]\n\n' : `data: ${JSON.stringify(JSON.parse(data))}\n\n`))
          sent = true
        }
        if (sent) return
      }
    },
    cancel: () => void iterator.return?.(),
  })
  return new Response(out, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } })
})

const options = { fetch: app.fetch, port: Number(process.env.PORT), hostname: '127.0.0.1' }
if (onBun) Bun!.serve(options)
else (await import('@hono/node-server')).serve(options)
