/**
 * A local text-to-speech engine on espeak-ng (https://github.com/espeak-ng/espeak-ng), with no
 * network and no account. espeak-ng is GPL-licensed: it is never bundled nor linked, only run as a
 * separate program (`espeak-ng` on the PATH: `apt-get install espeak-ng`, `brew install espeak-ng`).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import PQueue from 'p-queue';
import { SpeechEngineError } from '../errors.js';
import { decodeWav } from '../media/wav.js';
import { raceAbort, type SynthesizeOptions, type TtsEngine, throwIfAborted } from './tts-engine.js';

/** The program run by default. */
export const ESPEAK_COMMAND = 'espeak-ng';

/** The default voice: US English. */
export const ESPEAK_DEFAULT_VOICE = 'en-us';

/** Options of {@link EspeakTtsEngine}. */
export interface EspeakTtsOptions {
  /** The espeak-ng voice (`en-us`, `en-gb`, `fr`, `en-us+f3`…). Default `en-us`. */
  voice?: string;
  /** Speed in words per minute (80 to 450). Default 160, a little slower than espeak-ng's 175, for the phone. */
  rate?: number;
  /** Pitch from 0 to 99. Default 50. */
  pitch?: number;
  /** The program to run. Default `espeak-ng` (looked up on the PATH). */
  command?: string;
  /** Syntheses run at once; more wait their turn. Default: the CPU count, at most 4. */
  concurrency?: number;
  /** Time limit of one synthesis (waiting for a turn excluded), in milliseconds. Default 20 000. */
  timeoutMs?: number;
  /** The espeak-ng version (from {@link detectEspeak}), part of {@link EspeakTtsEngine.cacheId}. */
  version?: string;
}

/** What {@link detectEspeak} finds. */
export interface EspeakInstallation {
  /** The program that answered. */
  command: string;
  /** Its version, e.g. `1.51`. */
  version: string;
  /** The voice names it accepts with `-v` (languages, voice names and voice files), lower case. */
  voices: ReadonlySet<string>;
}

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `command args` (no shell), writing `input` to its stdin; kills it on timeout or abort. */
function run(
  command: string,
  args: readonly string[],
  options: { input?: string; timeoutMs: number; signal?: AbortSignal; maxBytes?: number },
): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new Error(`timed out after ${options.timeoutMs} ms`)));
    }, options.timeoutMs);
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => reject(options.signal?.reason));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (options.maxBytes !== undefined && outBytes > options.maxBytes) {
        child.kill('SIGKILL');
        finish(() => reject(new Error(`more than ${options.maxBytes} bytes of output`)));
        return;
      }
      out.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (err.length < 4096) err += chunk;
    });
    child.on('error', (error) => finish(() => reject(error)));
    child.on('close', (code) =>
      finish(() => resolve({ code, stdout: Buffer.concat(out), stderr: err.trim() })),
    );
    // A program that exits before reading stdin makes the write fail with EPIPE: its exit says why.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

const detections = new Map<string, Promise<EspeakInstallation | undefined>>();

/**
 * Whether espeak-ng can be run: `<command> --version` and `--voices`, once per command and PATH (the
 * answer is cached for the life of the process). Resolves to undefined when it is not installed.
 */
export function detectEspeak(command: string = ESPEAK_COMMAND): Promise<EspeakInstallation | undefined> {
  const key = `${command}\0${process.env.PATH ?? ''}`;
  let found = detections.get(key);
  if (!found) {
    found = (async () => {
      try {
        const version = await run(command, ['--version'], { timeoutMs: 5_000 });
        const match = /text-to-speech:\s*(\S+)/.exec(version.stdout.toString('utf8'));
        if (version.code !== 0 || !match) return undefined;
        const list = await run(command, ['--voices'], { timeoutMs: 5_000 });
        return { command, version: match[1]!, voices: parseVoices(list.stdout.toString('utf8')) };
      } catch {
        return undefined;
      }
    })();
    detections.set(key, found);
  }
  return found;
}

/** The names `-v` accepts, from the table `espeak-ng --voices` prints. */
export function parseVoices(table: string): Set<string> {
  const voices = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    // Pty Language Age/Gender VoiceName File [Other languages]
    voices.add(cols[1]!.toLowerCase());
    voices.add(cols[3]!.toLowerCase());
    voices.add(cols[4]!.toLowerCase());
    const file = cols[4]!.split('/').pop();
    if (file) voices.add(file.toLowerCase());
  }
  return voices;
}

/**
 * Whether `name` is an espeak-ng voice: one of `voices` (from {@link detectEspeak}), optionally with
 * a variant (`en-us+f3`). Without a list, whether it has the shape of one (a lower-case language
 * tag such as `en-us`); Google (`en-US-Neural2-J`) and OpenAI (`alloy`) voice names are not.
 */
export function isEspeakVoice(name: string, voices?: ReadonlySet<string>): boolean {
  const [base, variant, ...rest] = name.split('+');
  if (base === undefined || base === '' || rest.length > 0) return false;
  if (variant !== undefined && !/^[a-z0-9_-]+$/i.test(variant)) return false;
  if (voices) return voices.has(base.toLowerCase());
  return /^[a-z]{2,3}(-[a-z0-9]+)*$/.test(base);
}

/** Removes control characters (espeak-ng would read some of them as commands) and collapses spaces. */
function cleanText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * Text-to-speech with espeak-ng run as a child process (never a shell): the text goes in on stdin,
 * the WAV it writes on stdout (22 050 Hz) is resampled to 8 kHz. Intelligible, robotic, free and
 * instant; the default engine when no cloud credentials are set and espeak-ng is installed.
 * `synthesize` options: `voice` is an espeak-ng voice; `language` (`en-US`) picks the voice of that
 * language when no voice is given.
 */
export class EspeakTtsEngine implements TtsEngine {
  readonly name = 'espeak';
  readonly cacheId: string;
  readonly voice: string;
  readonly rate: number;
  readonly pitch: number;
  readonly command: string;
  private readonly timeoutMs: number;
  private readonly queue: PQueue;
  private closed = false;

  constructor(options: EspeakTtsOptions = {}) {
    this.voice = options.voice ?? ESPEAK_DEFAULT_VOICE;
    this.rate = Math.round(Math.min(450, Math.max(80, options.rate ?? 160)));
    this.pitch = Math.round(Math.min(99, Math.max(0, options.pitch ?? 50)));
    this.command = options.command ?? ESPEAK_COMMAND;
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.queue = new PQueue({
      concurrency: Math.max(1, Math.floor(options.concurrency ?? Math.min(4, availableParallelism()))),
    });
    this.cacheId = `espeak|v1|${options.version ?? ''}|${this.voice}|${this.rate}|${this.pitch}`;
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    throwIfAborted(options.signal);
    if (this.closed) throw new SpeechEngineError(this.name, 'the engine is closed');
    const clean = cleanText(text);
    if (clean === '') return new Int16Array(0);
    const voice = options.voice ?? (options.language ? options.language.toLowerCase() : this.voice);
    if (!isEspeakVoice(voice)) {
      throw new SpeechEngineError(
        this.name,
        `${JSON.stringify(voice)} is not an espeak-ng voice (e.g. en-us)`,
      );
    }
    const job = this.queue.add(() => this.render(clean, voice, options.signal));
    return raceAbort(job as Promise<Int16Array>, options.signal);
  }

  private async render(text: string, voice: string, signal: AbortSignal | undefined): Promise<Int16Array> {
    throwIfAborted(signal);
    if (this.closed) throw new SpeechEngineError(this.name, 'the engine is closed');
    const args = [
      '--stdout',
      '--stdin',
      '-b',
      '1',
      '-v',
      voice,
      '-s',
      String(this.rate),
      '-p',
      String(this.pitch),
    ];
    let result: RunResult;
    try {
      result = await run(this.command, args, {
        input: `${text}\n`,
        timeoutMs: this.timeoutMs,
        // About 10 minutes of 22 kHz audio: beyond that something is wrong.
        maxBytes: 32 * 1024 * 1024,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        throw new SpeechEngineError(
          this.name,
          `${this.command} was not found: install espeak-ng (apt-get install espeak-ng, brew install espeak-ng)`,
          { cause: error },
        );
      }
      throw new SpeechEngineError(this.name, e.message, { cause: error });
    }
    if (result.code !== 0 || result.stdout.length === 0) {
      const why = result.stderr || `no audio (exit code ${result.code})`;
      throw new SpeechEngineError(this.name, `voice ${JSON.stringify(voice)}: ${why}`);
    }
    try {
      return decodeWav(result.stdout);
    } catch (error) {
      throw new SpeechEngineError(this.name, `unreadable WAV: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Refuses new work: queued syntheses reject, those under way finish. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
