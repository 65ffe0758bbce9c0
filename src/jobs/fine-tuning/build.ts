import { estimateTextTokens } from '../../core/tokens.js'
import { GatewayError } from '../../errors.js'
import type { Adapter } from '../../pipeline/adapter-store.js'
import { adapterPrompt, renderDemonstration, type Embed } from '../../pipeline/adapters.js'
import { lexicalModel, lexicalVector, normalise, type LexicalModel, type StoredVector } from '../../pipeline/text-vectors.js'
import type { CallContext } from '../../providers/types.js'
import type { Dispatch } from '../dispatch.js'
import type { FineTuningConfig } from './config.js'
import { deriveInstructions } from './instructions.js'
import type { JobEvent, StoredJob } from './job.js'
import { seededOrder, selectDiverse } from './select.js'
import { embeddingSimilarity, rougeL } from './similarity.js'
import { answerText, contentText, queryText, type TrainingExample, type WireMessage } from './training-file.js'

export interface EvalStep {
  base: number
  adapter: number
}

export interface BuildInput {
  job: StoredJob
  training: TrainingExample[]
  validation?: TrainingExample[]
  config: FineTuningConfig
  dispatch: Dispatch
  embed?: Embed
  signal: AbortSignal
  /** Evaluation steps a previous run finished (after a restart). */
  done: Array<EvalStep | null | undefined>
  event(message: string, extra?: { level?: JobEvent['level']; data?: Record<string, unknown>; type?: JobEvent['type'] }): Promise<void>
  saveStep(index: number, step: EvalStep | null): Promise<void>
}

export interface Built {
  adapter: Adapter
  steps: Array<EvalStep | null>
  scores: { base: number; adapter: number; examples: number; metric: string } | null
}

/** At least this many examples before some are held out: fewer would leave too little to learn from. */
const MIN_FOR_HOLD_OUT = 5
const EMBED_BATCH = 64

/**
 * Builds an in-context adapter from a job's examples and measures it. Every
 * step is reported as a job event (counts and scores, never content).
 * Returns undefined when the run was stopped (cancel, shutdown).
 */
export async function buildAdapter(input: BuildInput): Promise<Built | undefined> {
  const { job, config, signal } = input
  const options = job.adapter!
  const owner = job.owner ?? undefined
  const ctx: CallContext = { signal, requestId: job.id, keyId: owner }

  // 1. What is learnt from, and what it is measured on.
  let train = input.training
  let evalSet: TrainingExample[] = []
  const maxEval = Math.min(config.maxEvalExamples, 500)
  if (!options.evaluate || maxEval === 0) {
    await input.event('Evaluation skipped: it is turned off for this job (adapter.evaluate or fineTuning.maxEvalExamples).')
  } else if (input.validation) {
    const order = seededOrder(input.validation.length, job.seed)
    evalSet = order.slice(0, maxEval).map((i) => input.validation![i])
  } else if (train.length >= MIN_FOR_HOLD_OUT && config.heldOutFraction > 0) {
    const hold = Math.min(maxEval, Math.max(1, Math.round(train.length * config.heldOutFraction)))
    const order = seededOrder(train.length, job.seed)
    const held = new Set(order.slice(0, hold))
    evalSet = order.slice(0, hold).map((i) => input.training[i])
    train = input.training.filter((_, i) => !held.has(i))
  } else {
    await input.event(`Evaluation skipped: ${train.length} example${train.length === 1 ? '' : 's'} are too few to hold some out (at least ${MIN_FOR_HOLD_OUT} are needed), and the job has no validation file.`, { level: 'warn' })
  }
  await input.event(`Learning from ${train.length} training example${train.length === 1 ? '' : 's'}; evaluating on ${evalSet.length} ${input.validation ? 'validation' : 'held-out'} example${evalSet.length === 1 ? '' : 's'}`, {
    data: { training_examples: train.length, evaluation_examples: evalSet.length, evaluation_source: input.validation ? 'validation_file' : 'held_out' },
  })

  // 2. Vectors of what each example asks: embeddings when a backend is configured, else lexical.
  const queries = train.map((e) => queryText(e.prompt) || answerText(e.answer))
  let vectors: StoredVector[] | undefined
  let lexical: LexicalModel | undefined
  let method: 'embedding' | 'lexical' = 'lexical'
  if (config.embeddingModel && input.embed) {
    try {
      vectors = await embedAll(input.embed, config.embeddingModel, queries, ctx)
      method = 'embedding'
      await input.event(`Embedded ${queries.length} examples with ${config.embeddingModel}`)
    } catch (err) {
      if (signal.aborted) return undefined
      await input.event(`Embedding with ${config.embeddingModel} failed (${GatewayError.from(err).message}); using lexical similarity instead.`, { level: 'warn' })
    }
  }
  if (!vectors) {
    lexical = lexicalModel(queries)
    vectors = queries.map((q) => lexicalVector(lexical!, q))
    if (!config.embeddingModel) await input.event(`Indexed ${queries.length} examples lexically (no embeddings backend is configured: set fineTuning.embeddingModel for embedding-based selection)`)
  }
  if (signal.aborted) return undefined

  // 3. A compact, diverse set of demonstrations within the token budget.
  const rendered = train.map(renderExample)
  const tokens = rendered.map((r) => estimateTextTokens(r))
  const picked = selectDiverse(
    vectors.map((vector, i) => ({ vector, tokens: tokens[i] })),
    options.maxDemonstrations,
    config.maxDemonstrationTokens,
  )
  const demoTokens = picked.reduce((n, i) => n + tokens[i], 0)
  await input.event(
    `Selected ${picked.length} of ${train.length} examples as demonstrations (${method === 'embedding' ? 'embedding' : 'lexical'} similarity: the most representative first, then each the most different from those chosen), about ${demoTokens} prompt tokens per request`,
    { data: { demonstrations: picked.length, examples: train.length, selection: method, demonstration_tokens: demoTokens } },
  )

  // 4. The instructions the examples have in common.
  const derived = deriveInstructions(train)
  await input.event(
    `Derived the system prompt: ${derived.sharedSentences} instruction sentence${derived.sharedSentences === 1 ? '' : 's'} shared by at least half of the examples (${derived.systemPrompts} have a system prompt)${derived.jsonAnswers ? '; every answer is a JSON object' : ''}${derived.typicalWords && !derived.jsonAnswers ? `; typical answer length ${derived.typicalWords} words` : ''}`,
    { data: { shared_sentences: derived.sharedSentences, system_prompts: derived.systemPrompts, json_answers: derived.jsonAnswers, typical_answer_words: derived.typicalWords } },
  )

  const adapter: Adapter = {
    id: `ft:${job.model}:${job.user_provided_suffix ?? ''}:${job.id.slice('ftjob-'.length)}`,
    jobId: job.id,
    base: job.model,
    owner: job.owner,
    createdAt: Math.floor(Date.now() / 1000),
    instructions: derived.text,
    demonstrations: picked.map((i) => rendered[i]),
  }
  if (options.mode === 'retrieval') {
    const pool = train.slice(0, config.maxPool).map((_, i) => ({ text: rendered[i], vector: vectors![i] }))
    adapter.retrieval = { k: options.retrieveK, method, pool, ...(method === 'embedding' ? { embeddingModel: config.embeddingModel } : { lexical }) }
    await input.event(`Retrieval mode: each request gets the ${options.retrieveK} of ${pool.length} examples closest to its last user message`)
  }

  // 5. The base model with and without the adapter, scored against the expected answers.
  const metric = method === 'embedding' ? 'embedding_cosine' : 'rouge_l_f1'
  const score = async (answer: string, expected: string): Promise<number> => {
    if (method === 'embedding' && input.embed && config.embeddingModel) {
      const [a, b] = await input.embed(config.embeddingModel, [answer || ' ', expected || ' '], ctx)
      return embeddingSimilarity(a, b)
    }
    return rougeL(answer, expected)
  }
  const steps: Array<EvalStep | null> = evalSet.map((_, i) => input.done[i] ?? null)
  const pending = evalSet.map((_, i) => i).filter((i) => !input.done[i])
  let next = 0
  const worker = async () => {
    for (;;) {
      if (signal.aborted) return
      const i = pending[next++]
      if (i === undefined) return
      const ex = evalSet[i]
      const expected = answerText(ex.answer)
      try {
        const prompt = await adapterPrompt(adapter, queryText(ex.prompt), ctx, { embed: input.embed })
        const maxTokens = Math.max(256, estimateTextTokens(expected) * 2 + 64)
        const [base, adapted] = await Promise.all([
          complete(input.dispatch, job, ex.prompt, ex.tools, maxTokens, signal),
          complete(input.dispatch, job, withWireAdapterSystem(ex.prompt, prompt), ex.tools, maxTokens, signal),
        ])
        const step = { base: await score(base, expected), adapter: await score(adapted, expected) }
        steps[i] = step
        await input.saveStep(i, step)
        await input.event(`Step ${i + 1}/${evalSet.length}: base similarity=${step.base.toFixed(3)}, adapter similarity=${step.adapter.toFixed(3)}`, {
          type: 'metrics',
          data: { step: i + 1, total_steps: evalSet.length, base_similarity: round(step.base), adapter_similarity: round(step.adapter) },
        })
      } catch (err) {
        if (signal.aborted) return
        const e = GatewayError.from(err)
        await input.saveStep(i, null)
        await input.event(`Step ${i + 1}/${evalSet.length} skipped: ${e.message}`, { level: 'warn' })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.concurrency, Math.max(1, pending.length)) }, worker))
  if (signal.aborted) return undefined

  const valid = steps.filter((s): s is EvalStep => !!s)
  if (evalSet.length && !valid.length) throw new GatewayError('upstream', `every one of the ${evalSet.length} evaluation calls failed (see the job's events); the adapter was not published.`, { code: 'evaluation_failed' })
  let scores: Built['scores'] = null
  if (valid.length) {
    const base = valid.reduce((s, x) => s + x.base, 0) / valid.length
    const withAdapter = valid.reduce((s, x) => s + x.adapter, 0) / valid.length
    scores = { base: round(base), adapter: round(withAdapter), examples: valid.length, metric }
    const delta = withAdapter - base
    await input.event(
      `Evaluation on ${valid.length} example${valid.length === 1 ? '' : 's'} (${metric === 'embedding_cosine' ? 'embedding cosine' : 'ROUGE-L F1'} to the expected answers): base model ${base.toFixed(3)}, with the adapter ${withAdapter.toFixed(3)} (${delta >= 0 ? '+' : ''}${delta.toFixed(3)})${delta < 0 ? '; the adapter did not improve on these examples' : ''}`,
      { level: delta < 0 ? 'warn' : 'info', type: 'metrics', data: { base_similarity: scores.base, adapter_similarity: scores.adapter, examples: valid.length, metric } },
    )
  }
  return { adapter, steps, scores }
}

async function embedAll(embed: Embed, model: string, texts: string[], ctx: CallContext): Promise<number[][]> {
  const out: number[][] = []
  for (let i = 0; i < texts.length; i += EMBED_BATCH) {
    const batch = texts.slice(i, i + EMBED_BATCH).map((t) => t || ' ')
    const vectors = await embed(model, batch, ctx)
    if (vectors.length !== batch.length) throw new GatewayError('upstream', `the embeddings backend returned ${vectors.length} vectors for ${batch.length} texts`)
    out.push(...vectors.map(normalise))
  }
  return out
}

/** An example as a demonstration: its conversation without system prompts, ending with the answer. */
function renderExample(ex: TrainingExample): string {
  const turns = ex.prompt
    .filter((m) => m.role !== 'system' && m.role !== 'developer')
    .map((m) => ({ role: m.role, text: m.role === 'assistant' ? answerText(m) : contentText(m.content) }))
  turns.push({ role: 'assistant', text: answerText(ex.answer) })
  return renderDemonstration(turns)
}

/** The wire form of withAdapterSystem (src/pipeline/adapters.ts): the adapter's text first in the system prompt. */
function withWireAdapterSystem(prompt: WireMessage[], text: string): WireMessage[] {
  if (!text) return prompt
  const first = prompt[0]
  if (first && (first.role === 'system' || first.role === 'developer')) {
    const parts = typeof first.content === 'string' ? [{ type: 'text', text: first.content }] : (first.content ?? [])
    return [{ role: 'system', content: [{ type: 'text', text }, ...parts] }, ...prompt.slice(1)]
  }
  return [{ role: 'system', content: [{ type: 'text', text }] }, ...prompt]
}

/** One chat completion through the gateway's own pipeline, as the job's owner, at low priority. */
async function complete(dispatch: Dispatch, job: StoredJob, messages: WireMessage[], tools: unknown[] | undefined, maxTokens: number, signal: AbortSignal): Promise<string> {
  const body: Record<string, unknown> = { model: job.model, messages: messages.map(({ weight: _w, ...m }) => m), max_tokens: maxTokens }
  if (tools?.length) body.tools = tools
  const res = await dispatch({ method: 'POST', url: '/v1/chat/completions', body, priority: 'low', signal }, { keyId: job.owner ?? undefined, isAdmin: false })
  if (res.status >= 400) {
    const err = (res.body as { error?: { message?: string; code?: string } })?.error
    throw new GatewayError('upstream', `the model answered ${res.status}${err?.code ? ` (${err.code})` : ''}`)
  }
  const message = (res.body as { choices?: Array<{ message?: WireMessage }> })?.choices?.[0]?.message
  return message ? answerText(message) : ''
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4
}
