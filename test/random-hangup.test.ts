import { afterEach, describe, expect, it } from 'vitest';
import { HangupError } from '../src/errors.js';
import type { Runtime } from '../src/runtime.js';
import { FLOW_NUMBER, flowHandler, randomHangupRun, TRANSFER_TARGET } from './support/random-hangups.js';
import { resourceCounts } from './support/resource-counts.js';
import { nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('a hang-up at any await point', () => {
  // bench/random-hangup.ts runs the same with 10,000 calls.
  it('600 calls hung up at random requests and times leave nothing behind', async () => {
    h = await startVoiceHarness();
    const harness = h;
    harness.sim.addExtension(TRANSFER_TARGET.context, TRANSFER_TARGET.extension, 1, 'Answer');
    harness.sim.addExtension(TRANSFER_TARGET.context, TRANSFER_TARGET.extension, 2, 'Hangup');
    const failures: unknown[] = [];
    harness.server.on('callEnded', (_ui, outcome) => {
      if (outcome.error && !(outcome.error instanceof HangupError)) failures.push(outcome.error);
    });
    await harness.server.registerExtension(FLOW_NUMBER, { voice: flowHandler });
    const runtime = (harness.server as unknown as { runtime: Runtime }).runtime;
    const ari = runtime.connection.ari;
    const listeners = () =>
      ari.listenerCount('StasisStart') +
      ari.listenerCount('StasisEnd') +
      ari.listenerCount('ChannelDestroyed') +
      ari.listenerCount('event') +
      ari.listenerCount('channelLost');
    const listenersBefore = listeners();
    const baseline = resourceCounts();
    const seed = Number(process.env.RANDOM_HANGUP_SEED ?? Date.now() % 1_000_000);
    const run = await randomHangupRun({
      sim: harness.sim,
      server: harness.server,
      calls: 400,
      concurrency: 40,
      seed,
    });
    while (harness.server.activeCalls > 0) await nextServerEvent(harness.server, 'callEnded');
    const shown = `seed ${seed}: ${JSON.stringify(run)}`;
    // Hang-ups really landed inside the media set-up and the verbs, not only between calls.
    expect(run.moments['at-request'], shown).toBeGreaterThan(100);
    expect(Object.keys(run.interrupted).length, shown).toBeGreaterThanOrEqual(5);
    expect(failures, shown).toEqual([]);
    expect(harness.sim.pbx.channels.size, shown).toBe(0);
    expect(harness.sim.pbx.bridges.size, shown).toBe(0);
    expect(harness.sim.pbx.playbacks.size, shown).toBe(0);
    expect(harness.sim.pbx.liveRecordings.size, shown).toBe(0);
    expect(runtime.router.size, shown).toEqual({ channels: 0, bridges: 0 });
    expect(runtime.calls.size, shown).toBe(0);
    expect(listeners(), shown).toBe(listenersBefore);
    const after = resourceCounts();
    const counts = `${shown} ${JSON.stringify({ baseline, after })}`;
    expect(after.UDPWrap ?? 0, counts).toBe(baseline.UDPWrap ?? 0);
    expect(after.Timeout ?? 0, counts).toBeLessThanOrEqual(baseline.Timeout ?? 0);
  }, 120_000);
});
