import type { ChatEvent } from '../core/types.js'
import { GatewayError } from '../errors.js'

/**
 * A client's choice of which stream events it wants. Filtering happens on
 * core events (before the dialect encoder) or on whole frames, never inside a
 * frame, so every SDK still sees a well-formed stream:
 *  - `no-thinking` drops thinking deltas (Anthropic never opens the block);
 *  - `no-tools` drops tool calls;
 *  - `no-ping` drops `event: ping` frames (heartbeat comments stay: parsers never see them);
 *  - `no-empty` drops content-free frames (OpenAI: the role-only first chunk;
 *    the role then rides on the first chunk with content, which the SDK needs);
 *  - `text` is text-only mode: all of the above.
 */
export interface EventFilter {
  thinking: boolean
  tools: boolean
  ping: boolean
  empty: boolean
}

const TOKENS: Record<string, Partial<EventFilter>> = {
  text: { thinking: true, tools: true, ping: true, empty: true },
  'no-thinking': { thinking: true },
  'no-tools': { tools: true },
  'no-ping': { ping: true },
  'no-empty': { empty: true },
  all: {},
}

export function parseEventFilter(value: string | string[], param: string): EventFilter {
  const tokens = (Array.isArray(value) ? value : value.split(',')).map((t) => t.trim().toLowerCase()).filter(Boolean)
  const filter: EventFilter = { thinking: false, tools: false, ping: false, empty: false }
  for (const t of tokens) {
    const set = TOKENS[t]
    if (!set) {
      throw new GatewayError('invalid_request', `Invalid value for '${param}': unknown event filter "${t}"; use any of ${Object.keys(TOKENS).join(', ')}.`, {
        param,
        code: 'invalid_value',
      })
    }
    Object.assign(filter, set)
  }
  return filter
}

/** Whether a core event passes the filter. */
export function keepEvent(filter: EventFilter, event: ChatEvent): boolean {
  switch (event.type) {
    case 'thinking':
      return !filter.thinking
    case 'tool_call_start':
    case 'tool_call_delta':
      return !filter.tools
    default:
      return true
  }
}
