import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { OpenAiTtsEngine } from '../src/tts/openai-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';
import { type FakeOpenAi, rms, startFakeOpenAi, zeroCrossingHz } from './support/fake-openai.js';

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi({ toneHz: 440, msPerChar: 50 });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.requests.length = 0;
  vi.unstubAllEnvs();
});

function engine(options: ConstructorParameters<typeof OpenAiTtsEngine>[0] = {}): OpenAiTtsEngine {
  return new OpenAiTtsEngine({ apiKey: fake.apiKey, baseURL: fake.baseURL, ...options });
}

describe('OpenAiTtsEngine', () => {
  it('returns 8 kHz audio of the right length and frequency', async () => {
    const pcm = await engine().synthesize('Hello there, caller'); // 19 chars × 50 ms = 950 ms
    expect(pcm).toBeInstanceOf(Int16Array);
    expect(pcm.length).toBe(7600); // 22 800 samples at 24 kHz / 3
    const middle = pcm.subarray(200, pcm.length - 200);
    expect(Math.abs(zeroCrossingHz(middle, 8000) - 440)).toBeLessThan(3);
    // The fake's tone peaks at 16384: RMS ≈ 11585 survives resampling.
    expect(rms(middle)).toBeGreaterThan(11_000);
    expect(rms(middle)).toBeLessThan(12_000);
  });

  it('sends model, voice, input and pcm format with the key as a bearer token', async () => {
    await engine().synthesize('Good morning');
    await engine({ model: 'tts-1', voice: 'nova', instructions: 'Speak slowly.' }).synthesize('Bye', {
      voice: 'echo',
    });
    expect(fake.requests).toHaveLength(2);
    const [first, second] = fake.requests;
    expect(first!.path).toBe('/v1/audio/speech');
    expect(first!.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(first!.json).toEqual({
      model: 'gpt-4o-mini-tts',
      voice: 'alloy',
      input: 'Good morning',
      response_format: 'pcm',
    });
    expect(second!.json).toMatchObject({
      model: 'tts-1',
      voice: 'echo',
      input: 'Bye',
      instructions: 'Speak slowly.',
    });
  });

  it('splits texts longer than 4096 characters into several requests', async () => {
    const long = `${'word '.repeat(900)}end. ${'more '.repeat(200)}`.trim(); // ~5500 characters
    const pcm = await engine().synthesize(long);
    expect(fake.requests.length).toBe(2);
    for (const r of fake.requests) expect((r.json!.input as string).length).toBeLessThanOrEqual(4096);
    const sent = fake.requests.map((r) => r.json!.input as string).join(' ');
    expect(sent.replace(/\s+/g, ' ')).toBe(long.replace(/\s+/g, ' '));
    const expected = fake.requests.reduce(
      (n, r) => n + ((r.json!.input as string).length * 50 * 8000) / 1000,
      0,
    );
    expect(pcm.length).toBe(expected);
  });

  it('turns a 401 into SpeechEngineError without the key anywhere', async () => {
    const key = 'sk-proj-wrongWRONGwrong0123456789';
    const error = await new OpenAiTtsEngine({ apiKey: key, baseURL: fake.baseURL })
      .synthesize('Hello')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpeechEngineError);
    const e = error as SpeechEngineError;
    expect(e.engine).toBe('openai-tts');
    expect(e.message).toContain('401');
    expect(e.message).toContain('invalid_api_key');
    expect(e.message).toContain('Incorrect API key provided');
    expect(e.message).not.toContain(key);
    expect(e.message).not.toContain('wrongWRONG');
    expect(String(e.cause)).not.toContain(key);
    expect(JSON.stringify(e)).not.toContain(key);
    expect(fake.requests[0]!.authorization).toBe(`Bearer ${key}`); // the fake really saw it
  });

  it('turns a 500 into SpeechEngineError, and retries once by default', async () => {
    fake.failNext(500, 1, 'The server had an error');
    const error = await engine({ maxRetries: 0 })
      .synthesize('Hello')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpeechEngineError);
    expect((error as Error).message).toMatch(/HTTP 500.*The server had an error/);

    fake.failNext(500, 1);
    const pcm = await engine().synthesize('Hello');
    expect(pcm.length).toBe(2000);
    expect(fake.requests).toHaveLength(3);
  });

  it('rejects with the abort reason, before or during the request', async () => {
    await expect(engine().synthesize('x', { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow(
      'early',
    );
    expect(fake.requests).toHaveLength(0);

    let release!: () => void;
    const gated = await startFakeOpenAi({ gate: new Promise<void>((r) => (release = r)) });
    try {
      const controller = new AbortController();
      const pending = new OpenAiTtsEngine({ apiKey: gated.apiKey, baseURL: gated.baseURL }).synthesize(
        'slow',
        {
          signal: controller.signal,
        },
      );
      await gated.waitForRequests(1);
      controller.abort(new Error('hung up'));
      await expect(pending).rejects.toThrow('hung up');
    } finally {
      release();
      await gated.close();
    }
  });

  it('fails at construction, not mid-call, when no key is configured', () => {
    vi.stubEnv('OPENAI_API_KEY', '');
    let error: unknown;
    try {
      new OpenAiTtsEngine({ baseURL: fake.baseURL });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('openaiApiKey');
    expect((error as Error).message).toContain('OPENAI_API_KEY');
  });

  it('reads OPENAI_API_KEY from the environment', async () => {
    vi.stubEnv('OPENAI_API_KEY', fake.apiKey);
    expect((await new OpenAiTtsEngine({ baseURL: fake.baseURL }).synthesize('Hi')).length).toBe(800);
  });

  it('gives distinct cache identities to distinct models, voices and instructions', () => {
    const ids = [
      engine().cacheId,
      engine({ model: 'tts-1' }).cacheId,
      engine({ voice: 'nova' }).cacheId,
      engine({ instructions: 'Cheerful.' }).cacheId,
    ];
    expect(new Set(ids).size).toBe(4);
    expect(engine().cacheId).toBe(engine().cacheId);
  });

  it('behind CachedTts, one HTTP request serves a repeated prompt', async () => {
    const tts = new CachedTts(engine());
    const [a, b] = await Promise.all([tts.speak('Thanks for calling'), tts.speak('Thanks for calling')]);
    await tts.speak('Thanks for calling');
    expect(a).toEqual(b);
    expect(fake.requests).toHaveLength(1);
  });
});
