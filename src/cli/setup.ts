import { readFile, writeFile } from 'node:fs/promises'
import { parseClaude } from '../pipeline/model-names.js'

/**
 * `claude-code` and `codex`: the client set-up for this gateway in one step.
 * Models come from the gateway's own GET /v1/models (or the flags); the main
 * tier gets the strongest model, the fast tier the lightest.
 */
export interface SetupOptions {
  url: string
  key?: string
  model?: string
  fastModel?: string
  fetch?: typeof fetch
}

export function parseFlags(args: string[]): SetupOptions & { write?: string } {
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`)
    return i === -1 ? undefined : args[i + 1]
  }
  const port = process.env.PORT ?? '4000'
  return {
    url: (flag('url') ?? process.env.GATEWAY_URL ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '').replace(/\/v1$/, ''),
    key: flag('key') ?? process.env.GATEWAY_API_KEY ?? process.env.GATEWAY_API_KEYS?.split(',')[0]?.trim(),
    model: flag('model'),
    fastModel: flag('fast-model'),
    write: flag('write'),
  }
}

async function listModels(opts: SetupOptions): Promise<string[]> {
  const f = opts.fetch ?? fetch
  let res: Response
  try {
    res = await f(`${opts.url}/v1/models`, { headers: opts.key ? { authorization: `Bearer ${opts.key}` } : {}, signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new Error(`Could not reach the gateway at ${opts.url} (${(err as Error).message}). Start it (npx vscode-lm-gateway) or pass --url, or name the models with --model and --fast-model.`)
  }
  if (res.status === 401) throw new Error(`The gateway at ${opts.url} wants an API key: pass --key (or set GATEWAY_API_KEY).`)
  if (!res.ok) throw new Error(`The gateway at ${opts.url} answered ${res.status} to GET /v1/models.`)
  const body = (await res.json()) as { data?: Array<{ id: string }> }
  return (body.data ?? []).map((m) => m.id)
}

const FAST = /(haiku|mini|flash|nano|small|lite|fast)/i
const EMBEDDING = /(embed|whisper|tts|dall-e|moderation|rerank)/i

/** Main tier: the newest Claude Opus/Sonnet, else a strong GPT/Gemini, else the first chat model. Fast tier: Haiku or a mini/flash model. */
export function pickModels(ids: string[]): { main?: string; fast?: string } {
  const chat = ids.filter((id) => !EMBEDDING.test(id))
  const claude = chat.map((id) => ({ id, c: parseClaude(id) })).filter((x) => x.c)
  const rank = (family: string) => claude.filter((x) => x.c!.family === family).sort((a, b) => b.c!.version - a.c!.version)[0]?.id
  const main = rank('sonnet') ?? rank('opus') ?? chat.find((id) => /gpt-5(?!.*mini)|gpt-4\.1(?!.*mini)|gpt-4o(?!.*mini)|gemini.*pro|o3|o4/i.test(id) && !FAST.test(id)) ?? chat.find((id) => !FAST.test(id)) ?? chat[0]
  const fast = rank('haiku') ?? chat.find((id) => FAST.test(id)) ?? main
  return { main, fast }
}

async function models(opts: SetupOptions): Promise<{ main: string; fast: string }> {
  let { model: main, fastModel: fast } = opts
  if (!main || !fast) {
    const picked = pickModels(await listModels(opts))
    main ??= picked.main
    fast ??= picked.fast ?? main
  }
  if (!main || !fast) throw new Error(`The gateway at ${opts.url} lists no chat models: configure a provider, or pass --model and --fast-model.`)
  return { main, fast }
}

function shellQuote(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`
}

/** The environment Claude Code reads (ANTHROPIC_SMALL_FAST_MODEL for older versions, DEFAULT_HAIKU for newer). */
export async function claudeCodeEnv(opts: SetupOptions): Promise<Record<string, string>> {
  const { main, fast } = await models(opts)
  return {
    ANTHROPIC_BASE_URL: opts.url,
    ANTHROPIC_AUTH_TOKEN: opts.key ?? 'no-key-needed',
    ANTHROPIC_MODEL: main,
    ANTHROPIC_SMALL_FAST_MODEL: fast,
    ANTHROPIC_DEFAULT_SONNET_MODEL: main,
    ANTHROPIC_DEFAULT_OPUS_MODEL: main,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: fast,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  }
}

export function envBlock(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n')
}

/** Codex CLI config.toml: a model provider on this gateway's Responses API, the key read from an env var. */
export async function codexConfig(opts: SetupOptions): Promise<{ toml: string; env: Record<string, string> }> {
  const { main } = await models(opts)
  const toml = [
    `model = ${JSON.stringify(main)}`,
    'model_provider = "vscode-lm-gateway"',
    '',
    '[model_providers.vscode-lm-gateway]',
    'name = "vscode-lm-gateway"',
    `base_url = ${JSON.stringify(`${opts.url}/v1`)}`,
    'wire_api = "responses"',
    'env_key = "VSCODE_LM_GATEWAY_KEY"',
    '',
  ].join('\n')
  return { toml, env: { VSCODE_LM_GATEWAY_KEY: opts.key ?? 'no-key-needed' } }
}

/** Writes Claude Code's env: into a settings.json (merged with what is there) or as a shell file. */
async function writeClaude(path: string, env: Record<string, string>): Promise<void> {
  if (path.endsWith('.json')) {
    let current: Record<string, unknown> = {}
    try {
      current = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
    } catch {
      /* a new file */
    }
    const merged = { ...current, env: { ...(current.env as Record<string, string> | undefined), ...env } }
    await writeFile(path, `${JSON.stringify(merged, null, 2)}\n`)
  } else await writeFile(path, `${envBlock(env)}\n`)
}

export const setupCommands = {
  'claude-code': {
    summary: 'Print the env block for Claude Code (flags: --url, --key, --model, --fast-model, --write <settings.json|file.sh>)',
    async run(args: string[]) {
      const opts = parseFlags(args)
      const env = await claudeCodeEnv(opts)
      if (opts.write) {
        await writeClaude(opts.write, env)
        console.log(`Wrote Claude Code settings to ${opts.write}.`)
      } else console.log(`# Claude Code on vscode-lm-gateway: paste into your shell, then run \`claude\`\n${envBlock(env)}`)
    },
  },
  codex: {
    summary: 'Print a config.toml snippet for the OpenAI Codex CLI (flags: --url, --key, --model, --write <config.toml>)',
    async run(args: string[]) {
      const opts = parseFlags(args)
      const { toml, env } = await codexConfig(opts)
      if (opts.write) {
        let current = ''
        try {
          current = await readFile(opts.write, 'utf8')
        } catch {
          /* a new file */
        }
        if (current.includes('[model_providers.vscode-lm-gateway]')) throw new Error(`${opts.write} already has [model_providers.vscode-lm-gateway]; edit it by hand or remove that section.`)
        // Top-level keys must come before any table: the snippet goes first.
        await writeFile(opts.write, current ? `${toml}\n${current}` : toml)
        console.log(`Wrote the Codex provider to ${opts.write}. Set the key: ${envBlock(env)}`)
      } else console.log(`# ~/.codex/config.toml\n${toml}\n# and in your shell:\n${envBlock(env)}`)
    },
  },
}
