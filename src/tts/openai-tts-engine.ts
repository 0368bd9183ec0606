import { createHash } from 'node:crypto';
import type OpenAI from 'openai';
import { SpeechEngineError } from '../errors.js';
import { concatPcm, pcm16leToInt16 } from '../media/pcm16.js';
import { resamplePcm16 } from '../media/resample.js';
import {
  createOpenAiClient,
  type OpenAiConnectionOptions,
  openAiFailure,
  resolveOpenAiKey,
} from './openai-client.js';
import { splitText } from './split-text.js';
import { SPEECH_SAMPLE_RATE, type SynthesizeOptions, type TtsEngine, throwIfAborted } from './tts-engine.js';

/** Options of {@link OpenAiTtsEngine}. */
export interface OpenAiTtsOptions extends OpenAiConnectionOptions {
  /** TTS model. Default `gpt-4o-mini-tts`. */
  model?: string;
  /** Default voice when `synthesize` gets none. Default `alloy`. */
  voice?: string;
  /** Speaking-style instructions (`Speak calmly.`); honoured by gpt-4o-mini-tts, not by tts-1. */
  instructions?: string;
  /** Speed from 0.25 to 4. Default: the API's (1). */
  speed?: number;
}

/** OpenAI's `pcm` response format: 24 kHz, 16-bit signed little-endian, mono, no header. */
const OPENAI_PCM_RATE = 24_000;
/** OpenAI's limit on `input`, in characters. */
const OPENAI_MAX_INPUT_CHARS = 4096;

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * Text-to-speech with OpenAI's `/audio/speech` endpoint (`openai` package). Requests raw 24 kHz PCM
 * and resamples it (band-limited) to 8 kHz. Texts over 4096 characters are split at sentence ends
 * and the pieces concatenated.
 *
 * @throws {ConfigError} at construction when no API key is given (option or env `OPENAI_API_KEY`).
 */
export class OpenAiTtsEngine implements TtsEngine {
  readonly name = 'openai-tts';
  readonly cacheId: string;
  readonly model: string;
  readonly voice: string;
  private readonly instructions: string | undefined;
  private readonly speed: number | undefined;
  // ES private fields: util.inspect and JSON.stringify of the engine never show the key.
  readonly #apiKey: string;
  readonly #client: OpenAI;

  constructor(options: OpenAiTtsOptions = {}) {
    this.#apiKey = resolveOpenAiKey(options.apiKey, 'OpenAI TTS engine');
    this.model = options.model ?? 'gpt-4o-mini-tts';
    this.voice = options.voice ?? 'alloy';
    this.instructions = options.instructions;
    this.speed = options.speed;
    this.#client = createOpenAiClient(this.#apiKey, options);
    this.cacheId = [
      this.name,
      this.model,
      this.voice,
      this.instructions === undefined ? '' : shortHash(this.instructions),
      this.speed ?? '',
    ].join('|');
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    throwIfAborted(options.signal);
    const pieces = splitText(text, OPENAI_MAX_INPUT_CHARS);
    const parts: Int16Array[] = [];
    for (const piece of pieces) parts.push(await this.synthesizePiece(piece, options));
    return concatPcm(parts);
  }

  private async synthesizePiece(input: string, options: SynthesizeOptions): Promise<Int16Array> {
    const { signal } = options;
    let bytes: Uint8Array;
    try {
      const response = await this.#client.audio.speech.create(
        {
          model: this.model,
          voice: options.voice ?? this.voice,
          input,
          response_format: 'pcm',
          ...(this.instructions !== undefined && { instructions: this.instructions }),
          ...(this.speed !== undefined && { speed: this.speed }),
        },
        signal ? { signal } : undefined,
      );
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw openAiFailure(this.name, error, this.#apiKey, signal);
    }
    if (bytes.byteLength === 0) throw new SpeechEngineError(this.name, 'the API returned no audio');
    return resamplePcm16(pcm16leToInt16(bytes), OPENAI_PCM_RATE, SPEECH_SAMPLE_RATE);
  }
}
