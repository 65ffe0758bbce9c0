import { describe, expect, it } from 'vitest'
import type { ChatEvent } from '../../src/core/types.js'
import { GatewayError } from '../../src/errors.js'
import { eventStream } from '../../src/providers/shared/stream.js'

const text = (t: string): ChatEvent => ({ type: 'text', text: t })

/** A generator that yields `n` events, then waits on its signal (an upstream call in flight). */
function source(n: number, seen: { signal?: AbortSignal; returned?: boolean }) {
  return async function* (signal: AbortSignal): AsyncGenerator<ChatEvent> {
    seen.signal = signal
    try {
      for (let i = 0; i < n; i++) yield text(`e${i}`)
      // As an HTTP client does: an already aborted signal fails at once.
      signal.throwIfAborted()
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    } finally {
      seen.returned = true
    }
  }
}

describe('eventStream: the provider event stream without a web ReadableStream', () => {
  it('reads events in order, then done; a second reader waits for the lock', async () => {
    const s = eventStream(new AbortController().signal, async function* () {
      yield text('a')
      yield text('b')
    })
    const reader = s.getReader()
    expect(s.locked).toBe(true)
    expect(() => s.getReader()).toThrow(TypeError)
    // Reads asked for at once are answered in order, as a ReadableStream queues them.
    const [a, b, end] = await Promise.all([reader.read(), reader.read(), reader.read()])
    expect([a.value, b.value, end.done]).toEqual([text('a'), text('b'), true])
    expect((await reader.read()).done).toBe(true)
    await expect(reader.closed).resolves.toBeUndefined()
    reader.releaseLock()
    expect(s.locked).toBe(false)
  })

  it('cancel aborts the signal the generator got (the upstream call), ends the generator and reads as done', async () => {
    const seen: { signal?: AbortSignal; returned?: boolean } = {}
    const reader = eventStream(new AbortController().signal, source(1, seen)).getReader()
    expect((await reader.read()).value).toEqual(text('e0'))
    const pending = reader.read()
    await reader.cancel('client left')
    expect(seen.signal!.aborted).toBe(true)
    expect(seen.signal!.reason).toBe('client left')
    expect((await pending).done).toBe(true)
    expect(seen.returned).toBe(true)
    expect((await reader.read()).done).toBe(true)
  })

  it("the caller's signal aborting ends the upstream call with a cancelled error", async () => {
    const parent = new AbortController()
    const seen: { signal?: AbortSignal } = {}
    const reader = eventStream(parent.signal, source(0, seen)).getReader()
    const pending = reader.read()
    parent.abort()
    await expect(pending).rejects.toMatchObject({ kind: 'cancelled' })
    // The error stays: every later read rejects with it.
    await expect(reader.read()).rejects.toMatchObject({ kind: 'cancelled' })
    await expect(reader.closed).rejects.toBeInstanceOf(GatewayError)
  })

  it('a generator failing (even before its first await) rejects the read with a GatewayError', async () => {
    const reader = eventStream(new AbortController().signal, () => {
      throw new Error('bad request shape')
    }).getReader()
    await expect(reader.read()).rejects.toBeInstanceOf(GatewayError)
    const typed = eventStream(new AbortController().signal, async function* () {
      yield text('x')
      throw new GatewayError('rate_limit', 'slow down', { retryAfter: 3 })
    }).getReader()
    await typed.read()
    await expect(typed.read()).rejects.toMatchObject({ kind: 'rate_limit', retryAfter: 3 })
  })

  it('pipeThrough, tee and async iteration still work (over a real ReadableStream built on demand)', async () => {
    const make = () =>
      eventStream(new AbortController().signal, async function* () {
        yield text('a')
        yield text('b')
      })
    const upper = make().pipeThrough(new TransformStream<ChatEvent, string>({ transform: (e, c) => c.enqueue(e.type === 'text' ? e.text.toUpperCase() : '') }))
    const out: string[] = []
    for await (const s of upper as unknown as AsyncIterable<string>) out.push(s)
    expect(out).toEqual(['A', 'B'])
    const [x, y] = make().tee()
    const all = async (s: ReadableStream<ChatEvent>) => {
      const r = s.getReader()
      const got: ChatEvent[] = []
      for (;;) {
        const { done, value } = await r.read()
        if (done) return got
        got.push(value)
      }
    }
    expect(await all(x)).toEqual([text('a'), text('b')])
    expect(await all(y)).toEqual([text('a'), text('b')])
    const iterated: ChatEvent[] = []
    for await (const e of make() as unknown as AsyncIterable<ChatEvent>) iterated.push(e)
    expect(iterated).toEqual([text('a'), text('b')])
  })

  it('an unlocked stream can be cancelled before any read: the generator never starts', async () => {
    let started = false
    const s = eventStream(new AbortController().signal, async function* () {
      started = true
      yield text('a')
    })
    await s.cancel()
    expect(started).toBe(false)
    expect((await s.getReader().read()).done).toBe(true)
  })
})
