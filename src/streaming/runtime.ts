import { createStorage, type Storage } from 'unstorage'
import type { Logger } from '../logger.js'
import type { Compressor } from './compress.js'
import { parseStreamingConfig, type StreamingConfig } from './options.js'
import { StreamStore } from './resume.js'

/** What the routes need to stream: the settings, the resume buffer, the runtime's compressor. */
export interface StreamingRuntime {
  config: StreamingConfig
  /** Undefined when `streaming.resume` is off. */
  store: StreamStore | undefined
  compressor: Compressor | undefined
}

export interface StreamingDeps {
  /** The `streams:` storage mount; an in-memory one when none is given. */
  storage?: Storage
  compressor?: Compressor
  logger: Logger
}

export function createStreaming(raw: unknown, deps: StreamingDeps): StreamingRuntime {
  const config = parseStreamingConfig(raw)
  const store = config.resume
    ? new StreamStore(deps.storage ?? createStorage(), { resumeWindowSec: config.resumeWindowSec, flushMs: config.flushMs, pollMs: config.pollMs, logger: deps.logger })
    : undefined
  return { config, store, compressor: config.compression.enabled ? deps.compressor : undefined }
}
