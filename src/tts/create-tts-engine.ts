import { ConfigError } from '../errors.js';
import { EspeakTtsEngine, type EspeakTtsOptions, isEspeakVoice } from './espeak-tts-engine.js';
import { GoogleTtsEngine, type GoogleTtsOptions, languageFromVoice } from './google-tts-engine.js';
import { OfflineTtsEngine, type OfflineTtsOptions } from './offline-tts-engine.js';
import { OpenAiTtsEngine, type OpenAiTtsOptions } from './openai-tts-engine.js';
import type { TtsEngine } from './tts-engine.js';

/** The TTS engines {@link createTtsEngine} knows. */
export const TTS_ENGINE_NAMES = ['openai', 'google', 'espeak', 'offline'] as const;
export type TtsEngineName = (typeof TTS_ENGINE_NAMES)[number];

/** Options of {@link createTtsEngine}: the relevant Config fields plus per-engine settings. */
export interface TtsEngineFactoryOptions {
  /** Which engine. */
  engine: TtsEngineName;
  /** Config `openaiApiKey` (env OPENAI_API_KEY); required by `openai`. */
  openaiApiKey?: string;
  /** Config `systemVoice`: the default voice, unless the engine's own options name one. */
  systemVoice?: string;
  openai?: Omit<OpenAiTtsOptions, 'apiKey'>;
  google?: GoogleTtsOptions;
  offline?: OfflineTtsOptions;
  espeak?: EspeakTtsOptions;
  /** The voices espeak-ng knows (from detectEspeak), to tell whether systemVoice is one of them. */
  espeakVoices?: ReadonlySet<string>;
}

/**
 * Creates the TTS engine named by `options.engine`, checking its credentials now so a bad setup fails
 * at startup rather than on the first call.
 *
 * @throws {ConfigError} for an unknown engine, a missing OpenAI key, missing Google credentials or
 *   package, or a systemVoice that is not a Google voice name when `google` is chosen.
 */
export function createTtsEngine(options: TtsEngineFactoryOptions): TtsEngine {
  switch (options.engine) {
    case 'openai':
      return new OpenAiTtsEngine({
        ...options.openai,
        ...(options.openaiApiKey !== undefined && { apiKey: options.openaiApiKey }),
        voice: options.openai?.voice ?? options.systemVoice,
      });
    case 'google': {
      let voice = options.google?.voice;
      if (voice === undefined && options.systemVoice !== undefined && options.systemVoice !== '') {
        if (languageFromVoice(options.systemVoice) === undefined) {
          throw new ConfigError(
            'systemVoice',
            `Config systemVoice (SYSTEM_VOICE) ${JSON.stringify(options.systemVoice)} is not a Google voice; use a ` +
              'name such as en-US-Neural2-J with the google TTS engine.',
          );
        }
        voice = options.systemVoice;
      }
      return new GoogleTtsEngine({ ...options.google, ...(voice !== undefined && { voice }) });
    }
    case 'offline':
      return new OfflineTtsEngine(options.offline);
    case 'espeak': {
      // SYSTEM_VOICE is often a cloud voice (alloy, en-US-Neural2-J): espeak-ng takes it only if it
      // names one of its own voices, and keeps en-us otherwise.
      const system = options.systemVoice;
      const useSystem =
        options.espeak?.voice === undefined &&
        system !== undefined &&
        system !== '' &&
        isEspeakVoice(system, options.espeakVoices);
      return new EspeakTtsEngine({ ...options.espeak, ...(useSystem && { voice: system }) });
    }
    default:
      throw new ConfigError(
        'ttsEngine',
        `TTS engine ${JSON.stringify(options.engine)} is unknown; use one of ${TTS_ENGINE_NAMES.join(', ')}.`,
      );
  }
}
