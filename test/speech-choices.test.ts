import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { tone as makeTone } from '../src/media/tone.js';
import { ScriptedSttEngine } from '../src/stt/scripted-stt-engine.js';
import { deferred, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

/**
 * Choices answered by voice (`speech: true`, Twilio's `input="dtmf speech"`): the caller's speech
 * goes over RTP through the simulator, the scripted STT engine stands in for recognition (the
 * real-speech version, espeak-ng into pocketsphinx, is in speech-defaults.test.ts).
 */
let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** `ms` of a 300 Hz tone at about -9 dBFS: speech, as far as the speech detector is concerned. */
const tone = (ms: number) => makeTone(300, ms, { amplitude: 0.3 });

describe('choices by voice', () => {
  it('askYesNo: "yes please" is yes; the question offers both ways and the engine expects yes/no', async () => {
    const stt = new ScriptedSttEngine(['Yes please.']);
    h = await startVoiceHarness({ stt, msPerChar: 20 });
    const answer = deferred<boolean>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => answer.resolve(await ui.askYesNo('Shall I book it?', { speech: true })),
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(100);
    await phone.speak(tone(500));
    expect(await answer.promise).toBe(true);
    expect(stt.calls[0]?.options.hints).toEqual(['yes', 'no']);
    expect(h.tts.said[0]).toBe('Shall I book it? Say yes or no, or press 1 for yes and 2 for no.');
  });

  it('askYesNo: a key still answers when speech is on', async () => {
    const stt = new ScriptedSttEngine(['unused']);
    h = await startVoiceHarness({ stt });
    const answer = deferred<boolean>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => answer.resolve(await ui.askYesNo('Shall I book it?', { speech: true })),
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(20);
    await phone.press('2');
    expect(await answer.promise).toBe(false);
    expect(stt.calls).toHaveLength(0);
  });

  it('choose: the longest label said wins ("extra large" over "large"); unclear speech asks again', async () => {
    const stt = new ScriptedSttEngine(['hmm', 'an extra large one']);
    h = await startVoiceHarness({ stt });
    const answer = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) =>
        answer.resolve(await ui.choose('Which size?', ['large', 'extra large', 'small'], { speech: true })),
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(20);
    await phone.speak(tone(400));
    await phone.waitForAudio(phone.heardMs + 20); // asked again, after "That wasn't one of the choices"
    await phone.speak(tone(400));
    expect(await answer.promise).toBe('extra large');
    expect(h.tts.said[0]).toContain('For extra large, say extra large or press 2.');
    expect(h.tts.said[1]).toMatch(/^That wasn't one of the choices/);
    expect(stt.calls[0]?.options.hints).toEqual(
      expect.arrayContaining(['large', 'extra large', 'one', 'two']),
    );
  });

  it('menu: the key said as a word ("two") runs its action', async () => {
    const stt = new ScriptedSttEngine(['Two.']);
    h = await startVoiceHarness({ stt });
    const answer = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) =>
        answer.resolve(
          await ui.menu(
            'For sales press 1, for support press 2.',
            { '1': () => 'sales', '2': () => 'support' },
            {
              speech: true,
            },
          ),
        ),
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(20);
    await phone.speak(tone(300));
    expect(await answer.promise).toBe('support');
  });

  it('the live transcript shows what was heard', async () => {
    const stt = new ScriptedSttEngine(['no']);
    h = await startVoiceHarness({ stt });
    const heard: string[] = [];
    const answer = deferred<boolean>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        ui.on('activity', (a) => {
          if (a.type === 'heard') heard.push(a.text);
        });
        answer.resolve(await ui.askYesNo('Continue?', { speech: true }));
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(20);
    await phone.speak(tone(300));
    expect(await answer.promise).toBe(false);
    expect(heard).toEqual(['no']);
  });

  it('speech without an STT engine is a ConfigError, before the caller is asked', async () => {
    h = await startVoiceHarness();
    const failure = deferred<unknown>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.askYesNo('Continue?', { speech: true }).catch(failure.resolve);
      },
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    expect(await failure.promise).toBeInstanceOf(ConfigError);
    expect(h.tts.said).toEqual([]);
  });
});

describe('choices in a chat are read as words too', () => {
  it('choose: replying with the label picks it', async () => {
    h = await startVoiceHarness();
    const answer = deferred<string>();
    await h.server.registerExtension('1000', {
      text: async (ui) => answer.resolve(await ui.choose('What size?', ['small', 'medium', 'large'])),
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'hi' });
    await h.sim.nextSentText((t) => t.body.startsWith('What size?'));
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'Medium, please' });
    expect(await answer.promise).toBe('medium');
  });
});
