import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import OpenAI from 'openai'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assetsFromDisk } from '../../src/entry/node.js'
import { startGateway, type RunningGateway } from '../helpers/gateway.js'

const ADMIN = 'sk-admin-dashboard'
const USER = 'sk-user-dashboard'
const PRICES = { 'mock/mock-1': { input: 2.5, output: 10 }, 'alt/mock-2': { input: 0.15, output: 0.6 } }
const SHOTS = join(import.meta.dirname, '..', '.tmp')
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']

const int = new Intl.NumberFormat('en-US')
const usd = (n: number) => (n === 0 ? '$0.00' : n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`)

describe('the dashboard in headless Chromium', () => {
  let gw: RunningGateway
  let browser: Browser
  const sent = { requests: 0, errors: 0, input: 0, output: 0, usd: 0, byModel: {} as Record<string, number>, byProvider: {} as Record<string, number> }
  const foreign: string[] = []
  const pageErrors: string[] = []

  beforeAll(async () => {
    gw = await startGateway(
      {
        server: { apiKeys: [USER, ADMIN], adminKeys: [ADMIN] },
        providers: [
          { id: 'mock', type: 'mock' },
          { id: 'alt', type: 'mock' },
        ],
        analytics: { enabled: true, flushIntervalMs: 20, prices: PRICES },
      },
      { assets: assetsFromDisk },
    )
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: USER, maxRetries: 0 })
    const note = (model: string, u?: { prompt_tokens: number; completion_tokens: number }) => {
      sent.requests++
      sent.byModel[model] = (sent.byModel[model] ?? 0) + 1
      const provider = model.split('/')[0]
      sent.byProvider[provider] = (sent.byProvider[provider] ?? 0) + 1
      if (!u) return
      sent.input += u.prompt_tokens
      sent.output += u.completion_tokens
      const p = PRICES[model as keyof typeof PRICES]
      sent.usd += (u.prompt_tokens * p.input + u.completion_tokens * p.output) / 1e6
    }
    // A scripted mix: long prompts so that token counts and costs are non-trivial numbers.
    for (let i = 0; i < 5; i++) {
      const r = await client.chat.completions.create({ model: 'mock/mock-1', messages: [{ role: 'user', content: `question ${i} ${'lorem ipsum dolor sit amet '.repeat(400 * (i + 1))}` }] })
      note('mock/mock-1', r.usage)
    }
    for (let i = 0; i < 3; i++) {
      const s = await client.chat.completions.create({ model: 'alt/mock-2', messages: [{ role: 'user', content: `stream ${i} ${'consectetur adipiscing '.repeat(300)}` }], stream: true, stream_options: { include_usage: true } })
      let usage: OpenAI.CompletionUsage | undefined
      for await (const chunk of s) if (chunk.usage) usage = chunk.usage
      note('alt/mock-2', usage)
    }
    const failed = await client.chat.completions.create({ model: 'alt/mock-2', messages: [{ role: 'user', content: '[[mock:error=overloaded]]' }] }).catch((e) => e)
    expect(failed).toBeInstanceOf(OpenAI.APIError)
    note('alt/mock-2')
    sent.errors++

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS })
    await mkdir(SHOTS, { recursive: true })
  })
  afterAll(async () => {
    await browser?.close()
    await gw?.close()
  })

  async function open(url: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const context = await browser.newContext({ viewport, locale: 'en-US' })
    const page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(gw.url)) foreign.push(r.url())
    })
    page.on('pageerror', (e) => pageErrors.push(e.message))
    page.on('console', (m) => {
      // The keyless first try (401) and the deliberate non-admin key (403) are expected answers.
      if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) pageErrors.push(m.text())
    })
    await page.goto(url)
    return page
  }

  async function loaded(page: Page, previous?: string): Promise<string> {
    await page.waitForFunction((prev) => {
      const v = document.getElementById('status')?.dataset.loaded
      return v !== undefined && v !== prev
    }, previous)
    return (await page.getAttribute('[data-testid=status]', 'data-loaded'))!
  }

  const text = (page: Page, id: string) => page.textContent(`[data-testid=${id}]`)

  async function table(page: Page): Promise<Record<string, string>> {
    return page.$$eval('[data-testid=breakdown] tbody tr', (rows) => Object.fromEntries(rows.map((r) => [r.querySelector('th')?.textContent ?? '', r.querySelector('td')?.textContent ?? ''])))
  }

  it('asks for the admin key, then shows totals that match the traffic sent', async () => {
    const page = await open(`${gw.url}/dashboard`)
    await page.waitForSelector('[data-testid=key-input]', { state: 'visible' })
    // A non-admin key is refused with the gateway's own message.
    await page.fill('[data-testid=key-input]', USER)
    await page.click('[data-testid=key-submit]')
    await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '').includes('admin'))
    await page.fill('[data-testid=key-input]', ADMIN)
    await page.click('[data-testid=key-submit]')
    let stamp = await loaded(page)
    expect(await page.isHidden('#login')).toBe(true)

    expect(await text(page, 'total-requests')).toBe(int.format(sent.requests))
    expect(await text(page, 'total-input-tokens')).toBe(int.format(sent.input))
    expect(await text(page, 'total-output-tokens')).toBe(int.format(sent.output))
    expect(await text(page, 'total-cost')).toBe(usd(sent.usd))
    expect(await text(page, 'total-errors')).toBe(`${sent.errors} error${sent.errors === 1 ? '' : 's'}`)
    expect(await text(page, 'total-error-rate')).toBe(`${((sent.errors / sent.requests) * 100).toFixed(0)}%`)
    expect(await text(page, 'total-latency')).toMatch(/\d+ ms \/ \d+ ms/)
    expect(await table(page)).toEqual(Object.fromEntries(Object.entries(sent.byModel).map(([k, n]) => [k, int.format(n)])))
    expect(await page.locator('.uplot').count()).toBe(5)
    expect(await text(page, 'retention')).toBe('30 days')
    // The key stays in this tab's sessionStorage, never in the URL.
    expect(page.url()).not.toContain(ADMIN)
    expect(await page.evaluate(() => sessionStorage.getItem('lmgw-admin-key'))).toBe(ADMIN)
    await page.screenshot({ path: join(SHOTS, 'dashboard-desktop.png'), fullPage: true })

    // Switch the range: all traffic was sent within the last 15 minutes, so the totals hold.
    await page.selectOption('[data-testid=range]', '15m')
    stamp = await loaded(page, stamp)
    expect(await text(page, 'total-requests')).toBe(int.format(sent.requests))
    expect(await text(page, 'status')).toContain('minute buckets')
    await page.selectOption('[data-testid=range]', '7d')
    stamp = await loaded(page, stamp)
    expect(await text(page, 'status')).toContain('hour buckets')
    expect(await text(page, 'total-output-tokens')).toBe(int.format(sent.output))
    expect(page.url()).toContain('range=7d')

    // Switch the grouping.
    await page.selectOption('[data-testid=group-by]', 'provider')
    stamp = await loaded(page, stamp)
    expect(await table(page)).toEqual(Object.fromEntries(Object.entries(sent.byProvider).map(([k, n]) => [k, int.format(n)])))
    await page.selectOption('[data-testid=group-by]', 'endpoint')
    stamp = await loaded(page, stamp)
    expect(await table(page)).toEqual({ 'POST /v1/chat/completions': int.format(sent.requests) })
    await page.screenshot({ path: join(SHOTS, 'dashboard-by-endpoint.png'), fullPage: true })
    await page.context().close()
  })

  it('is readable on a phone: no sideways scrolling, charts fit the screen', async () => {
    const page = await open(`${gw.url}/dashboard?range=1h#key=${ADMIN}`, { width: 390, height: 844 })
    await loaded(page)
    // The key given in the fragment is moved to sessionStorage and taken out of the address bar.
    expect(page.url()).not.toContain('#key')
    expect(await text(page, 'total-requests')).toBe(int.format(sent.requests))
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    const widest = await page.$$eval('.uplot', (els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)))
    expect(widest).toBeLessThanOrEqual(390)
    await page.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: true })
    await page.context().close()
  })

  it('wipes all data from the privacy panel', async () => {
    const page = await open(`${gw.url}/dashboard#key=${ADMIN}`)
    const stamp = await loaded(page)
    expect(await text(page, 'privacy')).toContain('never prompts or answers')
    page.once('dialog', (d) => void d.accept())
    await page.click('[data-testid=wipe]')
    await loaded(page, stamp)
    expect(await text(page, 'total-requests')).toBe('0')
    expect(await gw.gateway.storage.mount('analytics').getKeys()).toEqual([])
    await page.context().close()
  })

  it('loaded nothing from outside the gateway and raised no script or CSP errors', () => {
    expect(foreign).toEqual([])
    expect(pageErrors).toEqual([])
  })
})
