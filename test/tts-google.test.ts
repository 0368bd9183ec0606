import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { createTtsEngine } from '../src/tts/create-tts-engine.js';
import { GoogleTtsEngine, type GoogleTtsOptions, languageFromVoice } from '../src/tts/google-tts-engine.js';
import { type FakeGoogleTts, startFakeGoogleTts } from './support/fake-google-tts.js';
import { rms, zeroCrossingHz } from './support/fake-openai.js';

// google-auth must not probe a GCE metadata server from a test.
process.env.METADATA_SERVER_DETECTION = 'none';

let fake: FakeGoogleTts;
const engines: GoogleTtsEngine[] = [];

beforeAll(async () => {
  fake = await startFakeGoogleTts({ toneHz: 440, msPerChar: 50 });
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
  fake.requests.length = 0;
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await fake.close();
});

/** An engine on the fake: insecure channel, no Google credentials at all. */
function engine(options: GoogleTtsOptions = {}, port = fake.port): GoogleTtsEngine {
  const e = new GoogleTtsEngine({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: grpc.credentials.createInsecure(),
    voice: 'en-US-Neural2-J',
    ...options,
  });
  engines.push(e);
  return e;
}

describe('GoogleTtsEngine over gRPC', () => {
  it('LINEAR16: strips the WAV container (with a LIST chunk) and returns 8 kHz PCM', async () => {
    const pcm = await engine().synthesize('Hello world'); // 11 × 50 ms
    expect(pcm.length).toBe(4400);
    expect(Math.abs(zeroCrossingHz(pcm, 8000) - 440)).toBeLessThan(3);
    // A header left in the audio would show up as garbage in the first samples: the tone starts at 0.
    expect(Math.abs(pcm[0]!)).toBeLessThan(10);
    expect(Math.abs(pcm[1]! - Math.round(16384 * Math.sin((2 * Math.PI * 440) / 8000)))).toBeLessThanOrEqual(
      1,
    );
    expect(fake.requests).toEqual([
      expect.objectContaining({
        text: 'Hello world',
        voiceName: 'en-US-Neural2-J',
        languageCode: 'en-US',
        audioEncoding: 'LINEAR16',
        sampleRateHertz: 8000,
      }),
    ]);
    // Insecure test channel: no Google token was sent.
    expect(fake.requests[0]!.metadata.authorization).toBeUndefined();
  });

  it('MULAW: decodes G.711 µ-law from its WAV container', async () => {
    const pcm = await engine({ audioEncoding: 'MULAW' }).synthesize('Press one');
    expect(pcm.length).toBe(3600);
    expect(fake.requests[0]!.audioEncoding).toBe('MULAW');
    expect(Math.abs(zeroCrossingHz(pcm, 8000) - 440)).toBeLessThan(3);
    // µ-law keeps the level within a few percent of the 16384-peak tone (RMS ≈ 11585).
    expect(rms(pcm)).toBeGreaterThan(11_000);
    expect(rms(pcm)).toBeLessThan(12_200);
  });

  it('resamples when Google answers at another rate', async () => {
    const other = await startFakeGoogleTts({ answerRate: 24_000 });
    try {
      const pcm = await engine({}, other.port).synthesize('Hello world');
      expect(pcm.length).toBe(4400);
      expect(Math.abs(zeroCrossingHz(pcm.subarray(200, -200), 8000) - 440)).toBeLessThan(3);
    } finally {
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await other.close();
    }
  });

  it('uses per-call voice and language', async () => {
    await engine().synthesize('Bonjour', { voice: 'fr-FR-Neural2-A' });
    await engine().synthesize('Hello', { language: 'en-GB' });
    expect(fake.requests.map((r) => [r.voiceName, r.languageCode])).toEqual([
      ['fr-FR-Neural2-A', 'fr-FR'],
      ['en-US-Neural2-J', 'en-GB'],
    ]);
  });

  it('turns a gRPC error into SpeechEngineError with status and details', async () => {
    fake.failNext(grpc.status.INVALID_ARGUMENT, 'Voice en-US-Nope does not exist.');
    const error = await engine()
      .synthesize('Hello')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpeechEngineError);
    expect((error as SpeechEngineError).engine).toBe('google-tts');
    expect((error as Error).message).toContain('INVALID_ARGUMENT');
    expect((error as Error).message).toContain('Voice en-US-Nope does not exist.');
  });

  it('rejects with the abort reason', async () => {
    await expect(engine().synthesize('x', { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow(
      'early',
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses to synthesize after close()', async () => {
    const e = engine();
    await e.synthesize('one');
    await e.close();
    await expect(e.synthesize('two')).rejects.toThrow(SpeechEngineError);
  });
});

describe('GoogleTtsEngine configuration', () => {
  it('fails at construction without credentials', () => {
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    const error = (() => {
      try {
        new GoogleTtsEngine({ voice: 'en-US-Neural2-J' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('googleCredentials');
    expect((error as Error).message).toContain('GOOGLE_APPLICATION_CREDENTIALS');
  });

  it('fails at construction when the key file does not exist', () => {
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '/nonexistent/key.json');
    expect(() => new GoogleTtsEngine()).toThrow(/does not exist/);
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    expect(() => new GoogleTtsEngine({ keyFilename: '/nonexistent/key.json' })).toThrow(ConfigError);
    expect(() => new GoogleTtsEngine({ credentials: { client_email: 'x' } as never })).toThrow(ConfigError);
  });

  it('accepts a key file, explicit credentials, or opting in to application default credentials', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'asteramisk-google-'));
    try {
      const keyFile = join(dir, 'key.json');
      await writeFile(keyFile, '{}');
      vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
      expect(new GoogleTtsEngine({ keyFilename: keyFile }).name).toBe('google-tts');
      expect(new GoogleTtsEngine({ credentials: { client_email: 'a@b', private_key: 'k' } }).name).toBe(
        'google-tts',
      );
      expect(new GoogleTtsEngine({ useApplicationDefaultCredentials: true }).name).toBe('google-tts');
      vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', keyFile);
      expect(new GoogleTtsEngine().name).toBe('google-tts');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('explains how to install the package when it is missing', () => {
    const error = (() => {
      try {
        new GoogleTtsEngine({
          packageName: '@google-cloud/text-to-speech-missing',
          useApplicationDefaultCredentials: true,
        });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('npm install @google-cloud/text-to-speech-missing');
  });

  it('rejects an unsupported encoding and derives the language from the voice', () => {
    expect(() => engine({ audioEncoding: 'OGG_OPUS' as never })).toThrow(ConfigError);
    expect(languageFromVoice('en-US-Neural2-J')).toBe('en-US');
    expect(languageFromVoice('cmn-CN-Wavenet-A')).toBe('cmn-CN');
    expect(languageFromVoice('alloy')).toBeUndefined();
    expect(engine({ voice: 'de-DE-Standard-A' }).languageCode).toBe('de-DE');
  });

  it('factory: a Google engine needs a Google voice in systemVoice', () => {
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    const google = { useApplicationDefaultCredentials: true };
    expect(() => createTtsEngine({ engine: 'google', systemVoice: 'alloy', google })).toThrow(
      expect.objectContaining({ field: 'systemVoice' }),
    );
    const e = createTtsEngine({ engine: 'google', systemVoice: 'en-GB-Neural2-A', google });
    expect((e as GoogleTtsEngine).voice).toBe('en-GB-Neural2-A');
    expect((e as GoogleTtsEngine).languageCode).toBe('en-GB');
    expect(() => createTtsEngine({ engine: 'google', systemVoice: 'en-GB-Neural2-A' })).toThrow(
      expect.objectContaining({ field: 'googleCredentials' }),
    );
  });
});
