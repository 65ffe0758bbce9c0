import * as fx from '../fixtures/openai/chat.js'
import { startUpstream, writeSse, type FakeUpstream } from './upstream.js'

/**
 * A fake OpenAI chat-completions server that plays an agent turn: with tools
 * offered and a user turn last, it calls get_weather({"city":"Paris"});
 * otherwise (e.g. after the tool result) it answers "Hello, world!". Usage
 * is the fixtures' (10/5 for text, 82/17 for the call).
 */
export async function startFakeOpenAI(): Promise<FakeUpstream> {
  return startUpstream(async (req, res) => {
    if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fx.models))
    const body = req.json()
    const last = body.messages[body.messages.length - 1]
    const call = body.tools?.length && last.role === 'user'
    if (body.stream) return writeSse(res, call ? fx.streamToolCall : fx.streamText)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(call ? fx.completionToolCall : fx.completionText))
  })
}
