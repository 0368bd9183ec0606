import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { createTtsEngine, TTS_ENGINE_NAMES } from '../src/tts/create-tts-engine.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import { OpenAiTtsEngine } from '../src/tts/openai-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';
import { rms, zeroCrossingHz } from './support/fake-openai.js';

describe('OfflineTtsEngine', () => {
  it('is deterministic and 65 ms per character', async () => {
    const a = await new OfflineTtsEngine().synthesize('Hello, world.');
    const b = await new OfflineTtsEngine().synthesize('Hello, world.');
    expect(a).toEqual(b);
    expect(a.length).toBe(13 * 520);
    expect(new OfflineTtsEngine().name).toBe('offline');
  });

  it('sounds words as audible tones and spaces/punctuation as silence', async () => {
    const pcm = await new OfflineTtsEngine().synthesize('Hello world');
    const hello = pcm.subarray(0, 5 * 520);
    const space = pcm.subarray(5 * 520, 6 * 520);
    const world = pcm.subarray(6 * 520);
    expect(rms(space)).toBe(0);
    for (const word of [hello, world]) {
      expect(rms(word)).toBeGreaterThan(3000); // clearly audible (peak 0.3 full scale)
      const hz = zeroCrossingHz(word, 8000);
      expect(hz).toBeGreaterThan(200);
      expect(hz).toBeLessThan(1200);
    }
    expect(Math.max(...pcm.map(Math.abs))).toBeLessThanOrEqual(Math.round(0.3 * 32767));
    // Soft edges: no click at the start of a word.
    expect(Math.abs(hello[0]!)).toBeLessThan(100);
  });

  it('renders different texts and voices differently', async () => {
    const engine = new OfflineTtsEngine();
    const one = await engine.synthesize('yes');
    const two = await engine.synthesize('now');
    expect(one.length).toBe(two.length);
    expect(one).not.toEqual(two);
    expect(await engine.synthesize('yes', { voice: 'other' })).not.toEqual(one);
    expect(await engine.synthesize('')).toHaveLength(0);
    expect((await new OfflineTtsEngine({ msPerChar: 100 }).synthesize('ab')).length).toBe(1600);
  });

  it('rejects with the abort reason', async () => {
    await expect(
      new OfflineTtsEngine().synthesize('x', { signal: AbortSignal.abort(new Error('stop')) }),
    ).rejects.toThrow('stop');
  });

  it('works behind CachedTts', async () => {
    const tts = new CachedTts(new OfflineTtsEngine());
    expect(await tts.speak('Welcome')).toEqual(await tts.speak('Welcome'));
    expect(tts.stats()).toMatchObject({ synthCalls: 1, memoryHits: 1 });
  });
});

describe('createTtsEngine', () => {
  it('creates each engine by name and checks credentials up front', () => {
    expect(TTS_ENGINE_NAMES).toEqual(['openai', 'google', 'espeak', 'offline']);
    expect(createTtsEngine({ engine: 'offline' })).toBeInstanceOf(OfflineTtsEngine);
    const openai = createTtsEngine({ engine: 'openai', openaiApiKey: 'sk-x', systemVoice: 'nova' });
    expect(openai).toBeInstanceOf(OpenAiTtsEngine);
    expect((openai as OpenAiTtsEngine).voice).toBe('nova');
    vi.stubEnv('OPENAI_API_KEY', '');
    try {
      expect(() => createTtsEngine({ engine: 'openai' })).toThrow(
        expect.objectContaining({ field: 'openaiApiKey' }),
      );
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => createTtsEngine({ engine: 'festival' as never })).toThrow(ConfigError);
  });
});
