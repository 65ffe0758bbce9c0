import { z } from '@hono/zod-openapi'
import { base64ToBytes } from '../core/media.js'
import { GatewayError } from '../errors.js'
import { FILE_PURPOSES, type FileStore } from '../jobs/files.js'
import { describeLineErrors, jsonlLines, parseBatchJsonl } from '../jobs/jsonl.js'
import { tooLarge } from './body.js'
import { defineRoute, jsonContent } from './define.js'
import type { GatewayApp } from './env.js'

export const FileObjectSchema = z
  .object({
    id: z.string(),
    object: z.literal('file'),
    bytes: z.number().int(),
    created_at: z.number().int(),
    expires_at: z.number().int().nullable(),
    filename: z.string(),
    purpose: z.string(),
    status: z.literal('processed'),
    status_details: z.null(),
  })
  .openapi('OpenAIFile')

const ListFiles = z.object({ object: z.literal('list'), data: z.array(FileObjectSchema), has_more: z.boolean(), first_id: z.string().nullable(), last_id: z.string().nullable() }).openapi('ListFilesResponse')
const Error = z.object({ error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }) })
const security = [{ bearerAuth: [] }]
const fileId = z.object({ file_id: z.string().openapi({ param: { name: 'file_id', in: 'path' } }) })

export interface FileRouteDeps {
  files: FileStore
  /** Largest upload, in bytes. */
  maxBytes: number
  /** Validates fine-tune training files (set by the fine-tuning module). */
  validateFineTune?: (text: string) => string | undefined
}

export function listQuery(query: Record<string, string>, max = 10_000): { after?: string; limit: number; order: 'asc' | 'desc' } {
  const limit = query.limit === undefined ? 20 : Number(query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > max) throw new GatewayError('invalid_request', `limit must be an integer from 1 to ${max}.`, { param: 'limit' })
  const order = query.order ?? 'desc'
  if (order !== 'asc' && order !== 'desc') throw new GatewayError('invalid_request', "order must be 'asc' or 'desc'.", { param: 'order' })
  return { after: query.after, limit, order }
}

export function page<T extends { id: string }>(result: { data: T[]; has_more: boolean }) {
  return { object: 'list' as const, data: result.data, has_more: result.has_more, first_id: result.data[0]?.id ?? null, last_id: result.data[result.data.length - 1]?.id ?? null }
}

/** OpenAI's Files API on the `files:` mount. */
export function fileRoutes(app: GatewayApp, deps: FileRouteDeps): void {
  defineRoute(
    app,
    {
      method: 'post',
      path: '/v1/files',
      operationId: 'createFile',
      tags: ['Files'],
      summary: 'Upload a file (multipart: file, purpose). Batch and fine-tune JSONL is validated line by line.',
      security,
      request: {
        body: {
          required: true,
          content: { 'multipart/form-data': { schema: z.object({ file: z.string().openapi({ format: 'binary' }), purpose: z.enum(FILE_PURPOSES) }) } },
        },
      },
      responses: { 200: jsonContent(FileObjectSchema, 'The stored file'), 400: jsonContent(Error, 'Invalid file'), 413: jsonContent(Error, 'Too large') },
    },
    async (c) => {
      const declared = Number(c.req.header('content-length') ?? '0')
      if (declared > deps.maxBytes) throw tooLarge(deps.maxBytes)
      const type = c.req.header('content-type') ?? ''
      if (!type.startsWith('multipart/form-data')) throw new GatewayError('invalid_request', 'Upload files as multipart/form-data with the fields "file" and "purpose".', { code: 'invalid_content_type' })
      let form: Record<string, unknown>
      try {
        form = await c.req.parseBody()
      } catch {
        throw new GatewayError('invalid_request', 'The multipart body could not be parsed.', { code: 'invalid_multipart' })
      }
      const purpose = form.purpose
      if (typeof purpose !== 'string' || !(FILE_PURPOSES as readonly string[]).includes(purpose)) {
        throw new GatewayError('invalid_request', `purpose must be one of ${FILE_PURPOSES.join(', ')}.`, { param: 'purpose' })
      }
      const file = form.file
      if (!(file instanceof Blob)) throw new GatewayError('invalid_request', "Missing required parameter: 'file'.", { param: 'file', code: 'missing_required_parameter' })
      if (file.size > deps.maxBytes) throw tooLarge(deps.maxBytes)
      const name = (file as File).name || 'upload'
      // JSONL is validated as text; other uploads (PDFs, images for chat file_id references) are kept byte for byte.
      if (purpose !== 'batch' && purpose !== 'fine-tune') return c.json(await deps.files.create(new Uint8Array(await file.arrayBuffer()), name, purpose, c.get('keyId')))
      const text = await file.text()
      if (purpose === 'batch') {
        const { errors } = parseBatchJsonl(text)
        if (errors.length) throw new GatewayError('invalid_request', `Invalid batch file: ${describeLineErrors(errors)}`, { param: 'file', code: 'invalid_jsonl' })
      } else if (purpose === 'fine-tune') {
        const problem = deps.validateFineTune ? deps.validateFineTune(text) : jsonlLines(text).length === 0 ? 'line 1: The file has no examples.' : undefined
        if (problem) throw new GatewayError('invalid_request', `Invalid training file: ${problem}`, { param: 'file', code: 'invalid_jsonl' })
      }
      return c.json(await deps.files.create(text, name, purpose, c.get('keyId')))
    },
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/files',
      operationId: 'listFiles',
      tags: ['Files'],
      summary: 'Your files, newest first (cursor pagination with after/limit)',
      security,
      request: { query: z.object({ after: z.string().optional(), limit: z.string().optional(), order: z.enum(['asc', 'desc']).optional(), purpose: z.string().optional() }) },
      responses: { 200: jsonContent(ListFiles, 'A page of files') },
    },
    async (c) => {
      const q = c.req.query()
      const result = await deps.files.list(c.get('keyId'), { ...listQuery(q), purpose: q.purpose })
      return c.json(page(result))
    },
  )

  defineRoute(
    app,
    { method: 'get', path: '/v1/files/{file_id}', operationId: 'retrieveFile', tags: ['Files'], summary: 'One file', security, request: { params: fileId }, responses: { 200: jsonContent(FileObjectSchema, 'The file'), 404: jsonContent(Error, 'No such file') } },
    async (c) => c.json(await deps.files.get(c.req.param('file_id') ?? '', c.get('keyId'))),
  )

  defineRoute(
    app,
    {
      method: 'get',
      path: '/v1/files/{file_id}/content',
      operationId: 'downloadFile',
      tags: ['Files'],
      summary: "A file's content",
      security,
      request: { params: fileId },
      responses: { 200: { description: 'The raw content', content: { 'application/octet-stream': { schema: z.string() } } }, 404: jsonContent(Error, 'No such file') },
    },
    async (c) => {
      const { file, data } = await deps.files.base64(c.req.param('file_id') ?? '', c.get('keyId'))
      return c.body(base64ToBytes(data) as Uint8Array<ArrayBuffer>, 200, { 'content-type': file.filename.endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream' })
    },
  )

  defineRoute(
    app,
    {
      method: 'delete',
      path: '/v1/files/{file_id}',
      operationId: 'deleteFile',
      tags: ['Files'],
      summary: 'Delete a file',
      security,
      request: { params: fileId },
      responses: { 200: jsonContent(z.object({ id: z.string(), object: z.literal('file'), deleted: z.boolean() }), 'Deleted'), 404: jsonContent(Error, 'No such file') },
    },
    async (c) => c.json(await deps.files.delete(c.req.param('file_id') ?? '', c.get('keyId'))),
  )
}
