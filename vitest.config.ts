import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Two cores on CI: keep workers to what the machine has.
    maxWorkers: 2,
    testTimeout: 30_000,
  },
});
