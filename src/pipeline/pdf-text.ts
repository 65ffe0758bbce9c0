import { GatewayError } from '../errors.js'

/**
 * A PDF's text, page by page, with unpdf (pdf.js built for serverless: it runs
 * on Node, Bun and Workers alike). Loaded on first use only, so gateways that
 * never convert pay nothing for it.
 */
export async function pdfText(bytes: Uint8Array, maxPages: number, param: string): Promise<{ text: string; pages: number }> {
  const { getDocumentProxy } = await import('unpdf')
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>
  try {
    pdf = await getDocumentProxy(bytes)
  } catch (err) {
    const why = (err as Error)?.name === 'PasswordException' ? 'it is encrypted' : 'it is not a readable PDF'
    throw new GatewayError('invalid_request', `${param}: the PDF could not be converted to text: ${why}.`, { param, code: 'pdf_unreadable', cause: err })
  }
  try {
    const pages = Math.min(pdf.numPages, maxPages)
    const out: string[] = []
    for (let i = 1; i <= pages; i++) {
      const page = await pdf.getPage(i)
      const content = await page.getTextContent()
      let line = ''
      for (const item of content.items) {
        if (!('str' in item)) continue
        line += item.str
        if (item.hasEOL) line += '\n'
      }
      out.push(line.trim())
    }
    const text = out.join('\n\n').trim()
    if (!text) {
      throw new GatewayError('invalid_request', `${param}: the PDF has no extractable text (a scanned document?), so it cannot be converted for a text-only model.`, { param, code: 'pdf_no_text' })
    }
    const truncated = pdf.numPages > pages ? `\n\n[Only the first ${pages} of ${pdf.numPages} pages were converted.]` : ''
    return { text: text + truncated, pages }
  } finally {
    await pdf.destroy().catch(() => {})
  }
}
