/** Speech-to-text: the engine contract, the engines and the factory. */
export {
  createSttEngine,
  STT_ENGINE_NAMES,
  type SttEngineFactoryOptions,
  type SttEngineName,
} from './create-stt-engine.js';
export { OpenAiSttEngine, type OpenAiSttOptions } from './openai-stt-engine.js';
export {
  detectPocketsphinx,
  hintsToJsgf,
  POCKETSPHINX_COMMAND,
  PocketsphinxSttEngine,
  type PocketsphinxSttOptions,
} from './pocketsphinx-stt-engine.js';
export {
  ScriptedSttEngine,
  type ScriptedSttOptions,
  type TranscriptFunction,
} from './scripted-stt-engine.js';
export type { SttEngine, TranscribeOptions } from './stt-engine.js';
