import type OpenAI from 'openai'
import { toFile } from 'openai'

/** Shared by the fine-tuning tests: a support bot's training examples and the upload helper. */
export const SYSTEM = "You are Acme's support assistant. Answer in one short sentence. Always end with 'Have a nice day!'"

/** A support bot's examples: one shared system prompt, one answer style. */
export const SUPPORT: Array<[string, string]> = [
  ['How do I reset my password?', 'Use the Forgot password link on the sign-in page. Have a nice day!'],
  ['Where can I download my invoice?', 'Invoices are under Billing, then History. Have a nice day!'],
  ['Can I change my username?', 'Usernames cannot be changed, but you can set a display name. Have a nice day!'],
  ['How do I cancel my subscription?', 'Go to Billing and press Cancel plan. Have a nice day!'],
  ['Is there a mobile app?', 'Yes, search for Acme in your app store. Have a nice day!'],
  ['How do I add a team member?', 'Open Team settings and press Invite. Have a nice day!'],
  ['What payment methods do you accept?', 'We accept cards and bank transfers. Have a nice day!'],
  ['How do I export my data?', 'Use Export in the account menu to get a ZIP file. Have a nice day!'],
  ['Why was my card declined?', 'Your bank declined it; please contact them or try another card. Have a nice day!'],
  ['How do I enable two-factor authentication?', 'Turn it on under Security with an authenticator app. Have a nice day!'],
]

export const chatLine = (q: string, a: string, system = SYSTEM) => JSON.stringify({ messages: [{ role: 'system', content: system }, { role: 'user', content: q }, { role: 'assistant', content: a }] })
export const jsonl = (lines: string[]) => `${lines.join('\n')}\n`

export async function upload(client: OpenAI, text: string, name = 'train.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'fine-tune' })
}

