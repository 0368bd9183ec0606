import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AriClient } from './asterisk/ari-client.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { childLogger, type Logger } from './logger.js';
import { CallMedia } from './media/call-media.js';
import { MediaWorker } from './media/media-worker.js';
import { PortAllocator } from './media/port-allocator.js';
import { decodeWav } from './media/wav.js';
import { createSttEngine, type SttEngineName } from './stt/create-stt-engine.js';
import type { SttEngine } from './stt/stt-engine.js';
import { createTtsEngine, type TtsEngineName } from './tts/create-tts-engine.js';
import { detectEspeak } from './tts/espeak-tts-engine.js';
import { CachedTts, type SharedTtsStore } from './tts/tts-cache.js';
import type { TtsEngine } from './tts/tts-engine.js';
import type { CallAudio, Speaker } from './ui/voice-call-context.js';

/** Speech and media options shared by the Server and the Communicator. */
export interface CallServicesOptions {
  /**
   * Text-to-speech: an engine, or `'openai'` | `'google'` | `'espeak'` | `'offline'`. Default:
   * `'openai'` when OPENAI_API_KEY is set, `'google'` when GOOGLE_APPLICATION_CREDENTIALS is set,
   * `'espeak'` when espeak-ng is on the PATH, otherwise none: a warning is logged at startup and
   * say() throws a ConfigError (sound: playback still works). Credentials are checked here, at
   * startup, not in the middle of a call. `false`: no TTS, and no warning.
   */
  tts?: TtsEngine | TtsEngineName | false;
  /**
   * Speech-to-text for prompt()/inputStream(): an engine, or `'openai'` | `'pocketsphinx'` (local,
   * for hinted closed vocabularies such as yes/no). Default: `'openai'` when OPENAI_API_KEY is set.
   */
  stt?: SttEngine | SttEngineName | false;
  /** Folder of the persistent TTS cache. Default: `<tmpdir>/asteramisk-tts-cache`; `false` keeps it in memory only. */
  ttsCacheDirectory?: string | false;
  /** In-memory TTS cache budget in bytes. Default 64 MiB. */
  ttsCacheBytes?: number;
  /**
   * A TTS cache shared with other instances, behind memory and disk, so a prompt is synthesized
   * once per fleet. With `cluster` (Redis) it is Redis, unless `cluster.sharedTtsCache` is false.
   */
  ttsSharedCache?: SharedTtsStore;
  /**
   * Runs the calls' RTP (sockets, 20 ms pacing, jitter buffers, G.711) in a media worker thread,
   * so busy handlers, event parsing and GC on the main thread do not delay the audio (see
   * MediaWorker). If the worker fails, its calls end with a MediaWorkerError and are hung up; the
   * next call starts a new worker. Default true; `false` runs the media on the main thread.
   */
  mediaWorker?: boolean;
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

/** The warning logged at startup when no TTS engine could be chosen. */
export const NO_TTS_WARNING =
  'No text-to-speech engine: say() will fail and callers will only hear sound files. Install espeak-ng ' +
  '(apt-get install espeak-ng, or brew install espeak-ng) for local speech, or set OPENAI_API_KEY or ' +
  'GOOGLE_APPLICATION_CREDENTIALS, or pass `tts` to Server.create (tts: false silences this warning).';

/** The TTS engine a Server picks from `options.tts` and the environment (see {@link CallServicesOptions.tts}). */
export async function chooseTts(
  config: Config,
  options: Pick<CallServicesOptions, 'tts'>,
): Promise<TtsEngine | undefined> {
  const choice = options.tts;
  if (choice === false) return undefined;
  if (choice !== undefined && typeof choice !== 'string') return choice;
  let name: TtsEngineName | undefined =
    choice ??
    (config.openaiApiKey ? 'openai' : process.env.GOOGLE_APPLICATION_CREDENTIALS ? 'google' : undefined);
  const espeak = name === undefined || name === 'espeak' ? await detectEspeak() : undefined;
  if (name === undefined && espeak) name = 'espeak';
  if (!name) return undefined;
  return createTtsEngine({
    engine: name,
    ...(config.openaiApiKey ? { openaiApiKey: config.openaiApiKey } : {}),
    systemVoice: config.systemVoice,
    ...(espeak && { espeak: { version: espeak.version }, espeakVoices: espeak.voices }),
  });
}

/** The STT engine a Server picks from `options.stt` and the environment (see {@link CallServicesOptions.stt}). */
export function chooseStt(config: Config, options: Pick<CallServicesOptions, 'stt'>): SttEngine | undefined {
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
  const engine = await chooseTts(config, options);
  if (!engine && options.tts !== false) logger.warn({}, NO_TTS_WARNING);
  const stt = chooseStt(config, options);
  const directory =
    options.ttsCacheDirectory === false
      ? undefined
      : (options.ttsCacheDirectory ?? join(tmpdir(), 'asteramisk-tts-cache'));
  const cache = engine
    ? new CachedTts(engine, {
        ...(directory ? { directory } : {}),
        ...(options.ttsCacheBytes !== undefined ? { memoryBytes: options.ttsCacheBytes } : {}),
        ...(options.ttsSharedCache ? { shared: options.ttsSharedCache } : {}),
        logger: childLogger(logger, { component: 'tts-cache' }),
      })
    : undefined;
  const allocator = new PortAllocator({ min: config.rtpPortMin, max: config.rtpPortMax });
  // Started now, not at the first call: booting the thread (and, from sources, tsx in it) takes
  // a few hundred ms that the first call's media set-up would otherwise wait for.
  const mediaWorker = options.mediaWorker === false ? undefined : MediaWorker.sharedWith(logger);
  await mediaWorker?.ready;
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
        ...(mediaWorker ? { worker: MediaWorker.sharedWith(logger) } : {}),
      });
      onBridge(media.bridgeId);
      return media;
    },
    decodeWav,
    async close() {
      await cache?.close();
      // An engine the library built by name is the library's to close; one passed in is the caller's.
      if (typeof options.stt === 'string' || options.stt === undefined) await stt?.close?.();
    },
  };
}
