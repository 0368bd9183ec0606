import { afterEach, describe, expect, it, vi } from 'vitest';
import { AsteramiskError, HangupError, InputTimeoutError } from '../src/errors.js';
import { decodeMulaw, encodeMulaw } from '../src/media/g711.js';
import { ScriptedSttEngine } from '../src/stt/scripted-stt-engine.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { deferred, nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

function tone(ms: number, hz = 300): Int16Array {
  return Int16Array.from({ length: ms * 8 }, (_, i) =>
    Math.round(9000 * Math.sin((2 * Math.PI * hz * i) / 8000)),
  );
}

describe('VoiceUI through the simulator', () => {
  it('runs a full IVR call: answer, say, gather 12#, menu (invalid then valid), record with a beep, hang up', async () => {
    h = await startVoiceHarness();
    const steps = deferred<{
      digits: string;
      choice: string;
      recording: { durationSeconds: number; digit?: string; size: number };
    }>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Welcome');
        const digits = await ui.gather('Enter your code');
        const choice = await ui.menu('Press 1 for sales or 2 for support', {
          '1': () => 'sales',
          '2': () => 'support',
        });
        await ui.say('Leave a message after the beep');
        const recording = await ui.record({ timeout: 0, maxLength: 10 });
        const data = await recording.data();
        steps.resolve({
          digits,
          choice,
          recording: {
            durationSeconds: recording.durationSeconds,
            digit: recording.digit,
            size: data.length,
          },
        });
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(10);
    await phone.press('12#');
    await phone.press('7');
    await phone.press('2');
    await phone.waitForMedia('sound:beep');
    await phone.speak(tone(200));
    await phone.press('#');
    const result = await steps.promise;
    expect(result.digits).toBe('12');
    expect(result.choice).toBe('support');
    expect(result.recording.digit).toBe('#');
    expect(result.recording.size).toBeGreaterThan(44 + 2 * 8 * 150);
    expect(h.tts.said).toEqual([
      'Welcome',
      'Enter your code',
      'Press 1 for sales or 2 for support',
      "That wasn't one of the choices. Please try again. Press 1 for sales or 2 for support",
      'Leave a message after the beep',
    ]);
    expect((await phone.ended()).cause).toBe(16);
  });

  it('say() sends the cached µ-law of the prompt, sample for sample, to the phone (twice, one encoding)', async () => {
    h = await startVoiceHarness({ msPerChar: 10 });
    const speakUlaw = vi.spyOn(CachedTts.prototype, 'speakUlaw');
    const speak = vi.spyOn(CachedTts.prototype, 'speak');
    const text = 'Your call matters';
    const said = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say(text);
        await ui.say(text);
        said.resolve();
        await ui.sleep(60);
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await said.promise;
    const expected = decodeMulaw(encodeMulaw(new OfflineTtsEngine({ msPerChar: 10 }).render(text)));
    // Each say ends on a whole 20 ms frame (its last one padded with silence): both, in full.
    await phone.waitForAudio((2 * Math.ceil(expected.length / 160) * 160) / 8);
    const heard = Buffer.from(phone.heard().audio.buffer);
    const prompt = Buffer.from(expected.buffer);
    const first = heard.indexOf(prompt);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first % 2).toBe(0);
    expect(heard.indexOf(prompt, first + prompt.length)).toBeGreaterThan(first);
    expect(h.tts.calls).toBe(1);
    // Played from µ-law: both says got the very same cached array, and no PCM copy was asked for.
    expect(speakUlaw).toHaveBeenCalledTimes(2);
    expect(speak).not.toHaveBeenCalled();
    const [once, twice] = await Promise.all(speakUlaw.mock.results.map((r) => r.value));
    expect(twice).toBe(once);
    await phone.hangup();
  });

  it('keeps digits pressed before gather and then skips its prompt', async () => {
    h = await startVoiceHarness();
    const pressed = deferred<void>();
    const result = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await pressed.promise;
        result.resolve(await ui.gather('Never heard', { numDigits: 2 }));
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.press('42');
    pressed.resolve();
    expect(await result.promise).toBe('42');
    expect(phone.heard().audio.length).toBe(0);
  });

  it('barge-in: a key stops the prompt within a frame and counts as input', async () => {
    h = await startVoiceHarness({ msPerChar: 80 });
    const result = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        result.resolve(
          await ui.gather('This is a long prompt that the caller will not wait for', { numDigits: 1 }),
        );
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(200);
    const heardBefore = phone.heard().audio.length;
    await phone.press('5');
    expect(await result.promise).toBe('5');
    const framesAfter = (phone.heard().audio.length - heardBefore) / 160;
    // The stop takes effect at the next 20 ms tick: at most the frame in flight and one more.
    expect(framesAfter).toBeLessThanOrEqual(2);
    expect(phone.heard().audio.length).toBeLessThan(56 * 80 * 8);
  });

  it('an unset channel variable is an error of that request, not a hang-up', async () => {
    h = await startVoiceHarness();
    const outcome = deferred<{ error: unknown; active: boolean; after: string }>();
    await h.server.registerExtension('1000', {
      voice: async (ui: VoiceUI) => {
        await ui.answer();
        const error = await ui.getVariable('NOT_SET_ANYWHERE').catch((e: unknown) => e);
        await ui.setVariable('SET_NOW', 'yes');
        outcome.resolve({ error, active: ui.active, after: await ui.getVariable('SET_NOW') });
      },
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    const { error, active, after } = await outcome.promise;
    expect(error).toBeInstanceOf(AsteramiskError);
    expect(error).not.toBeInstanceOf(HangupError);
    expect(active).toBe(true);
    expect(after).toBe('yes');
  });

  it('returns an empty string when gather times out', async () => {
    h = await startVoiceHarness();
    const result = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => result.resolve(await ui.gather('Anything?', { timeout: 0.1 })),
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    expect(await result.promise).toBe('');
  });

  it('goes back to the parent menu on * inside a menu callback', async () => {
    h = await startVoiceHarness();
    const result = deferred<string>();
    let mainPrompts = 0;
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        const answer = await ui.menu('Main menu', {
          '1': async () => {
            mainPrompts++;
            return ui.menu('Submenu, star to go back', { '1': () => 'sub-one' });
          },
          '2': () => 'main-two',
        });
        result.resolve(answer);
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.press('1');
    await phone.press('*');
    await phone.press('2');
    expect(await result.promise).toBe('main-two');
    expect(mainPrompts).toBe(1);
    expect(h.tts.said).toContain('Submenu, star to go back');
  });

  it('raises InputTimeoutError after MAX_NO_INPUT_ATTEMPTS empty inputs', async () => {
    h = await startVoiceHarness({ server: { maxNoInputAttempts: 2 } });
    const error = deferred<unknown>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        try {
          await ui.menu('Press 1', { '1': () => 'x' }, { timeout: 0.05 });
        } catch (e) {
          error.resolve(e);
        }
      },
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    expect(await error.promise).toBeInstanceOf(InputTimeoutError);
    expect(h.tts.said).toEqual(['Press 1', "I didn't receive a selection. Please try again. Press 1"]);
  });

  it('rejects with HangupError when the caller hangs up during gather, and releases the call', async () => {
    h = await startVoiceHarness();
    const error = deferred<unknown>();
    const started = deferred<VoiceUI>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        started.resolve(ui);
        try {
          await ui.gather('Enter something', { timeout: 30 });
        } catch (e) {
          error.resolve(e);
          throw e;
        }
      },
    });
    const ended = nextServerEvent(h.server, 'callEnded');
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await started.promise;
    await phone.waitForAudio(20);
    await phone.hangup();
    expect(await error.promise).toBeInstanceOf(HangupError);
    const [ui] = await ended;
    expect(ui.active).toBe(false);
    expect(h.server.activeCalls).toBe(0);
    expect(h.sim.pbx.channels.size).toBe(0);
    expect(h.sim.pbx.bridges.size).toBe(0);
  });

  it('record rejects with RECORDING_FAILED when Asterisk fails the recording (caller in a bridge)', async () => {
    h = await startVoiceHarness();
    const bridged = deferred<void>();
    const error = deferred<unknown>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await bridged.promise;
        try {
          await ui.record({ timeout: 0, maxLength: 5 });
        } catch (e) {
          error.resolve(e);
        }
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    // Someone else's bridge: Asterisk 22 accepts the record request, then sends RecordingFailed.
    const bridge = h.sim.pbx.createBridge({ type: 'mixing' });
    h.sim.pbx.addToBridge(bridge, h.sim.pbx.getChannel(phone.channelId));
    bridged.resolve();
    const e = await error.promise;
    expect(e).toBeInstanceOf(AsteramiskError);
    expect(e).toMatchObject({ code: 'RECORDING_FAILED' });
    expect((e as Error).message).toContain('Cannot record channel while in bridge');
    expect(h.sim.pbx.storedRecordings.size).toBe(0);
  });

  it('prompt: speech during the question interrupts it and is transcribed', async () => {
    const stt = new ScriptedSttEngine(['my name is alice']);
    h = await startVoiceHarness({ stt, msPerChar: 60 });
    const answer = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) =>
        answer.resolve(await ui.prompt('Please tell me your full name after the tone', { timeout: 5 })),
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(100);
    await phone.speak(tone(600));
    expect(await answer.promise).toBe('my name is alice');
    expect(stt.calls).toHaveLength(1);
    // The question (44 characters at 60 ms) was cut short by the caller speaking.
    expect(phone.heard().audio.length).toBeLessThan(44 * 60 * 8);
  });

  it('prompt: returns an empty string when the caller says nothing', async () => {
    const stt = new ScriptedSttEngine(['unused']);
    h = await startVoiceHarness({ stt });
    const answer = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => answer.resolve(await ui.prompt('Say something', { timeout: 0.1 })),
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    expect(await answer.promise).toBe('');
    expect(stt.calls).toHaveLength(0);
  });

  it('a # typed right after a complete fixed-length code is not taken as the next answer', async () => {
    h = await startVoiceHarness();
    const result = deferred<[string, string]>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        const code = await ui.gather('Code', { numDigits: 2 });
        const next = await ui.gather('Next', { numDigits: 1, finishOnKey: '' });
        result.resolve([code, next]);
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.press('12#');
    await phone.press('5');
    expect(await result.promise).toEqual(['12', '5']);
  });

  it('bridges two calls: each hears the other, and both keep their media for say', async () => {
    h = await startVoiceHarness();
    const first = deferred<VoiceUI>();
    const joined = deferred<void>();
    const release = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Hold on');
        first.resolve(ui);
        await release.promise;
      },
    });
    await h.server.registerExtension('2000', {
      voice: async (ui) => {
        await ui.answer();
        const other = await first.promise;
        await ui.bridge(other);
        await ui.say('You are connected');
        joined.resolve();
        await release.promise;
        await ui.unbridge(other);
      },
    });
    const alice = await h.sim.call({ from: 'alice', to: '1000' });
    await first.promise;
    const bob = await h.sim.call({ from: 'bob', to: '2000' });
    await joined.promise;
    const aliceHeard = alice.heardMs;
    await bob.speak(tone(200));
    await alice.waitForAudio(aliceHeard + 200);
    expect(alice.heardMs).toBeGreaterThanOrEqual(aliceHeard + 200);
    const bothEnded = new Promise<void>((resolve) => {
      let n = 0;
      h?.server.on('callEnded', () => {
        if (++n === 2) resolve();
      });
    });
    release.resolve();
    await bothEnded;
    expect(h.sim.pbx.bridges.size).toBe(0);
    expect(h.sim.pbx.channels.size).toBe(0);
  });

  it('inputStream yields one transcript per utterance; on(dtmf) sees every key; play takes WAV buffers', async () => {
    const stt = new ScriptedSttEngine(['first thing', 'second thing']);
    h = await startVoiceHarness({ stt });
    const heard: string[] = [];
    const keys: string[] = [];
    const done = deferred<void>();
    const { encodeWav } = await import('../src/media/wav.js');
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        ui.on('dtmf', (d) => keys.push(d));
        await ui.play(encodeWav(tone(100)));
        const { writeFile, mkdtemp } = await import('node:fs/promises');
        const { join } = await import('node:path');
        const { tmpdir } = await import('node:os');
        const file = join(await mkdtemp(join(tmpdir(), 'wav-')), 'prompt.wav');
        await writeFile(file, encodeWav(tone(60)));
        await ui.play(file);
        for await (const text of ui.inputStream()) {
          heard.push(text);
          if (heard.length === 2) break;
        }
        done.resolve();
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(160);
    await phone.press('7');
    await phone.speak(tone(300));
    await phone.speak(new Int16Array(8 * 900));
    await phone.speak(tone(300));
    await done.promise;
    expect(heard).toEqual(['first thing', 'second thing']);
    expect(keys).toEqual(['7']);
  });
});
