import { findOrphanToolPair, repairToolPairs } from '../core/tool-pairs.js'
import type { Message } from '../core/types.js'
import { GatewayError } from '../errors.js'

export interface ToolPairNames {
  /** The dialect's names for a call and a result, e.g. `tool_use`/`tool_result`. */
  call: string
  result: string
  /** The client's path of the core message at `index`, e.g. `messages[3]`. */
  where(index: number): string
}

/**
 * Orphaned tool calls or results in a client's history: a 400 naming the id
 * (what the real services answer, and what tells the client what to fix), or
 * the repaired history when `routing.repairToolPairs` is set.
 */
export function enforceToolPairs(messages: Message[], repair: boolean, names: ToolPairNames): Message[] {
  if (repair) return repairToolPairs(messages)
  const orphan = findOrphanToolPair(messages)
  if (!orphan) return messages
  const at = names.where(orphan.messageIndex)
  const message =
    orphan.kind === 'tool_call'
      ? `${at}: \`${names.call}\` id "${orphan.id}" has no \`${names.result}\` after it. Each \`${names.call}\` must be answered by a \`${names.result}\` with the same id in the next message.`
      : `${at}: \`${names.result}\` refers to id "${orphan.id}", which is not a \`${names.call}\` of the previous assistant message.`
  throw new GatewayError('invalid_request', `${message} (Set routing.repairToolPairs in the gateway config to repair such histories instead.)`, {
    param: at,
    code: 'orphaned_tool_call',
  })
}

