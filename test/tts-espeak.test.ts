import { describe, expect, it } from 'vitest';
import { SpeechEngineError } from '../src/errors.js';
import { createTtsEngine } from '../src/tts/create-tts-engine.js';
import { detectEspeak, EspeakTtsEngine, isEspeakVoice, parseVoices } from '../src/tts/espeak-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';

const espeak = await detectEspeak();
if (!espeak)
  console.warn('espeak-ng is not installed: the espeak TTS tests are skipped (apt-get install espeak-ng)');

/** Root mean square of the samples. */
function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}

/** Share of 20 ms frames whose RMS is above `threshold`. */
function voicedShare(pcm: Int16Array, threshold = 300): number {
  let voiced = 0;
  let frames = 0;
  for (let i = 0; i + 160 <= pcm.length; i += 160) {
    frames++;
    if (rms(pcm.subarray(i, i + 160)) > threshold) voiced++;
  }
  return voiced / Math.max(1, frames);
}

describe('espeak voice names', () => {
  it('parses the voice table and tells espeak voices from cloud voices', () => {
    const voices = parseVoices(
      'Pty Language       Age/Gender VoiceName          File                 Other Languages\n' +
        ' 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n' +
        ' 5  fr-fr           --/M      French             roa/fr               (fr 5)\n',
    );
    expect(voices.has('en-us')).toBe(true);
    expect(voices.has('fr')).toBe(true);
    expect(isEspeakVoice('en-us', voices)).toBe(true);
    expect(isEspeakVoice('en-us+f3', voices)).toBe(true);
    expect(isEspeakVoice('alloy', voices)).toBe(false);
    expect(isEspeakVoice('en-US-Neural2-J', voices)).toBe(false);
    expect(isEspeakVoice('en-US-Neural2-J')).toBe(false);
    expect(isEspeakVoice('-v')).toBe(false);
  });
});

describe.skipIf(!espeak)('EspeakTtsEngine (real espeak-ng)', () => {
  it('detects the installation once, with its version and voices', async () => {
    expect(espeak?.version).toMatch(/^\d+\.\d+/);
    expect(espeak?.voices.has('en-us')).toBe(true);
    expect(await detectEspeak()).toBe(espeak);
    expect(await detectEspeak('no-such-espeak-ng-binary')).toBeUndefined();
  });

  it('synthesizes real speech: 8 kHz PCM, not silent, as long as the text', async () => {
    const engine = new EspeakTtsEngine({ version: espeak!.version });
    const short = await engine.synthesize('Yes.');
    const long = await engine.synthesize(
      'Thank you for calling. For sales, press one. For support, press two.',
    );
    // At 160 words per minute: "Yes." lasts a fraction of a second, 13 words about 5 seconds.
    expect(short.length / 8000).toBeGreaterThan(0.2);
    expect(short.length / 8000).toBeLessThan(1.5);
    expect(long.length / 8000).toBeGreaterThan(3);
    expect(long.length / 8000).toBeLessThan(9);
    expect(rms(long)).toBeGreaterThan(1000);
    expect(voicedShare(long)).toBeGreaterThan(0.5);
    // Band-limited to the telephone band: no energy folded at Nyquist (alternating samples).
    let hf = 0;
    for (let i = 1; i < long.length; i++) hf += Math.abs(long[i]! - long[i - 1]!);
    expect(hf / long.length).toBeLessThan(rms(long));
  });

  it('speaks text that looks like options, and other voices and rates', async () => {
    const engine = new EspeakTtsEngine();
    const dashed = await engine.synthesize('-v fr --stdout "; rm -rf /');
    expect(voicedShare(dashed)).toBeGreaterThan(0.3);
    const fast = await new EspeakTtsEngine({ rate: 300 }).synthesize('one two three four five six');
    const slow = await new EspeakTtsEngine({ rate: 100 }).synthesize('one two three four five six');
    expect(slow.length).toBeGreaterThan(fast.length * 1.8);
    const british = await engine.synthesize('Hello', { voice: 'en-gb' });
    expect(rms(british)).toBeGreaterThan(1000);
    expect(await engine.synthesize('  \n ')).toEqual(new Int16Array(0));
  });

  it('is cached: the second request for a text does not run espeak-ng', async () => {
    const cache = new CachedTts(new EspeakTtsEngine({ version: espeak!.version }));
    const first = await cache.speak('Your balance is twelve dollars.');
    const second = await cache.speak('Your balance is twelve dollars.');
    expect(second).toEqual(first);
    expect(cache.stats()).toMatchObject({ requests: 2, hits: 1, misses: 1, synthCalls: 1 });
    // A different voice or rate is another key.
    const other = new CachedTts(new EspeakTtsEngine({ rate: 200, version: espeak!.version }));
    expect(other.cacheKey('Hi')).not.toBe(cache.cacheKey('Hi'));
    expect(cache.cacheKey('Hi', { voice: 'en-gb' })).not.toBe(cache.cacheKey('Hi'));
  });

  it('bounds concurrency: every queued synthesis completes', async () => {
    const engine = new EspeakTtsEngine({ concurrency: 1 });
    const texts = ['one', 'two', 'three', 'four', 'five', 'six'];
    const all = await Promise.all(texts.map((t) => engine.synthesize(t)));
    for (const pcm of all) expect(rms(pcm)).toBeGreaterThan(500);
  });

  it('fails with SpeechEngineError: unknown voice, missing program, time limit, closed', async () => {
    const engine = new EspeakTtsEngine();
    const badVoice = await engine.synthesize('hi', { voice: 'zz-nowhere' }).catch((e: unknown) => e);
    expect(badVoice).toBeInstanceOf(SpeechEngineError);
    expect((badVoice as Error).message).toMatch(/^espeak: voice "zz-nowhere": .*voice does not exist/);
    const notVoice = await engine.synthesize('hi', { voice: 'alloy; ls' }).catch((e: unknown) => e);
    expect(notVoice).toBeInstanceOf(SpeechEngineError);

    const missing = new EspeakTtsEngine({ command: 'no-such-espeak-ng-binary' });
    const notFound = await missing.synthesize('hi').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(SpeechEngineError);
    expect((notFound as Error).message).toContain('install espeak-ng');

    const slow = new EspeakTtsEngine({ timeoutMs: 1 });
    const timedOut = await slow
      .synthesize('A long sentence that takes a while. '.repeat(50))
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(SpeechEngineError);
    expect((timedOut as Error).message).toContain('timed out after 1 ms');

    await engine.close();
    await expect(engine.synthesize('hi')).rejects.toThrow('the engine is closed');
  });

  it('an abort kills the synthesis and rejects with the reason', async () => {
    const engine = new EspeakTtsEngine();
    const controller = new AbortController();
    const reason = new Error('caller hung up');
    const pending = engine.synthesize('Words. '.repeat(400), { signal: controller.signal });
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    // The engine still works afterwards.
    expect(rms(await engine.synthesize('ok'))).toBeGreaterThan(500);
  });

  it('createTtsEngine: SYSTEM_VOICE is used only when it names an espeak voice', () => {
    const make = (systemVoice: string) =>
      createTtsEngine({ engine: 'espeak', systemVoice, espeakVoices: espeak!.voices }) as EspeakTtsEngine;
    expect(make('alloy').voice).toBe('en-us');
    expect(make('en-US-Neural2-J').voice).toBe('en-us');
    expect(make('en-gb').voice).toBe('en-gb');
    expect(make('fr+f2').voice).toBe('fr+f2');
    expect(make('').voice).toBe('en-us');
    expect(make('alloy').name).toBe('espeak');
  });
});
