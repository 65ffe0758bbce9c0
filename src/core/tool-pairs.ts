import type { Message, Part, ToolResultPart } from './types.js'

/**
 * A tool call in a client's history must be answered by a tool result right
 * after it, and every tool result must answer a call of the assistant turn
 * before it: providers reject anything else. This finds the first orphan
 * (for a clear 400 naming the id) or, in repair mode, fixes the history:
 * unanswered calls get an error result, results without a call are dropped.
 */
export type Orphan = { kind: 'tool_call' | 'tool_result'; id: string; messageIndex: number }

export function findOrphanToolPair(messages: readonly Message[]): Orphan | undefined {
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]
    if (m.role === 'assistant') {
      const calls = callIds(m.content)
      if (calls.length === 0) continue
      const answered = answeredIds(messages, i + 1)
      for (const id of calls) if (!answered.has(id)) return { kind: 'tool_call', id, messageIndex: i }
    } else {
      const prev = previousAssistantCalls(messages, i)
      for (const p of m.content) if (p.type === 'tool_result' && !prev.has(p.callId)) return { kind: 'tool_result', id: p.callId, messageIndex: i }
    }
  }
  return undefined
}

export function repairToolPairs(messages: readonly Message[]): Message[] {
  const out: Message[] = []
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]
    if (m.role === 'assistant') {
      out.push(m)
      const calls = callIds(m.content)
      if (calls.length === 0) continue
      const answered = answeredIds(messages, i + 1)
      const missing: ToolResultPart[] = calls
        .filter((id) => !answered.has(id))
        .map((id) => ({ type: 'tool_result', callId: id, isError: true, content: [{ type: 'text', text: 'No result was provided for this tool call.' }] }))
      if (missing.length) out.push({ role: 'tool', content: missing })
      continue
    }
    const prev = previousAssistantCalls(messages, i)
    const content = m.content.filter((p) => p.type !== 'tool_result' || prev.has(p.callId))
    if (content.length === m.content.length) out.push(m)
    else if (content.length) out.push({ ...m, content })
  }
  return out
}

function callIds(parts: readonly Part[]): string[] {
  const ids: string[] = []
  for (const p of parts) if (p.type === 'tool_call') ids.push(p.id)
  return ids
}

/** Results given in the non-assistant messages that follow an assistant turn. */
function answeredIds(messages: readonly Message[], from: number): Set<string> {
  const ids = new Set<string>()
  for (let j = from; j < messages.length && messages[j].role !== 'assistant'; j++) {
    for (const p of messages[j].content) if (p.type === 'tool_result') ids.add(p.callId)
  }
  return ids
}

function previousAssistantCalls(messages: readonly Message[], at: number): Set<string> {
  for (let j = at - 1; j >= 0; j--) if (messages[j].role === 'assistant') return new Set(callIds(messages[j].content))
  return new Set()
}
