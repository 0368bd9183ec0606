import { afterEach, describe, expect, it } from 'vitest';
import { HangupError } from '../src/errors.js';
import type { Runtime } from '../src/runtime.js';
import { ScriptedSttEngine } from '../src/stt/scripted-stt-engine.js';
import { RecordingHangupError } from '../src/ui/verbs/record.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { resourceCounts } from './support/resource-counts.js';
import { deferred, nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Nothing of a call may remain once it ended: PBX channels and bridges, routes, RTP ports. */
function expectNoLeftovers(harness: VoiceHarness): void {
  expect(harness.server.activeCalls).toBe(0);
  expect(harness.sim.pbx.channels.size).toBe(0);
  expect(harness.sim.pbx.bridges.size).toBe(0);
  expect(harness.sim.pbx.playbacks.size).toBe(0);
  expect(harness.sim.pbx.liveRecordings.size).toBe(0);
}

type Verb = 'say' | 'gather' | 'prompt' | 'record' | 'play' | 'sleep';

async function hangupDuring(verb: Verb): Promise<unknown> {
  const harness = await startVoiceHarness({ msPerChar: 200, stt: new ScriptedSttEngine(['never used']) });
  h = harness;
  const error = deferred<unknown>();
  const busy = deferred<void>();
  await harness.server.registerExtension('1000', {
    voice: async (ui: VoiceUI) => {
      await ui.answer();
      try {
        const work =
          verb === 'say'
            ? ui.say('This sentence takes a long while to say')
            : verb === 'gather'
              ? ui.gather('Enter your account number', { timeout: 30 })
              : verb === 'prompt'
                ? ui.prompt('What is your name', { timeout: 30 })
                : verb === 'record'
                  ? ui.record({ timeout: 0 })
                  : verb === 'play'
                    ? ui.play('sound:demo-congrats')
                    : ui.sleep(30);
        busy.resolve();
        await work;
      } catch (e) {
        error.resolve(e);
        throw e;
      }
    },
  });
  const ended = nextServerEvent(harness.server, 'callEnded');
  const phone = await harness.sim.call({ from: 'alice', to: '1000' });
  await busy.promise;
  if (verb === 'record') await phone.waitForMedia('sound:beep');
  else if (verb === 'play') await phone.waitForMedia('sound:demo-congrats');
  else if (verb !== 'sleep') await phone.waitForAudio(40);
  await phone.hangup();
  const caught = await error.promise;
  await ended;
  expectNoLeftovers(harness);
  return caught;
}

describe('a caller hanging up mid-verb', () => {
  for (const verb of ['say', 'gather', 'prompt', 'play', 'sleep'] as const) {
    it(`rejects ${verb} with HangupError and leaves nothing behind`, async () => {
      expect(await hangupDuring(verb)).toBeInstanceOf(HangupError);
    });
  }

  it('rejects record with a HangupError that carries the partial recording', async () => {
    const error = await hangupDuring('record');
    expect(error).toBeInstanceOf(RecordingHangupError);
    expect((error as RecordingHangupError).recording.name).toMatch(/^asteramisk-/);
  });
});

describe('call isolation and limits', () => {
  it('a throwing handler gets an apology and a hangup; a parallel call is untouched', async () => {
    h = await startVoiceHarness();
    const goodDone = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        throw new Error('handler bug');
      },
    });
    await h.server.registerExtension('2000', {
      voice: async (ui) => {
        await ui.answer();
        goodDone.resolve(await ui.gather('Enter', { numDigits: 1 }));
      },
    });
    const good = await h.sim.call({ from: 'bob', to: '2000' });
    const bad = await h.sim.call({ from: 'alice', to: '1000' });
    expect((await bad.ended()).cause).toBe(16);
    expect(h.tts.said).toContain('Sorry, something went wrong. Goodbye.');
    expect(good.hungUp).toBe(false);
    await good.press('3');
    expect(await goodDone.promise).toBe('3');
  });

  it('over MAX_CONCURRENT_CALLS, a call continues in the dialplan', async () => {
    h = await startVoiceHarness({ server: { maxConcurrentCalls: 1 } });
    const release = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await release.promise;
      },
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    const declined = nextServerEvent(h.server, 'callDeclined');
    const second = await h.sim.call({ from: 'bob', to: '1000' });
    const [info] = await declined;
    expect(info.reason).toMatch(/MAX_CONCURRENT_CALLS/);
    // Nothing follows this server's step in the dialplan, so Asterisk hangs up the call.
    expect((await second.ended()).cause).toBe(16);
    release.resolve();
  });

  it('200 calls leave no leftovers: routes, channels, bridges, listeners, handles', async () => {
    h = await startVoiceHarness();
    const harness = h;
    await harness.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Hi');
        await ui.gather('Key', { numDigits: 1, timeout: 2 });
      },
    });
    const baseline = resourceCounts();
    const runtime = (harness.server as unknown as { runtime: Runtime }).runtime;
    const ari = runtime.connection.ari;
    const listenersBefore =
      ari.listenerCount('StasisStart') + ari.listenerCount('StasisEnd') + ari.listenerCount('event');
    for (let batch = 0; batch < 10; batch++) {
      const calls = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const phone = await harness.sim.call({ from: i % 2 ? 'alice' : 'bob', to: '1000' });
          await phone.waitForAudio(10);
          if (i % 3 === 0) await phone.hangup();
          else await phone.press('1');
          return phone.ended();
        }),
      );
      expect(calls).toHaveLength(20);
      while (harness.server.activeCalls > 0) await nextServerEvent(harness.server, 'callEnded');
    }
    expectNoLeftovers(harness);
    const listenersAfter =
      ari.listenerCount('StasisStart') + ari.listenerCount('StasisEnd') + ari.listenerCount('event');
    expect(listenersAfter).toBe(listenersBefore);
    expect(runtime.router.size).toEqual({ channels: 0, bridges: 0 });
    expect(runtime.calls.size).toBe(0);
    // No RTP socket and no timer outlives its call; HTTP keep-alive connections stay within the
    // ARI pool's bound (16, both ends of each live in this process).
    const after = resourceCounts();
    const shown = JSON.stringify({ baseline, after });
    expect(after.UDPWrap ?? 0, shown).toBe(baseline.UDPWrap ?? 0);
    expect(after.Timeout ?? 0, shown).toBeLessThanOrEqual(baseline.Timeout ?? 0);
    expect(after.TCPSocketWrap ?? 0, shown).toBeLessThanOrEqual((baseline.TCPSocketWrap ?? 0) + 2 * 16);
  }, 60_000);
});
