import { mockProvider } from '../../src/providers/mock/index.js'
import { providerContract } from '../provider-contract.js'

providerContract('mock', async () => ({
  provider: mockProvider({ id: 'mock' }),
  model: 'mock-1',
  supports: { tools: true, images: true, streaming: true },
  exactUsage: false,
  arrange(s) {
    switch (s) {
      case 'text':
        return ' [[mock:reply=Hello, world!]]'
      case 'tool_call':
        return ' [[mock:tool=get_weather {"city":"Paris"}]]'
      case 'error_500':
        return ' [[mock:error=upstream]]'
      case 'error_401':
        return ' [[mock:error=auth]]'
      case 'error_429':
        return ' [[mock:error=rate_limit]]'
      case 'error_400':
        return ' [[mock:error=invalid_request]]'
      case 'slow':
        return ' [[mock:delay=30]] one two three four five six seven eight nine ten'
      default:
        return ''
    }
  },
}))
