import { ConfigError } from '../errors.js';
import { OpenAiSttEngine, type OpenAiSttOptions } from './openai-stt-engine.js';
import { PocketsphinxSttEngine, type PocketsphinxSttOptions } from './pocketsphinx-stt-engine.js';
import {
  ScriptedSttEngine,
  type ScriptedSttOptions,
  type TranscriptFunction,
} from './scripted-stt-engine.js';
import type { SttEngine } from './stt-engine.js';

/** The STT engines {@link createSttEngine} knows. */
export const STT_ENGINE_NAMES = ['openai', 'pocketsphinx', 'scripted'] as const;
export type SttEngineName = (typeof STT_ENGINE_NAMES)[number];

/** Options of {@link createSttEngine}. */
export interface SttEngineFactoryOptions {
  engine: SttEngineName;
  /** Config `openaiApiKey` (env OPENAI_API_KEY); required by `openai`. */
  openaiApiKey?: string;
  openai?: Omit<OpenAiSttOptions, 'apiKey'>;
  pocketsphinx?: PocketsphinxSttOptions;
  /** The transcripts of the `scripted` engine (tests and demos). Default: none (every utterance is ''). */
  script?: readonly string[] | TranscriptFunction;
  scripted?: ScriptedSttOptions;
}

/**
 * Creates the STT engine named by `options.engine`, checking credentials now.
 *
 * @throws {ConfigError} for an unknown engine or a missing OpenAI key.
 */
export function createSttEngine(options: SttEngineFactoryOptions): SttEngine {
  switch (options.engine) {
    case 'openai':
      return new OpenAiSttEngine({
        ...options.openai,
        ...(options.openaiApiKey !== undefined && { apiKey: options.openaiApiKey }),
      });
    case 'pocketsphinx':
      return new PocketsphinxSttEngine(options.pocketsphinx);
    case 'scripted':
      return new ScriptedSttEngine(options.script ?? [], options.scripted);
    default:
      throw new ConfigError(
        'sttEngine',
        `STT engine ${JSON.stringify(options.engine)} is unknown; use one of ${STT_ENGINE_NAMES.join(', ')}.`,
      );
  }
}
