import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs the network guard: a test that reaches past 127.0.0.1 fails. Tests talk to the emulator only.
    setupFiles: ['@outflow/testing/vitest-setup'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
