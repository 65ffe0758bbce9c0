/**
 * The benchmark's fake OpenAI-compatible upstream, in its own process:
 * `POST /v1/chat/completions` answers a fixed small JSON, or with
 * `"stream":true` an SSE answer of 50 chunks written at once; the model
 * `slow` streams one chunk every 2 s (for open-stream memory). Runs on Bun
 * (Bun.serve, cheapest) or Node (node:http). Prints `READY <port>`.
 */
import { createServer } from 'node:http'

const CHUNKS = 50
const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'm', system_fingerprint: null }
const JSON_ANSWER = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1700000000,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
})
const frame = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`
const ROLE = frame({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })
const TOKENS = Array.from({ length: CHUNKS }, (_, i) => frame({ ...base, choices: [{ index: 0, delta: { content: ` tok${i}` }, logprobs: null, finish_reason: null }] }))
const TAIL = frame({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }) + frame({ ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: CHUNKS, total_tokens: 9 + CHUNKS } }) + 'data: [DONE]\n\n'
const SSE_ANSWER = ROLE + TOKENS.join('') + TAIL
const MODELS = JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model', created: 0, owned_by: 'bench' }, { id: 'slow', object: 'model', created: 0, owned_by: 'bench' }] })

declare const Bun: { serve(o: { port: number; hostname: string; fetch(req: Request): Response | Promise<Response> }): { port: number } } | undefined

function slowStream(): ReadableStream<Uint8Array> {
  const enc = new TextEncoder()
  let i = 0
  let timer: ReturnType<typeof setInterval> | undefined
  return new ReadableStream({
    start(c) {
      c.enqueue(enc.encode(ROLE + TOKENS[0]))
      timer = setInterval(() => {
        if (++i >= CHUNKS) {
          clearInterval(timer)
          c.enqueue(enc.encode(TAIL))
          c.close()
        } else c.enqueue(enc.encode(TOKENS[i]))
      }, 2000)
    },
    cancel() {
      clearInterval(timer)
    },
  })
}

const port = Number(process.env.PORT ?? 0)
if (typeof Bun !== 'undefined') {
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    async fetch(req) {
      if (req.method === 'GET') return new Response(MODELS, { headers: { 'content-type': 'application/json' } })
      const body = await req.text()
      if (!body.includes('"stream":true')) return new Response(JSON_ANSWER, { headers: { 'content-type': 'application/json' } })
      const sse = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
      if (body.includes('"model":"slow"')) return new Response(slowStream(), { headers: sse })
      return new Response(SSE_ANSWER, { headers: sse })
    },
  })
  console.log(`READY ${server.port}`)
} else {
  const server = createServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end(MODELS)
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => (body += d))
    req.on('end', () => {
      if (!body.includes('"stream":true')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON_ANSWER)
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      if (!body.includes('"model":"slow"')) return void res.end(SSE_ANSWER)
      res.write(ROLE + TOKENS[0])
      let i = 0
      const timer = setInterval(() => {
        if (++i >= CHUNKS) {
          clearInterval(timer)
          res.end(TAIL)
        } else res.write(TOKENS[i])
      }, 2000)
      res.on('close', () => clearInterval(timer))
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(port, '127.0.0.1', () => console.log(`READY ${(server.address() as { port: number }).port}`))
}
