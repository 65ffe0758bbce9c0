import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files start real servers on ephemeral ports; two cores is all CI has.
    maxWorkers: 2,
    pool: 'forks',
  },
})
