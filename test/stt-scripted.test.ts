import { describe, expect, it, vi } from 'vitest';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { createSttEngine, STT_ENGINE_NAMES } from '../src/stt/create-stt-engine.js';
import { OpenAiSttEngine } from '../src/stt/openai-stt-engine.js';
import { ScriptedSttEngine } from '../src/stt/scripted-stt-engine.js';

const utterance = new Int16Array(1600);

describe('ScriptedSttEngine', () => {
  it('returns the scripted transcripts in order, then "" by default', async () => {
    const stt = new ScriptedSttEngine(['yes', ' my name is Ada ']);
    expect(stt.remaining).toBe(2);
    expect(await stt.transcribe(utterance, { hints: ['yes', 'no'] })).toBe('yes');
    expect(await stt.transcribe(utterance)).toBe('my name is Ada');
    expect(await stt.transcribe(utterance)).toBe('');
    expect(stt.remaining).toBe(0);
    expect(stt.calls).toHaveLength(3);
    expect(stt.calls[0]!.options).toEqual({ hints: ['yes', 'no'] });
    expect(stt.calls[0]!.pcm).toHaveLength(1600);
  });

  it('can throw or repeat when exhausted', async () => {
    const strict = new ScriptedSttEngine(['one'], { whenExhausted: 'throw' });
    await strict.transcribe(utterance);
    await expect(strict.transcribe(utterance)).rejects.toThrow(SpeechEngineError);
    const repeat = new ScriptedSttEngine(['again'], { whenExhausted: 'repeat-last' });
    await repeat.transcribe(utterance);
    expect(await repeat.transcribe(utterance)).toBe('again');
  });

  it('accepts a function of the audio and the utterance index', async () => {
    const stt = new ScriptedSttEngine((pcm, index) =>
      pcm.length > 1000 ? `long ${index}` : `short ${index}`,
    );
    expect(await stt.transcribe(new Int16Array(10))).toBe('short 0');
    expect(await stt.transcribe(utterance)).toBe('long 1');
  });

  it('does not consume the script when aborted', async () => {
    const stt = new ScriptedSttEngine(['kept']);
    await expect(stt.transcribe(utterance, { signal: AbortSignal.abort(new Error('x')) })).rejects.toThrow(
      'x',
    );
    expect(await stt.transcribe(utterance)).toBe('kept');
  });
});

describe('createSttEngine', () => {
  it('creates engines by name and checks the OpenAI key up front', async () => {
    expect(STT_ENGINE_NAMES).toEqual(['openai', 'pocketsphinx', 'scripted']);
    const scripted = createSttEngine({ engine: 'scripted', script: ['hi'] });
    expect(await scripted.transcribe(utterance)).toBe('hi');
    expect(createSttEngine({ engine: 'openai', openaiApiKey: 'sk-x' })).toBeInstanceOf(OpenAiSttEngine);
    vi.stubEnv('OPENAI_API_KEY', '');
    try {
      expect(() => createSttEngine({ engine: 'openai' })).toThrow(ConfigError);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => createSttEngine({ engine: 'whisper.cpp' as never })).toThrow(ConfigError);
  });
});
