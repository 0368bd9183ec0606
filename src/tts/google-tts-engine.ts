import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ConfigError, SpeechEngineError } from '../errors.js';
import { decodeMulaw } from '../media/g711.js';
import { concatPcm, pcm16leToInt16 } from '../media/pcm16.js';
import { resamplePcm16 } from '../media/resample.js';
import { isWav, readWav, WAV_FORMAT, type WavFile } from '../media/wav.js';
import { measureUtf8Bytes, splitText } from './split-text.js';
import {
  raceAbort,
  SPEECH_SAMPLE_RATE,
  type SynthesizeOptions,
  type TtsEngine,
  throwIfAborted,
} from './tts-engine.js';

/** The optional package this engine loads on first use. */
export const GOOGLE_TTS_PACKAGE = '@google-cloud/text-to-speech';

/** Google's limit on `input.text`, in bytes of UTF-8. */
const GOOGLE_MAX_INPUT_BYTES = 5000;

/** Service-account credentials as found in a Google key file. */
export interface GoogleServiceAccountCredentials {
  client_email: string;
  private_key: string;
  [field: string]: unknown;
}

/** Options of {@link GoogleTtsEngine}. */
export interface GoogleTtsOptions {
  /** Service-account credentials (the parsed key file). */
  credentials?: GoogleServiceAccountCredentials;
  /** Path of a service-account key file. */
  keyFilename?: string;
  /** Google Cloud project id (optional; taken from the credentials otherwise). */
  projectId?: string;
  /**
   * Accept Application Default Credentials (gcloud login, GCE/GKE metadata server) when no key is
   * given. Off by default so a missing key fails when the engine is created, not during a call.
   */
  useApplicationDefaultCredentials?: boolean;
  /** Default voice, e.g. `en-US-Neural2-J`. Default: Google's choice for the language. */
  voice?: string;
  /** Default BCP-47 language. Default: the voice's prefix (`en-US` of `en-US-Neural2-J`), else `en-US`. */
  languageCode?: string;
  /** What Google sends back: 16-bit PCM or G.711 µ-law, both at 8 kHz. Default `LINEAR16`. */
  audioEncoding?: 'LINEAR16' | 'MULAW';
  /** Per-request time limit in milliseconds (retries included). Default 30 000. */
  timeoutMs?: number;
  /** gRPC host of the service (an emulator or test server). Default `texttospeech.googleapis.com`. */
  apiEndpoint?: string;
  /** gRPC port. Default 443. */
  port?: number;
  /**
   * gRPC channel credentials, e.g. `grpc.credentials.createInsecure()` for a local test server. When
   * given together with `apiEndpoint`, no Google credentials are needed (nor looked up).
   */
  sslCreds?: unknown;
  /** Universe domain. Default `googleapis.com`. */
  universeDomain?: string;
  /** Extra options handed to `TextToSpeechClient` as they are (`grpc.*` channel options…). */
  clientOptions?: Record<string, unknown>;
  /** Name of the package to load (for tests and forks). Default `@google-cloud/text-to-speech`. */
  packageName?: string;
}

/** The part of `TextToSpeechClient` this engine uses (declared here: the package is optional). */
interface GoogleTtsClient {
  synthesizeSpeech(
    request: GoogleSynthesizeRequest,
    options?: { timeout?: number },
  ): Promise<[{ audioContent?: Uint8Array | string | null }, ...unknown[]]>;
  close(): Promise<void>;
}

interface GoogleSynthesizeRequest {
  input: { text: string };
  voice: { languageCode: string; name?: string };
  audioConfig: { audioEncoding: 'LINEAR16' | 'MULAW'; sampleRateHertz: number };
}

type GoogleTtsClientConstructor = new (options: Record<string, unknown>) => GoogleTtsClient;

const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** `en-US` from `en-US-Neural2-J`, `cmn-CN` from `cmn-CN-Wavenet-A`; undefined when it does not look like one. */
export function languageFromVoice(voice: string | undefined): string | undefined {
  const match = voice === undefined ? null : /^([a-z]{2,3}-[A-Z]{2})-/.exec(voice);
  return match?.[1];
}

function missingPackage(packageName: string, cause?: unknown): ConfigError {
  return new ConfigError(
    'ttsEngine',
    `The Google TTS engine needs the optional package ${packageName}, which is not installed; run ` +
      `\`npm install ${packageName}\` or choose another TTS engine.`,
    { cause },
  );
}

/**
 * Text-to-speech with Google Cloud Text-to-Speech v1 over gRPC (`@google-cloud/text-to-speech`, an
 * optional dependency loaded on first use). Asks for 8 kHz audio directly, so no resampling is needed
 * unless Google answers at another rate. Both encodings come back inside a WAV container, which is
 * parsed chunk by chunk (no 44-byte assumption).
 *
 * @throws {ConfigError} at construction when the package is missing or no credentials are available.
 */
export class GoogleTtsEngine implements TtsEngine {
  readonly name = 'google-tts';
  readonly cacheId: string;
  readonly voice: string | undefined;
  readonly languageCode: string;
  readonly audioEncoding: 'LINEAR16' | 'MULAW';
  private readonly timeoutMs: number;
  private readonly packageName: string;
  // ES private fields: they hold the service-account key, which util.inspect must never show.
  readonly #clientOptions: Record<string, unknown>;
  #client: Promise<GoogleTtsClient> | undefined;
  private closed = false;

  constructor(options: GoogleTtsOptions = {}) {
    this.packageName = options.packageName ?? GOOGLE_TTS_PACKAGE;
    try {
      createRequire(import.meta.url).resolve(this.packageName);
    } catch (error) {
      throw missingPackage(this.packageName, error);
    }
    const testServer = options.apiEndpoint !== undefined && options.sslCreds !== undefined;
    const auth = GoogleTtsEngine.checkCredentials(options, testServer);

    this.voice = options.voice;
    this.languageCode = options.languageCode ?? languageFromVoice(options.voice) ?? 'en-US';
    this.audioEncoding = options.audioEncoding ?? 'LINEAR16';
    if (this.audioEncoding !== 'LINEAR16' && this.audioEncoding !== 'MULAW') {
      throw new ConfigError(
        'audioEncoding',
        `Google TTS audioEncoding ${JSON.stringify(this.audioEncoding)} is not supported; use LINEAR16 or MULAW.`,
      );
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.cacheId = [this.name, this.voice ?? '', this.languageCode, this.audioEncoding].join('|');
    this.#clientOptions = {
      ...auth,
      ...(options.projectId !== undefined && { projectId: options.projectId }),
      ...(options.apiEndpoint !== undefined && { apiEndpoint: options.apiEndpoint }),
      ...(options.port !== undefined && { port: options.port }),
      ...(options.sslCreds !== undefined && { sslCreds: options.sslCreds }),
      // With a known universe, google-auth does not look for credentials just to learn it.
      ...((options.universeDomain !== undefined || testServer) && {
        universeDomain: options.universeDomain ?? 'googleapis.com',
      }),
      ...options.clientOptions,
    };
  }

  /** The auth options for the client; throws ConfigError when none are available. */
  private static checkCredentials(options: GoogleTtsOptions, testServer: boolean): Record<string, unknown> {
    if (options.credentials !== undefined) {
      const c = options.credentials;
      if (typeof c.client_email !== 'string' || typeof c.private_key !== 'string') {
        throw new ConfigError(
          'googleCredentials',
          'Google TTS credentials are invalid: expected a service-account key with client_email and private_key.',
        );
      }
      return { credentials: c };
    }
    if (options.keyFilename !== undefined) {
      if (!existsSync(options.keyFilename)) {
        throw new ConfigError(
          'googleCredentials',
          `Google TTS keyFilename ${JSON.stringify(options.keyFilename)} does not exist; pass the path of a ` +
            'service-account key file.',
        );
      }
      return { keyFilename: options.keyFilename };
    }
    const envFile = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    if (envFile !== undefined && envFile !== '') {
      if (!existsSync(envFile)) {
        throw new ConfigError(
          'googleCredentials',
          `GOOGLE_APPLICATION_CREDENTIALS points to ${JSON.stringify(envFile)}, which does not exist; set it to ` +
            'the path of a service-account key file.',
        );
      }
      return {};
    }
    if (testServer || options.useApplicationDefaultCredentials) return {};
    throw new ConfigError(
      'googleCredentials',
      'Google TTS has no credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or pass ' +
        'credentials or keyFilename (or useApplicationDefaultCredentials: true on Google Cloud).',
    );
  }

  private async getClient(): Promise<GoogleTtsClient> {
    this.#client ??= (async () => {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(this.packageName)) as Record<string, unknown>;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
          throw missingPackage(this.packageName, error);
        throw new SpeechEngineError(this.name, `could not load ${this.packageName}`, { cause: error });
      }
      const fromDefault = (mod.default as Record<string, unknown> | undefined)?.TextToSpeechClient;
      const Client = (mod.TextToSpeechClient ?? fromDefault) as GoogleTtsClientConstructor | undefined;
      if (typeof Client !== 'function') {
        throw new SpeechEngineError(this.name, `${this.packageName} has no TextToSpeechClient export`);
      }
      return new Client(this.#clientOptions);
    })();
    // A failed load is not remembered: the next call tries again.
    this.#client.catch(() => {
      this.#client = undefined;
    });
    return this.#client;
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    throwIfAborted(options.signal);
    if (this.closed) throw new SpeechEngineError(this.name, 'the engine is closed');
    const client = await raceAbort(this.getClient(), options.signal);
    const parts: Int16Array[] = [];
    for (const piece of splitText(text, GOOGLE_MAX_INPUT_BYTES, measureUtf8Bytes)) {
      parts.push(await this.synthesizePiece(client, piece, options));
    }
    return concatPcm(parts);
  }

  private async synthesizePiece(
    client: GoogleTtsClient,
    text: string,
    options: SynthesizeOptions,
  ): Promise<Int16Array> {
    const name = options.voice ?? this.voice;
    const request: GoogleSynthesizeRequest = {
      input: { text },
      voice: {
        languageCode:
          options.language ?? (options.voice && languageFromVoice(options.voice)) ?? this.languageCode,
        ...(name !== undefined && { name }),
      },
      audioConfig: { audioEncoding: this.audioEncoding, sampleRateHertz: SPEECH_SAMPLE_RATE },
    };
    let audio: Uint8Array | string | null | undefined;
    try {
      // The generated client's promise cannot be cancelled (its .then() drops gax's cancel()), so an
      // abort rejects at once and the RPC finishes in the background (bounded by timeoutMs).
      const [response] = await raceAbort(
        client.synthesizeSpeech(request, { timeout: this.timeoutMs }),
        options.signal,
      );
      audio = response.audioContent;
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw this.failure(error);
    }
    const bytes = typeof audio === 'string' ? Buffer.from(audio, 'base64') : audio;
    if (!bytes || bytes.length === 0) throw new SpeechEngineError(this.name, 'the API returned no audio');
    return this.decode(bytes);
  }

  /** Google's audioContent (a WAV, or raw samples) → 8 kHz 16-bit PCM. */
  private decode(bytes: Uint8Array): Int16Array {
    let samples: Int16Array;
    let rate = SPEECH_SAMPLE_RATE;
    if (isWav(bytes)) {
      let wav: WavFile;
      try {
        wav = readWav(bytes);
      } catch (error) {
        throw new SpeechEngineError(this.name, `unreadable WAV in the response: ${(error as Error).message}`);
      }
      if (wav.channels !== 1)
        throw new SpeechEngineError(this.name, `expected mono audio, got ${wav.channels} channels`);
      if (wav.format === WAV_FORMAT.PCM && wav.bitsPerSample === 16) samples = pcm16leToInt16(wav.data);
      else if (wav.format === WAV_FORMAT.MULAW && wav.bitsPerSample === 8) samples = decodeMulaw(wav.data);
      else {
        throw new SpeechEngineError(
          this.name,
          `unsupported WAV format ${wav.format} with ${wav.bitsPerSample} bits per sample in the response`,
        );
      }
      rate = wav.sampleRate;
    } else {
      samples = this.audioEncoding === 'MULAW' ? decodeMulaw(bytes) : pcm16leToInt16(bytes);
    }
    return rate === SPEECH_SAMPLE_RATE ? samples : resamplePcm16(samples, rate, SPEECH_SAMPLE_RATE);
  }

  private failure(error: unknown): SpeechEngineError {
    if (error instanceof SpeechEngineError) return error;
    const e = error as { code?: unknown; details?: unknown; message?: unknown };
    if (typeof e.code === 'number') {
      const status = GRPC_STATUS_NAMES[e.code] ?? 'UNKNOWN';
      const details = typeof e.details === 'string' && e.details !== '' ? e.details : String(e.message ?? '');
      return new SpeechEngineError(this.name, `gRPC ${status} (${e.code}): ${details}`, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new SpeechEngineError(this.name, message, { cause: error });
  }

  /** Closes the gRPC channel. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.then((c) => c.close()).catch(() => {});
  }
}
