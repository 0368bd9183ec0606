import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { OpenAiSttEngine } from '../src/stt/openai-stt-engine.js';
import { type FakeOpenAi, sine, startFakeOpenAi } from './support/fake-openai.js';

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi({ transcript: (r) => `  you said ${r.fields?.language ?? 'something'}  ` });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.requests.length = 0;
  vi.unstubAllEnvs();
});

function engine(options: ConstructorParameters<typeof OpenAiSttEngine>[0] = {}): OpenAiSttEngine {
  return new OpenAiSttEngine({ apiKey: fake.apiKey, baseURL: fake.baseURL, ...options });
}

describe('OpenAiSttEngine', () => {
  it('uploads the utterance as a valid 16-bit 8 kHz mono WAV and returns the trimmed text', async () => {
    const pcm = sine(300, 8000, 8000, 8000);
    const text = await engine().transcribe(pcm, {
      language: 'en-US',
      hints: ['yes', ' no ', 'operator', ''],
    });
    expect(text).toBe('you said en');
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(req.path).toBe('/v1/audio/transcriptions');
    expect(req.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(req.wavProblem).toBeUndefined();
    expect(req.file!.filename).toBe('utterance.wav');
    expect(req.file!.bytes.length).toBe(44 + 16_000);
    // The samples arrive unchanged after the 44-byte canonical header.
    const sent = req.file!.bytes.subarray(44);
    for (const i of [0, 1, 100, 7999]) expect(sent.readInt16LE(i * 2)).toBe(pcm[i]);
    expect(req.fields).toEqual({
      model: 'gpt-4o-mini-transcribe',
      language: 'en',
      prompt: 'yes, no, operator',
    });
  });

  it('sends only the model when no language or hints are given', async () => {
    await engine({ model: 'whisper-1' }).transcribe(sine(300, 8000, 4000));
    expect(fake.requests[0]!.fields).toEqual({ model: 'whisper-1' });
  });

  it('answers an utterance under 100 ms with "" and no request', async () => {
    expect(await engine().transcribe(new Int16Array(799))).toBe('');
    expect(fake.requests).toHaveLength(0);
  });

  it('turns a 401 into SpeechEngineError without the key', async () => {
    const key = 'sk-live-notTheRightKey987654321';
    const error = await new OpenAiSttEngine({ apiKey: key, baseURL: fake.baseURL })
      .transcribe(sine(300, 8000, 4000))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpeechEngineError);
    expect((error as SpeechEngineError).engine).toBe('openai-stt');
    expect((error as Error).message).toContain('401');
    expect((error as Error).message).not.toContain(key);
    expect(String((error as Error).cause)).not.toContain(key);
  });

  it('turns a 500 into SpeechEngineError', async () => {
    fake.failNext(500);
    const error = await engine({ maxRetries: 0 })
      .transcribe(sine(300, 8000, 4000))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpeechEngineError);
    expect((error as Error).message).toContain('HTTP 500');
  });

  it('fails at construction when no key is configured', () => {
    vi.stubEnv('OPENAI_API_KEY', '');
    expect(() => new OpenAiSttEngine({ baseURL: fake.baseURL })).toThrow(ConfigError);
    expect(() => new OpenAiSttEngine({ baseURL: fake.baseURL })).toThrow(
      expect.objectContaining({ field: 'openaiApiKey' }),
    );
  });

  it('rejects with the abort reason', async () => {
    await expect(
      engine().transcribe(sine(300, 8000, 4000), { signal: AbortSignal.abort(new Error('hangup')) }),
    ).rejects.toThrow('hangup');
    expect(fake.requests).toHaveLength(0);
  });
});
