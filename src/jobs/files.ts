import type { Storage } from 'unstorage'
import { newId, nowSeconds } from '../core/ids.js'
import { base64ToBytes, bytesToBase64 } from '../core/media.js'
import { GatewayError } from '../errors.js'

/** OpenAI's File object. */
export interface FileObject {
  id: string
  object: 'file'
  bytes: number
  created_at: number
  expires_at: number | null
  filename: string
  purpose: string
  status: 'processed'
  status_details: null
}

interface StoredMeta extends FileObject {
  /** Hash id of the key that uploaded it: files are private to their key. */
  owner: string | null
  /** Binary uploads (PDFs, images for chat file_id references) are kept as base64 text. */
  encoding?: 'base64'
}

export const FILE_PURPOSES = ['batch', 'fine-tune', 'assistants', 'vision', 'user_data', 'evals'] as const
export const OUTPUT_PURPOSES = ['batch_output', 'fine-tune-results'] as const

/**
 * Files on the `files:` mount: `meta:<id>` holds the File object and its
 * owner, `data:<id>` the content. Each key sees only its own files.
 */
export class FileStore {
  constructor(private readonly storage: Storage) {}

  async create(content: string | Uint8Array, filename: string, purpose: string, owner: string | undefined): Promise<FileObject> {
    const binary = typeof content !== 'string'
    const meta: StoredMeta = {
      id: newId('file-'),
      object: 'file',
      bytes: binary ? content.byteLength : new TextEncoder().encode(content).byteLength,
      created_at: nowSeconds(),
      expires_at: null,
      filename,
      purpose,
      status: 'processed',
      status_details: null,
      owner: owner ?? null,
      ...(binary ? { encoding: 'base64' as const } : {}),
    }
    await this.storage.setItem(`data:${meta.id}`, binary ? bytesToBase64(content) : content)
    await this.storage.setItem(`meta:${meta.id}`, meta)
    return publicFile(meta)
  }

  private async meta(id: string, owner: string | undefined): Promise<StoredMeta> {
    const meta = /^file-[A-Za-z0-9]+$/.test(id) ? await this.storage.getItem<StoredMeta>(`meta:${id}`) : null
    if (!meta || meta.owner !== (owner ?? null)) throw new GatewayError('not_found', `No such File object: ${id}`, { param: 'file_id', code: 'file_not_found' })
    return meta
  }

  async get(id: string, owner: string | undefined): Promise<FileObject> {
    return publicFile(await this.meta(id, owner))
  }

  async content(id: string, owner: string | undefined): Promise<{ file: FileObject; content: string }> {
    const meta = await this.meta(id, owner)
    const content = await this.storage.getItem<string>(`data:${id}`)
    if (content === null) throw new GatewayError('not_found', `The content of ${id} is gone.`, { code: 'file_not_found' })
    const text = typeof content === 'string' ? content : JSON.stringify(content)
    return { file: publicFile(meta), content: meta.encoding === 'base64' ? new TextDecoder().decode(base64ToBytes(text)) : text }
  }

  /** The content as base64, for chat requests that reference the file by id (file_id). */
  async base64(id: string, owner: string | undefined): Promise<{ file: FileObject; data: string }> {
    const meta = await this.meta(id, owner)
    const content = await this.storage.getItem<string>(`data:${id}`)
    if (content === null) throw new GatewayError('not_found', `The content of ${id} is gone.`, { code: 'file_not_found' })
    const text = typeof content === 'string' ? content : JSON.stringify(content)
    return { file: publicFile(meta), data: meta.encoding === 'base64' ? text : bytesToBase64(new TextEncoder().encode(text)) }
  }

  async delete(id: string, owner: string | undefined): Promise<{ id: string; object: 'file'; deleted: true }> {
    await this.meta(id, owner)
    await this.storage.removeItem(`data:${id}`)
    await this.storage.removeItem(`meta:${id}`)
    return { id, object: 'file', deleted: true }
  }

  /** Newest first, cursor-paginated by id as OpenAI's list endpoints are. */
  async list(owner: string | undefined, opts: { after?: string; limit: number; purpose?: string; order: 'asc' | 'desc' }): Promise<{ data: FileObject[]; has_more: boolean }> {
    const keys = await this.storage.getKeys('meta')
    const metas = (await Promise.all(keys.map((k) => this.storage.getItem<StoredMeta>(k)))).filter(
      (m): m is StoredMeta => !!m && m.owner === (owner ?? null) && (!opts.purpose || m.purpose === opts.purpose),
    )
    metas.sort((a, b) => (opts.order === 'asc' ? a.created_at - b.created_at || a.id.localeCompare(b.id) : b.created_at - a.created_at || b.id.localeCompare(a.id)))
    let start = 0
    if (opts.after) {
      const at = metas.findIndex((m) => m.id === opts.after)
      start = at === -1 ? metas.length : at + 1
    }
    const page = metas.slice(start, start + opts.limit)
    return { data: page.map(publicFile), has_more: start + opts.limit < metas.length }
  }
}

function publicFile(meta: StoredMeta): FileObject {
  const { owner: _owner, encoding: _encoding, ...file } = meta
  return file
}
