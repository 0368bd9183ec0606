import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NO_TTS_WARNING } from '../src/call-services.js';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { APOLOGY_SOUND, Server, type ServerOptions } from '../src/server.js';
import { createSttEngine } from '../src/stt/create-stt-engine.js';
import { detectPocketsphinx, PocketsphinxSttEngine } from '../src/stt/pocketsphinx-stt-engine.js';
import { detectEspeak, EspeakTtsEngine } from '../src/tts/espeak-tts-engine.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { capturingLogger, type LogLine } from './support/capturing-logger.js';
import { testPortRange } from './support/test-ports.js';
import { deferred } from './support/voice-harness.js';

const espeak = await detectEspeak();
const pocketsphinx = await detectPocketsphinx();
if (!espeak)
  console.warn('espeak-ng is not installed: the local speech tests are skipped (apt-get install espeak-ng)');
if (!pocketsphinx) {
  console.warn(
    'pocketsphinx is not installed: the local STT tests are skipped (apt-get install pocketsphinx pocketsphinx-en-us)',
  );
}

function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A simulator and a Server with only the speech options given (no cloud credentials in the environment). */
async function start(
  options: Partial<ServerOptions> = {},
): Promise<{ sim: Simulator; server: Server; lines: LogLine[] }> {
  vi.stubEnv('OPENAI_API_KEY', '');
  vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
  vi.stubEnv('SYSTEM_VOICE', '');
  const sim = await Simulator.start({ timeScale: 0.02 });
  cleanups.push(() => sim.close());
  const lines: LogLine[] = [];
  const { min: rtpPortMin } = testPortRange(100);
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: `speech-${Math.random().toString(36).slice(2, 8)}`,
    logger: capturingLogger(lines),
    ttsCacheDirectory: false,
    rtpPortMin,
    rtpPortMax: rtpPortMin + 99,
    ...options,
  });
  cleanups.push(() => server.close());
  return { sim, server, lines };
}

const warnings = (lines: LogLine[]) => lines.filter((l) => l.level === 'warn' && l.msg === NO_TTS_WARNING);

describe('speech with no cloud account, and no engine at all', () => {
  it('no TTS engine: one warning naming the fix, say() fails fast with ConfigError, the caller hears a sound', async () => {
    // A PATH without espeak-ng: what a machine without the package looks like.
    const empty = await mkdtemp(join(tmpdir(), 'asteramisk-empty-path-'));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    const path = process.env.PATH ?? '';
    vi.stubEnv('PATH', empty);
    const { sim, server, lines } = await start({ stt: false });
    vi.stubEnv('PATH', path);
    expect(warnings(lines)).toHaveLength(1);
    expect(NO_TTS_WARNING).toMatch(/install espeak-ng/);
    expect(NO_TTS_WARNING).toMatch(/OPENAI_API_KEY/);
    expect(NO_TTS_WARNING).toMatch(/GOOGLE_APPLICATION_CREDENTIALS/);
    expect(NO_TTS_WARNING).toMatch(/pass `tts`/);

    const sayError = deferred<unknown>();
    await server.registerExtension('2000', {
      voice: async (ui: VoiceUI) => {
        await ui.answer();
        const started = performance.now();
        const error = await ui.say('Welcome to Example Shop.').catch((e: unknown) => e);
        sayError.resolve({ error, ms: performance.now() - started });
        throw error;
      },
    });
    const phone = await sim.call({ from: 'alice', to: '2000' });
    const { error, ms } = (await sayError.promise) as { error: unknown; ms: number };
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('tts');
    expect((error as Error).message).toContain('install espeak-ng');
    expect(ms).toBeLessThan(50); // fails fast: nothing was attempted
    expect(await phone.waitForMedia(APOLOGY_SOUND)).toBe('sound:an-error-has-occurred');
    expect((await phone.ended()).cause).toBe(16);
    expect(phone.heard().media).toEqual(['sound:an-error-has-occurred']);
    expect(phone.heard().audio.length).toBe(0);
    expect(warnings(lines)).toHaveLength(1); // still one: not repeated per call
  });

  it('tts: false is a deliberate choice: no warning', async () => {
    const { lines } = await start({ tts: false, stt: false });
    expect(warnings(lines)).toHaveLength(0);
  });

  it('a TTS engine that fails: the apology falls back to the built-in sound', async () => {
    const { sim, server, lines } = await start({
      tts: new EspeakTtsEngine({ command: 'no-such-espeak-ng-binary' }),
      stt: false,
    });
    expect(warnings(lines)).toHaveLength(0);
    const failure = deferred<unknown>();
    await server.registerExtension('2000', {
      voice: async (ui: VoiceUI) => {
        await ui.answer();
        await ui.say('Hello').catch((e: unknown) => {
          failure.resolve(e);
          throw e;
        });
      },
    });
    const phone = await sim.call({ from: 'alice', to: '2000' });
    expect(await failure.promise).toBeInstanceOf(SpeechEngineError);
    expect(await phone.waitForMedia(APOLOGY_SOUND)).toBe('sound:an-error-has-occurred');
    expect((await phone.ended()).cause).toBe(16);
    expect(phone.heard().media).toEqual(['sound:an-error-has-occurred']);
  });
});

describe.skipIf(!espeak)('espeak-ng is the default TTS with no cloud credentials', () => {
  it('a handler that only calls say() is heard as real speech, and no warning is logged', async () => {
    const { sim, server, lines } = await start({ stt: false });
    expect(warnings(lines)).toHaveLength(0);
    const said = deferred<void>();
    await server.registerExtension('2000', {
      voice: async (ui: VoiceUI) => {
        await ui.answer();
        await ui.say('Thank you for calling. Goodbye.');
        said.resolve();
      },
    });
    const phone = await sim.call({ from: 'alice', to: '2000' });
    await said.promise;
    await phone.ended();
    const audio = phone.heard().audio;
    // About two seconds of speech at 160 words per minute, streamed over RTP.
    expect(audio.length / 8000).toBeGreaterThan(1);
    expect(audio.length / 8000).toBeLessThan(5);
    expect(rms(audio)).toBeGreaterThan(800);
    expect(phone.heard().media).toEqual([]);
  });

  it('a failing handler is apologised for in espeak speech, not with the sound', async () => {
    const { sim, server } = await start({ stt: false, apology: 'Sorry, goodbye.' });
    await server.registerExtension('2000', {
      voice: async (ui: VoiceUI) => {
        await ui.answer();
        throw new Error('database down');
      },
    });
    const phone = await sim.call({ from: 'alice', to: '2000' });
    await phone.ended();
    expect(phone.heard().media).toEqual([]);
    expect(rms(phone.heard().audio)).toBeGreaterThan(800);
    expect(phone.heard().audio.length / 8000).toBeGreaterThan(0.5);
  });
});

describe.skipIf(!espeak || !pocketsphinx)('pocketsphinx recognises yes and no spoken by the caller', () => {
  for (const word of ['yes', 'no']) {
    it(`espeak-ng says "${word}" → the caller's RTP → pocketsphinx → prompt() returns "${word}"`, async () => {
      const { sim, server } = await start({ stt: 'pocketsphinx' });
      const answer = deferred<string>();
      await server.registerExtension('2000', {
        voice: async (ui: VoiceUI) => {
          await ui.answer();
          answer.resolve(await ui.prompt('Do you want to continue?', { hints: ['yes', 'no'], timeout: 5 }));
        },
      });
      const phone = await sim.call({ from: 'alice', to: '2000' });
      await phone.waitForAudio(100); // the question is being asked: the prompt listens
      const spoken = await new EspeakTtsEngine().synthesize(word);
      const withPause = new Int16Array(spoken.length + 8000); // then a second of silence
      withPause.set(spoken);
      await phone.speak(withPause);
      expect(await answer.promise).toBe(word);
    });
  }

  for (const [word, expected] of [
    ['yes', true],
    ['no', false],
  ] as const) {
    it(`espeak-ng says "${word}" → the caller's RTP → pocketsphinx → askYesNo({ speech: true }) returns ${expected}`, async () => {
      const { sim, server } = await start({ stt: 'pocketsphinx' });
      const answer = deferred<boolean>();
      await server.registerExtension('2000', {
        voice: async (ui: VoiceUI) => {
          await ui.answer();
          answer.resolve(await ui.askYesNo('Do you want to continue?', { speech: true, timeout: 5 }));
        },
      });
      const phone = await sim.call({ from: 'alice', to: '2000' });
      await phone.waitForAudio(100); // the question is being asked: speech interrupts it
      const spoken = await new EspeakTtsEngine().synthesize(word);
      const withPause = new Int16Array(spoken.length + 8000);
      withPause.set(spoken);
      await phone.speak(withPause);
      expect(await answer.promise).toBe(expected);
    });
  }

  it('without hints it recognises nothing rather than guessing', async () => {
    const engine = createSttEngine({ engine: 'pocketsphinx' });
    expect(engine).toBeInstanceOf(PocketsphinxSttEngine);
    cleanups.push(async () => engine.close?.());
    const pcm = await new EspeakTtsEngine().synthesize('yes');
    expect(await engine.transcribe(pcm)).toBe('');
    expect(await engine.transcribe(pcm, { hints: ['yes', 'no'] })).toBe('yes');
    expect(await engine.transcribe(pcm, { hints: ['Yes!', 'No.', 'xyzzyplugh'] })).toBe('yes');
  });
});
