/**
 * Fuzz, with the Server on top: a Server connected to the simulator through proxies that put
 * hostile frames before every real ARI event and AMI message (type-confused and truncated events,
 * events for channels that do not exist, random bytes, unknown ActionIDs…). Calls must behave as
 * without the garbage, nothing may escape as an exception, and the log must not be flooded.
 * Replay a failure with `FUZZ_SEED=<seed> npx vitest run test/fuzz-server.test.ts`.
 */

import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogFields, Logger } from '../src/logger.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { fuzzSeed, processFaults, Rng } from './support/fuzz.js';
import { HostileAmiProxy, HostileAriProxy } from './support/hostile-proxy.js';
import { testPortRange } from './support/test-ports.js';
import { RecordingTts } from './support/voice-harness.js';
import { within } from './support/within.js';

const seed = fuzzSeed();
console.info(`fuzz-server: FUZZ_SEED=${seed}`);
const why = `replay with FUZZ_SEED=${seed}`;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let process$: ReturnType<typeof processFaults>;
beforeAll(() => {
  process$ = processFaults();
});
afterAll(() => process$.uninstall());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(process$.faults, why).toEqual([]);
});

describe('Server under hostile ARI and AMI input', () => {
  it('answers, gathers and speaks on every call while garbage surrounds every event', async () => {
    const rng = new Rng(seed);
    const sim = await Simulator.start({ timeScale: 0.02 });
    cleanups.push(() => sim.close());
    const ariProxy = await HostileAriProxy.start({ host: '127.0.0.1', port: sim.ariPort }, rng, 15);
    cleanups.push(() => ariProxy.close());
    const amiProxy = await HostileAmiProxy.start({ host: '127.0.0.1', port: sim.amiPort }, rng, 8);
    cleanups.push(() => amiProxy.close());

    const lines: { level: string; message: string; fields: LogFields }[] = [];
    const at = (level: string) => (fields: LogFields, message?: string) => {
      lines.push({ level, message: message ?? '', fields });
    };
    const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    const tts = new RecordingTts();
    const { min: rtpPortMin } = testPortRange(50);
    const server = await Server.create({
      ...sim.connectionOptions(),
      ariPort: ariProxy.port,
      amiPort: amiProxy.port,
      appName: `fuzz-${seed.toString(36)}`,
      logger,
      tts,
      stt: false,
      ttsCacheDirectory: false,
      rtpPortMin,
      rtpPortMax: rtpPortMin + 49,
    });
    cleanups.push(() => server.close());

    const results: string[] = [];
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        const code = await ui.gather('Enter your code', { numDigits: 3 });
        await ui.say(`You entered ${code}`);
        results.push(code);
      },
    });

    const CALLS = 8;
    for (let round = 0; round < CALLS / 2; round++) {
      // Two calls at a time, each with its own code.
      await Promise.all(
        [0, 1].map(async (k) => {
          const code = `${round}${k}${(round + k) % 10}`;
          const phone = await sim.call({ from: 'alice', to: '1000' });
          await within(phone.waitForAudio(10), 10_000, `the prompt of call ${round}/${k} (${why})`);
          await phone.press(code);
          await within(phone.ended(), 10_000, `the end of call ${round}/${k} (${why})`);
          expect(results, why).toContain(code);
        }),
      );
    }

    expect(results.sort(), why).toEqual(
      Array.from(
        { length: CALLS },
        (_, i) => `${Math.floor(i / 2)}${i % 2}${(Math.floor(i / 2) + (i % 2)) % 10}`,
      ).sort(),
    );
    for (const code of results) expect(tts.said, why).toContain(`You entered ${code}`);
    expect(ariProxy.injected + amiProxy.injected, why).toBeGreaterThan(2000);
    expect(ariProxy.relayed, why).toBeGreaterThan(100);
    // The Server logs in to AMI with `Events: system`: what is relayed is the answers to its
    // actions and FullyBooted, each still behind hostile messages.
    expect(amiProxy.relayed, why).toBeGreaterThan(3);
    expect(amiProxy.injected, why).toBeGreaterThan(3 * 8);
    // Malformed input was logged, but throttled: thousands of frames, a handful of lines.
    expect(
      lines.some((l) => l.message === 'Dropped a malformed ARI event'),
      why,
    ).toBe(true);
    const noisy = lines.filter((l) => l.level === 'warn' || l.level === 'error');
    expect(noisy.length, `${why}: ${JSON.stringify(noisy.slice(0, 5))}`).toBeLessThan(60);
    expect(
      lines.filter((l) => l.level === 'error'),
      why,
    ).toEqual([]);
    // The phones saw their hang-ups; the Server finishes each call's bookkeeping right after.
    while (server.activeCalls > 0) await within(once(server, 'callEnded'), 5000, `callEnded (${why})`);
    expect(server.activeCalls).toBe(0);
  }, 60_000);
});
