import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AriClient } from './asterisk/ari-client.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { childLogger, type Logger } from './logger.js';
import { CallMedia } from './media/call-media.js';
import { PortAllocator } from './media/port-allocator.js';
import { decodeWav } from './media/wav.js';
import { createSttEngine, type SttEngineName } from './stt/create-stt-engine.js';
import type { SttEngine } from './stt/stt-engine.js';
import { createTtsEngine, type TtsEngineName } from './tts/create-tts-engine.js';
import { CachedTts } from './tts/tts-cache.js';
import type { TtsEngine } from './tts/tts-engine.js';
import type { CallAudio, Speaker } from './ui/voice-call-context.js';

/** Speech and media options shared by the Server and the Communicator. */
export interface CallServicesOptions {
  /**
   * Text-to-speech: an engine, or `'openai'` | `'google'` | `'offline'`. Default: `'openai'` when
   * OPENAI_API_KEY is set, `'google'` when GOOGLE_APPLICATION_CREDENTIALS is set, otherwise none
   * (say() then throws a ConfigError; sound: playback still works). Credentials are checked here,
   * at startup, not in the middle of a call.
   */
  tts?: TtsEngine | TtsEngineName | false;
  /** Speech-to-text for prompt()/inputStream(): an engine, or `'openai'`. Default: `'openai'` when OPENAI_API_KEY is set. */
  stt?: SttEngine | SttEngineName | false;
  /** Folder of the persistent TTS cache. Default: `<tmpdir>/asteramisk-tts-cache`; `false` keeps it in memory only. */
  ttsCacheDirectory?: string | false;
  /** In-memory TTS cache budget in bytes. Default 64 MiB. */
  ttsCacheBytes?: number;
}

/** @internal What a call needs besides ARI: speech, and its media path. */
export interface CallServices {
  speaker: Speaker | undefined;
  stt: SttEngine | undefined;
  openAudio(
    ari: AriClient,
    channelId: string,
    onBridge: (bridgeId: string) => void,
    logger: Logger,
  ): Promise<CallAudio>;
  decodeWav(wav: Buffer): Int16Array;
  close(): Promise<void>;
}

function chooseTts(config: Config, options: CallServicesOptions): TtsEngine | undefined {
  const choice = options.tts;
  if (choice === false) return undefined;
  if (choice !== undefined && typeof choice !== 'string') return choice;
  const name =
    choice ??
    (config.openaiApiKey ? 'openai' : process.env.GOOGLE_APPLICATION_CREDENTIALS ? 'google' : undefined);
  if (!name) return undefined;
  return createTtsEngine({
    engine: name,
    ...(config.openaiApiKey ? { openaiApiKey: config.openaiApiKey } : {}),
    systemVoice: config.systemVoice,
  });
}

function chooseStt(config: Config, options: CallServicesOptions): SttEngine | undefined {
  const choice = options.stt;
  if (choice === false) return undefined;
  if (choice !== undefined && typeof choice !== 'string') return choice;
  const name = choice ?? (config.openaiApiKey ? 'openai' : undefined);
  if (!name) return undefined;
  if (name === 'scripted') {
    throw new ConfigError(
      'stt',
      'The scripted STT engine needs its transcripts: pass a ScriptedSttEngine instance as `stt`.',
    );
  }
  return createSttEngine({
    engine: name,
    ...(config.openaiApiKey ? { openaiApiKey: config.openaiApiKey } : {}),
  });
}

/**
 * Builds the speech engines (validating their credentials now) and the per-call media factory
 * over one RTP port range.
 *
 * @throws {ConfigError} for a missing credential or an unknown engine.
 */
export async function createCallServices(
  config: Config,
  options: CallServicesOptions,
  logger: Logger,
): Promise<CallServices> {
  const engine = chooseTts(config, options);
  const stt = chooseStt(config, options);
  const directory =
    options.ttsCacheDirectory === false
      ? undefined
      : (options.ttsCacheDirectory ?? join(tmpdir(), 'asteramisk-tts-cache'));
  const cache = engine
    ? new CachedTts(engine, {
        ...(directory ? { directory } : {}),
        ...(options.ttsCacheBytes !== undefined ? { memoryBytes: options.ttsCacheBytes } : {}),
        logger: childLogger(logger, { component: 'tts-cache' }),
      })
    : undefined;
  const allocator = new PortAllocator({ min: config.rtpPortMin, max: config.rtpPortMax });
  return {
    speaker: cache,
    stt,
    async openAudio(ari, channelId, onBridge, callLogger) {
      const media = await CallMedia.open({
        ari,
        channelId,
        app: config.appName,
        allocator,
        bindAddress: config.rtpBindAddress,
        advertiseHost: config.asteramiskHost,
        logger: callLogger,
      });
      onBridge(media.bridgeId);
      return media;
    },
    decodeWav,
    async close() {
      await cache?.close();
    },
  };
}
