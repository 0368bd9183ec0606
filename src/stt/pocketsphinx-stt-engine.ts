/**
 * A local speech-to-text engine on CMU PocketSphinx, run as a child process (Debian 12 / Ubuntu:
 * `apt-get install pocketsphinx pocketsphinx-en-us`, which ship `pocketsphinx_continuous` 5prealpha
 * and the US English model). No network, no account; accurate only for a small closed vocabulary
 * given as hints (yes/no): see the README for measurements.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { SpeechEngineError } from '../errors.js';
import { resamplePcm16 } from '../media/resample.js';
import { encodeWav } from '../media/wav.js';
import { raceAbort, SPEECH_SAMPLE_RATE, throwIfAborted } from '../tts/tts-engine.js';
import type { SttEngine, TranscribeOptions } from './stt-engine.js';

/** The program run by default. */
export const POCKETSPHINX_COMMAND = 'pocketsphinx_continuous';

/** The pronunciation dictionary of the Debian `pocketsphinx-en-us` package. */
export const POCKETSPHINX_EN_US_DICT = '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict';

/** The sample rate of the en-us acoustic model. */
const MODEL_RATE = 16000;

/** Options of {@link PocketsphinxSttEngine}. */
export interface PocketsphinxSttOptions {
  /** The program. Default `pocketsphinx_continuous` (on the PATH). */
  command?: string;
  /** The pronunciation dictionary: hint words not in it are left out of the grammar. Default: Debian's en-us one. */
  dictionary?: string;
  /**
   * Without hints, recognise with the model's general language model. Off by default: on telephone
   * audio it recognised none of the test phrases (see the README), so an utterance without hints
   * gives `''` (nothing recognised) rather than a wrong transcript.
   */
  openVocabulary?: boolean;
  /** Recognitions run at once. Default 2. */
  concurrency?: number;
  /** Time limit of one recognition, in milliseconds. Default 15 000. */
  timeoutMs?: number;
  /** Utterances shorter than this resolve to `''` without running the recogniser. Default 100 ms. */
  minDurationMs?: number;
}

const detections = new Map<string, Promise<boolean>>();

/** Whether `command` runs (once per command and PATH, cached). */
export function detectPocketsphinx(command: string = POCKETSPHINX_COMMAND): Promise<boolean> {
  const key = `${command}\0${process.env.PATH ?? ''}`;
  let found = detections.get(key);
  if (!found) {
    found = new Promise<boolean>((resolve) => {
      // With no arguments it prints its option table and exits; a missing program is ENOENT.
      const child = spawn(command, ['-logfn', '/dev/null'], { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve(signal === null && code !== null && code !== 127);
      });
    });
    detections.set(key, found);
  }
  return found;
}

const dictionaries = new Map<string, Promise<Set<string>>>();

/** The words of a pronunciation dictionary (`word PH ON ES` per line; `word(2)` variants folded). */
function loadDictionary(path: string): Promise<Set<string>> {
  let words = dictionaries.get(path);
  if (!words) {
    words = new Promise<Set<string>>((resolve) => {
      readFile(path, 'utf8', (error, text) => {
        if (error) return resolve(new Set());
        const set = new Set<string>();
        for (const line of text.split('\n')) {
          const word = line.slice(0, line.indexOf(' ')).replace(/\(\d+\)$/, '');
          if (word) set.add(word);
        }
        resolve(set);
      });
    });
    dictionaries.set(path, words);
  }
  return words;
}

/** The words of a hint, as the dictionary spells them: lower case, letters, digits and apostrophes. */
function hintWords(hint: string): string[] {
  return hint
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .filter((w) => w !== '');
}

/**
 * A JSGF grammar accepting exactly one of the hint phrases whose words are all in `dictionary`, or
 * undefined when none is.
 */
export function hintsToJsgf(hints: readonly string[], dictionary: ReadonlySet<string>): string | undefined {
  const phrases = new Set<string>();
  for (const hint of hints) {
    const words = hintWords(hint);
    if (words.length > 0 && words.every((w) => dictionary.has(w))) phrases.add(words.join(' '));
  }
  if (phrases.size === 0) return undefined;
  return `#JSGF V1.0;\ngrammar hints;\npublic <hint> = ${[...phrases].join(' | ')} ;\n`;
}

/**
 * Speech-to-text with PocketSphinx, as a child process: the 8 kHz utterance is resampled to the
 * model's 16 kHz, written to a temporary WAV and recognised against a grammar built from the hints
 * (`prompt(q, { hints: ['yes', 'no'] })`): the transcript is one of the hints, or `''`.
 */
export class PocketsphinxSttEngine implements SttEngine {
  readonly name = 'pocketsphinx';
  readonly command: string;
  private readonly dictionary: string;
  private readonly openVocabulary: boolean;
  private readonly timeoutMs: number;
  private readonly minSamples: number;
  private readonly queue: PQueue;
  private directory: Promise<string> | undefined;
  private closed = false;

  constructor(options: PocketsphinxSttOptions = {}) {
    this.command = options.command ?? POCKETSPHINX_COMMAND;
    this.dictionary = options.dictionary ?? POCKETSPHINX_EN_US_DICT;
    this.openVocabulary = options.openVocabulary ?? false;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.minSamples = Math.round(((options.minDurationMs ?? 100) * SPEECH_SAMPLE_RATE) / 1000);
    this.queue = new PQueue({ concurrency: Math.max(1, Math.floor(options.concurrency ?? 2)) });
  }

  async transcribe(pcm: Int16Array, options: TranscribeOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    if (this.closed) throw new SpeechEngineError(this.name, 'the engine is closed');
    if (pcm.length < this.minSamples) return '';
    const hints = options.hints ?? [];
    const grammar = hints.length > 0 ? hintsToJsgf(hints, await loadDictionary(this.dictionary)) : undefined;
    if (grammar === undefined && !this.openVocabulary) return '';
    const job = this.queue.add(() => this.recognise(pcm, grammar, options.signal));
    return raceAbort(job as Promise<string>, options.signal);
  }

  private async recognise(
    pcm: Int16Array,
    grammar: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    throwIfAborted(signal);
    if (this.closed) throw new SpeechEngineError(this.name, 'the engine is closed');
    this.directory ??= mkdtemp(join(tmpdir(), 'asteramisk-pocketsphinx-'));
    const dir = await this.directory;
    const id = randomUUID();
    const wavPath = join(dir, `${id}.wav`);
    const gramPath = join(dir, `${id}.gram`);
    // Half a second of silence around the speech: the recogniser's own endpointing needs it.
    const padded = new Int16Array(pcm.length + SPEECH_SAMPLE_RATE);
    padded.set(pcm, SPEECH_SAMPLE_RATE / 2);
    await writeFile(wavPath, encodeWav(resamplePcm16(padded, SPEECH_SAMPLE_RATE, MODEL_RATE), MODEL_RATE));
    if (grammar !== undefined) await writeFile(gramPath, grammar);
    try {
      const args = ['-infile', wavPath, '-samprate', String(MODEL_RATE), '-logfn', '/dev/null'];
      if (grammar !== undefined) args.push('-jsgf', gramPath);
      return await this.run(args, signal);
    } finally {
      await rm(wavPath, { force: true });
      await rm(gramPath, { force: true });
    }
  }

  private run(args: string[], signal?: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const child = spawn(this.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(() => reject(new SpeechEngineError(this.name, `timed out after ${this.timeoutMs} ms`)));
      }, this.timeoutMs);
      const onAbort = (): void => {
        child.kill('SIGKILL');
        finish(() => reject(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        if (err.length < 4096) err += chunk;
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        const message =
          error.code === 'ENOENT'
            ? `${this.command} was not found: install pocketsphinx and pocketsphinx-en-us`
            : error.message;
        finish(() => reject(new SpeechEngineError(this.name, message, { cause: error })));
      });
      child.on('close', (code) =>
        finish(() => {
          if (code !== 0) {
            const why = err.trim().split('\n').pop() || `exit code ${code}`;
            reject(new SpeechEngineError(this.name, why));
            return;
          }
          // One line per utterance it found; together they are the transcript.
          resolve(out.trim().replace(/\s+/g, ' '));
        }),
      );
    });
  }

  /** Refuses new work and removes the temporary folder. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.onIdle();
    const dir = await this.directory?.catch(() => undefined);
    this.directory = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
