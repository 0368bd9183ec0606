import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Real sockets on loopback: files run in parallel forks, each test file owns its simulator.
    pool: 'forks',
    // Vitest's default in run mode is one fork fewer than the cores: a single fork on the 2-core CI
    // machine, where the suite then ran one file at a time (298 s, the whole CI 870–920 s). The
    // files wait on sockets and timers most of the time, so two forks share two cores well (164 s).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // Tests against a real Asterisk (ASTERISK_HOST) share that one PBX, its channels and its
    // restarts: with one named, the files run one at a time.
    fileParallelism: !process.env.ASTERISK_HOST,
    reporters: ['default', './test/support/plain-summary-reporter.ts'],
  },
});
