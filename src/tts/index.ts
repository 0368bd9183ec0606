/** Text-to-speech: the engine contract, the engines, the cache and the factory. */
export {
  createTtsEngine,
  TTS_ENGINE_NAMES,
  type TtsEngineFactoryOptions,
  type TtsEngineName,
} from './create-tts-engine.js';
export {
  detectEspeak,
  ESPEAK_COMMAND,
  ESPEAK_DEFAULT_VOICE,
  type EspeakInstallation,
  EspeakTtsEngine,
  type EspeakTtsOptions,
} from './espeak-tts-engine.js';
export {
  GOOGLE_TTS_PACKAGE,
  type GoogleServiceAccountCredentials,
  GoogleTtsEngine,
  type GoogleTtsOptions,
} from './google-tts-engine.js';
export { OfflineTtsEngine, type OfflineTtsOptions } from './offline-tts-engine.js';
export type { OpenAiConnectionOptions } from './openai-client.js';
export { OpenAiTtsEngine, type OpenAiTtsOptions } from './openai-tts-engine.js';
export {
  CachedTts,
  type CachedTtsOptions,
  DEFAULT_TTS_MEMORY_BYTES,
  type SynthesisInfo,
  type SynthesisOutcome,
  type TtsCacheStats,
} from './tts-cache.js';
export { SPEECH_SAMPLE_RATE, type SynthesizeOptions, type TtsEngine } from './tts-engine.js';
