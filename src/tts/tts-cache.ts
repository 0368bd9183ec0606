import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, SpeechEngineError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { encodeMulaw } from '../media/g711.js';
import { int16ToPcm16le, pcm16leToInt16 } from '../media/pcm16.js';
import { encodeWav, readWav, WAV_FORMAT } from '../media/wav.js';
import {
  raceAbort,
  SPEECH_SAMPLE_RATE,
  type SynthesizeOptions,
  type TtsEngine,
  throwIfAborted,
} from './tts-engine.js';

/**
 * On-disk format (version 1). One file per utterance, `<directory>/<key>.wav`, where `key` is the
 * 64-hex-digit cache key. Each file is a canonical 8 kHz mono 16-bit PCM WAV (playable by Asterisk,
 * sox or any player) followed, after the `data` chunk, by a 32-byte `asum` chunk holding the SHA-256
 * of the PCM bytes. A file whose header, length or checksum does not match is ignored and the text is
 * synthesized again (and the file replaced). Files are written to a temporary name in the same
 * folder, then renamed: a crash leaves either the old file, the new file, or a stray `.tmp`.
 */
const FORMAT_VERSION = 'asteramisk-tts-v1';
const CHECKSUM_CHUNK = 'asum';

/**
 * Default in-memory budget: 64 MiB, about 70 minutes of 8 kHz 16-bit audio (about 47 minutes when
 * every prompt is also held as µ-law, see {@link CachedTts.speakUlaw}).
 */
export const DEFAULT_TTS_MEMORY_BYTES = 64 * 1024 * 1024;

/**
 * A cache shared by several app instances (Redis, see src/cluster/redis-tts-store.ts), behind the
 * memory and disk layers, so that a prompt is synthesized once per fleet. Failures of the store are
 * logged and the speech goes on without it.
 */
export interface SharedTtsStore {
  /** The audio cached under `key` by any instance, or undefined. */
  get(key: string): Promise<Int16Array | undefined>;
  /** Caches the audio of `key` for every instance. */
  put(key: string, pcm: Int16Array): Promise<void>;
  /**
   * Claims the synthesis of `key` for `ttlMs`: true when this instance is to synthesize it; false
   * when another one already is (this one then waits for its result in the store).
   */
  claim(key: string, ttlMs: number): Promise<boolean>;
}

/** How long an instance waits for another one's synthesis of the same prompt before doing it itself. */
const SHARED_WAIT_MS = 10_000;
/** How often it looks for that result meanwhile. */
const SHARED_POLL_MS = 50;

/** Options of {@link CachedTts}. */
export interface CachedTtsOptions {
  /**
   * In-memory budget in bytes of audio: the PCM of each utterance, plus its µ-law once
   * {@link CachedTts.speakUlaw} asked for it (LRU eviction beyond it). 0 disables the memory layer.
   * Default 64 MiB.
   */
  memoryBytes?: number;
  /** Folder of the persistent cache (created if missing). Without it, the cache lives in memory only. */
  directory?: string;
  /** Where disk problems (unwritable folder, corrupt file) are reported. Silent by default. */
  logger?: Logger;
  /** A cache shared with other instances, behind memory and disk. */
  shared?: SharedTtsStore;
}

/** Counters of a {@link CachedTts}; a snapshot is returned by {@link CachedTts.stats}. */
export interface TtsCacheStats {
  /** `speak` and `speakUlaw` calls with non-empty text. */
  requests: number;
  /** Requests answered without synthesis: from memory or from disk. */
  hits: number;
  memoryHits: number;
  diskHits: number;
  /** Requests answered from the shared store (another instance synthesized them). */
  sharedHits: number;
  /** Requests whose audio had to be synthesized (including those that joined that synthesis). */
  misses: number;
  /** Requests that joined a load or synthesis already in flight for the same key. */
  coalesced: number;
  /** Calls made to the engine's `synthesize` (failed ones included). */
  synthCalls: number;
  /** Failed engine calls (never cached); cancellations are not counted. */
  errors: number;
  /**
   * Seconds spent in the engine's `synthesize`, summed over every call that ended (succeeded,
   * failed or was cancelled); see {@link CachedTts.observeSyntheses} for each call's time.
   */
  synthSeconds: number;
  /** Files found on disk but unusable (truncated, wrong format, bad checksum). */
  corruptFiles: number;
  /** Files that could not be written (the audio was still returned). */
  diskWriteErrors: number;
  /** Bytes of audio held in memory now: PCM, plus µ-law where {@link CachedTts.speakUlaw} made it. */
  memoryBytes: number;
  /** Utterances held in memory now. */
  memoryEntries: number;
}

/** How one engine call ended: `aborted` when every request for it was cancelled. */
export type SynthesisOutcome = 'ok' | 'error' | 'aborted';

/** One finished engine call, given to the listeners of {@link CachedTts.observeSyntheses}. */
export interface SynthesisInfo {
  /** Wall-clock time the engine's `synthesize` took, in seconds. */
  readonly seconds: number;
  readonly outcome: SynthesisOutcome;
  /** Characters of the (whitespace-normalized) text. */
  readonly characters: number;
}

type Source = 'disk' | 'engine';

/** One utterance in the memory layer. */
interface MemoryEntry {
  readonly pcm: Int16Array;
  /** Its µ-law over a SharedArrayBuffer, made on the first {@link CachedTts.speakUlaw} for it. */
  ulaw: Uint8Array | undefined;
}

/** Bytes an entry holds against the memory budget. */
function entryBytes(entry: MemoryEntry): number {
  return entry.pcm.byteLength + (entry.ulaw?.byteLength ?? 0);
}

/**
 * µ-law of `pcm` in shared memory: the media worker is handed such an array as it is, where any
 * other array is copied on every playback.
 */
function sharedUlaw(pcm: Int16Array): Uint8Array {
  const ulaw = new Uint8Array(new SharedArrayBuffer(pcm.length));
  ulaw.set(encodeMulaw(pcm));
  return ulaw;
}

interface Flight {
  /** Resolves as soon as the audio is known (before the disk write). */
  readonly result: Promise<{ pcm: Int16Array; source: Source }>;
  /** Settles when the flight is over, disk write included; the flight leaves the map then. */
  readonly done: Promise<void>;
  readonly controller: AbortController;
  waiters: number;
  settled: boolean;
}

/** Collapses whitespace runs and trims: "Hello,\n  world" and "Hello, world" are one prompt. */
export function normalizeTtsText(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * A content-addressed cache in front of a {@link TtsEngine}: a repeated prompt is synthesized once,
 * then served from memory (LRU, capped in bytes) or from disk (survives restarts, see the format
 * above). Concurrent requests for the same key share one synthesis (single flight); failures are not
 * cached, so the next request tries again.
 *
 * The key is SHA-256 of the format version, the engine's `cacheId` (or `name`), the voice, the
 * language and the whitespace-normalized text. Arrays returned by {@link speak} are copies: callers
 * may modify them; those of {@link speakUlaw} are the cache's own, shared and read-only.
 */
export class CachedTts {
  readonly engine: TtsEngine;
  readonly directory: string | undefined;
  private readonly memoryLimit: number;
  private readonly logger: Logger;
  private readonly shared: SharedTtsStore | undefined;
  private readonly memory = new Map<string, MemoryEntry>();
  private memoryUsed = 0;
  private readonly flights = new Map<string, Flight>();
  private directoryReady: Promise<void> | undefined;
  private readonly counters = {
    requests: 0,
    hits: 0,
    memoryHits: 0,
    diskHits: 0,
    sharedHits: 0,
    misses: 0,
    coalesced: 0,
    synthCalls: 0,
    errors: 0,
    corruptFiles: 0,
    diskWriteErrors: 0,
    synthSeconds: 0,
  };
  private readonly synthObservers = new Set<(info: SynthesisInfo) => void>();

  constructor(engine: TtsEngine, options: CachedTtsOptions = {}) {
    const memoryBytes = options.memoryBytes ?? DEFAULT_TTS_MEMORY_BYTES;
    if (!Number.isFinite(memoryBytes) || memoryBytes < 0) {
      throw new ConfigError(
        'memoryBytes',
        `TTS cache memoryBytes is invalid: ${memoryBytes}; use a number of bytes >= 0 (0 disables the memory cache).`,
      );
    }
    this.engine = engine;
    this.memoryLimit = Math.floor(memoryBytes);
    this.directory = options.directory;
    this.logger = options.logger ?? silentLogger;
    this.shared = options.shared;
  }

  /** The cache key of `text` with these options (64 hex digits), also the file's base name on disk. */
  cacheKey(text: string, options: Pick<SynthesizeOptions, 'voice' | 'language'> = {}): string {
    const identity = [
      FORMAT_VERSION,
      this.engine.cacheId ?? this.engine.name,
      options.voice ?? '',
      options.language ?? '',
      normalizeTtsText(text),
    ];
    return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
  }

  /** The path of the cached file for `key`, or undefined without a directory. */
  filePath(key: string): string | undefined {
    return this.directory === undefined ? undefined : join(this.directory, `${key}.wav`);
  }

  /**
   * The audio of `text` (8 kHz mono 16-bit PCM): from memory, else from disk, else synthesized once
   * and stored. Empty or blank text gives an empty array without calling the engine.
   *
   * @throws {SpeechEngineError} when the engine fails (not cached), or `options.signal.reason` on abort.
   */
  async speak(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    const found = await this.load(text, options);
    return found ? found.pcm.slice() : new Int16Array(0);
  }

  /**
   * The same audio as {@link speak}, as 8 kHz G.711 µ-law (one byte per sample), what the call's
   * PCMU leg sends: encoded once per cached utterance, on its first request, and kept in memory next
   * to its PCM (counted in the budget, evicted with it). Loads, syntheses, coalescing, aborts, disk
   * and shared store are those of {@link speak} (which store PCM). Empty or blank text gives an
   * empty array without calling the engine.
   *
   * The array is NOT a copy: it lives in a SharedArrayBuffer owned by the cache and handed to every
   * caller of the same prompt (and to the media worker without copying). Treat it as read-only;
   * writing to it would change the prompt for every later call. Copy it (`slice()`) to modify it.
   *
   * @throws {SpeechEngineError} when the engine fails (not cached), or `options.signal.reason` on abort.
   */
  async speakUlaw(text: string, options: SynthesizeOptions = {}): Promise<Uint8Array> {
    const found = await this.load(text, options);
    if (!found) return new Uint8Array(0);
    const entry = this.memory.get(found.key);
    // Not in memory (layer off, utterance over budget, evicted meanwhile, or replaced by a later
    // load of the key): encode this call's copy, uncached.
    if (entry?.pcm !== found.pcm) return sharedUlaw(found.pcm);
    if (entry.ulaw) return entry.ulaw;
    const ulaw = sharedUlaw(entry.pcm);
    // PCM alone fitted the budget, PCM plus µ-law may not: then keep the PCM and serve this copy.
    if (entryBytes(entry) + ulaw.byteLength > this.memoryLimit) return ulaw;
    entry.ulaw = ulaw;
    this.memoryUsed += ulaw.byteLength;
    this.touch(found.key, entry);
    this.evict();
    return ulaw;
  }

  /**
   * The cached PCM of `text` (not copied: callers copy or encode it), through memory, disk, shared
   * store or engine, with request counting, single flight and aborts. Undefined for blank text.
   */
  private async load(
    text: string,
    options: SynthesizeOptions,
  ): Promise<{ key: string; pcm: Int16Array } | undefined> {
    const normalized = normalizeTtsText(text);
    if (normalized === '') return undefined;
    throwIfAborted(options.signal);
    this.counters.requests++;
    const key = this.cacheKey(normalized, options);

    const cached = this.memory.get(key);
    if (cached) {
      this.touch(key, cached);
      this.counters.hits++;
      this.counters.memoryHits++;
      return { key, pcm: cached.pcm };
    }

    let flight = this.flights.get(key);
    if (flight) this.counters.coalesced++;
    else flight = this.startFlight(key, normalized, options);
    flight.waiters++;
    let left = false;
    try {
      const { pcm, source } = await raceAbort(flight.result, options.signal, () => {
        left = true;
        this.leave(key, flight);
      });
      if (source === 'disk') this.counters.hits++;
      else this.counters.misses++;
      return { key, pcm };
    } finally {
      if (!left) flight.waiters--;
    }
  }

  /** A snapshot of the counters. */
  stats(): TtsCacheStats {
    return { ...this.counters, memoryBytes: this.memoryUsed, memoryEntries: this.memory.size };
  }

  /**
   * Calls `listener` once per finished engine call (not for cache hits), with its duration and
   * outcome: a histogram of synthesis times, for instance. Returns a function that removes it.
   * A listener that throws is ignored (the speech still goes out).
   */
  observeSyntheses(listener: (info: SynthesisInfo) => void): () => void {
    this.synthObservers.add(listener);
    return () => {
      this.synthObservers.delete(listener);
    };
  }

  /** Drops the memory layer (the disk layer stays). */
  clearMemory(): void {
    this.memory.clear();
    this.memoryUsed = 0;
  }

  /** Resolves when every load, synthesis and disk write in progress has finished. */
  async flush(): Promise<void> {
    while (this.flights.size > 0) {
      await Promise.allSettled([...this.flights.values()].map((f) => f.done));
    }
  }

  /** Waits for pending work ({@link flush}), then closes the engine. */
  async close(): Promise<void> {
    await this.flush();
    await this.engine.close?.();
  }

  /** A waiter gave up (its signal aborted): when nobody is left waiting, cancel the synthesis. */
  private leave(key: string, flight: Flight): void {
    flight.waiters--;
    if (flight.waiters === 0 && !flight.settled) {
      // Let the next request start afresh instead of joining a flight that is being cancelled.
      if (this.flights.get(key) === flight) this.flights.delete(key);
      flight.controller.abort(new Error('every request for this utterance was aborted'));
    }
  }

  private startFlight(key: string, text: string, options: SynthesizeOptions): Flight {
    const controller = new AbortController();
    let writeToDisk: Promise<void> = Promise.resolve();
    const result = (async (): Promise<{ pcm: Int16Array; source: Source }> => {
      const fromDisk = await this.readFile(key);
      if (fromDisk) {
        this.counters.diskHits++;
        this.remember(key, fromDisk);
        return { pcm: fromDisk, source: 'disk' };
      }
      const fromShared = await this.fromShared(key, controller.signal);
      if (fromShared) {
        this.counters.sharedHits++;
        this.remember(key, fromShared);
        writeToDisk = this.writeFile(key, fromShared);
        return { pcm: fromShared, source: 'disk' };
      }
      this.counters.synthCalls++;
      const started = performance.now();
      let pcm: Int16Array;
      try {
        pcm = await this.engine.synthesize(text, {
          ...(options.voice !== undefined && { voice: options.voice }),
          ...(options.language !== undefined && { language: options.language }),
          signal: controller.signal,
        });
      } catch (error) {
        const aborted = controller.signal.aborted;
        if (!aborted) this.counters.errors++;
        this.synthesized(started, aborted ? 'aborted' : 'error', text.length);
        throw error;
      }
      if (!(pcm instanceof Int16Array)) {
        this.counters.errors++;
        this.synthesized(started, 'error', text.length);
        throw new SpeechEngineError(this.engine.name, 'synthesize() did not return an Int16Array');
      }
      this.synthesized(started, 'ok', text.length);
      this.remember(key, pcm);
      writeToDisk = this.writeFile(key, pcm);
      this.shared
        ?.put(key, pcm)
        .catch((error: unknown) => this.logger.warn({ err: String(error) }, 'shared TTS cache write failed'));
      return { pcm, source: 'engine' };
    })();
    const done = result.then(
      () => writeToDisk,
      () => {},
    );
    const flight: Flight = { result, done, controller, waiters: 0, settled: false };
    void result.then(
      () => {
        flight.settled = true;
        // Without a disk layer the flight is over now; later requests must not join it.
        if (this.directory === undefined && this.flights.get(key) === flight) this.flights.delete(key);
      },
      () => {
        flight.settled = true;
        // Errors are not cached: the next request starts a new flight.
        if (this.flights.get(key) === flight) this.flights.delete(key);
      },
    );
    void done.then(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    });
    this.flights.set(key, flight);
    return flight;
  }

  /**
   * The audio from the shared store: there already, or synthesized meanwhile by the instance that
   * claimed it (waited for up to SHARED_WAIT_MS). Undefined when this instance is to synthesize it.
   */
  private async fromShared(key: string, signal: AbortSignal): Promise<Int16Array | undefined> {
    const shared = this.shared;
    if (!shared) return undefined;
    try {
      const found = await shared.get(key);
      if (found) return found;
      if (await shared.claim(key, SHARED_WAIT_MS)) return undefined;
      const deadline = performance.now() + SHARED_WAIT_MS;
      while (performance.now() < deadline && !signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve, SHARED_POLL_MS));
        const ready = await shared.get(key);
        if (ready) return ready;
      }
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'shared TTS cache unavailable; synthesizing here');
    }
    return undefined;
  }

  /** Adds an engine call's time to the sum and tells the observers. */
  private synthesized(started: number, outcome: SynthesisOutcome, characters: number): void {
    const seconds = (performance.now() - started) / 1000;
    this.counters.synthSeconds += seconds;
    if (this.synthObservers.size === 0) return;
    const info: SynthesisInfo = { seconds, outcome, characters };
    for (const listener of this.synthObservers) {
      try {
        listener(info);
      } catch (error) {
        this.logger.warn({ err: error }, 'TTS synthesis observer threw; ignored');
      }
    }
  }

  private remember(key: string, pcm: Int16Array): void {
    if (pcm.byteLength > this.memoryLimit) return;
    const previous = this.memory.get(key);
    if (previous) {
      this.memory.delete(key);
      this.memoryUsed -= entryBytes(previous);
    }
    this.memory.set(key, { pcm, ulaw: undefined });
    this.memoryUsed += pcm.byteLength;
    this.evict();
  }

  /** Marks `key` most recently used: Map iteration order is insertion order, so re-insert at the end. */
  private touch(key: string, entry: MemoryEntry): void {
    this.memory.delete(key);
    this.memory.set(key, entry);
  }

  /** Drops least recently used entries (PCM and µ-law together) until the budget is met. */
  private evict(): void {
    for (const [oldKey, oldEntry] of this.memory) {
      if (this.memoryUsed <= this.memoryLimit) break;
      this.memory.delete(oldKey);
      this.memoryUsed -= entryBytes(oldEntry);
    }
  }

  /** The cached audio on disk, or undefined when absent or unusable (then logged and counted). */
  private async readFile(key: string): Promise<Int16Array | undefined> {
    const path = this.filePath(key);
    if (path === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn({ err: error, path }, 'TTS cache file unreadable; synthesizing again');
      }
      return undefined;
    }
    const pcm = decodeCacheFile(bytes);
    if (!pcm) {
      this.counters.corruptFiles++;
      this.logger.warn({ path, bytes: bytes.length }, 'TTS cache file corrupt; synthesizing again');
    }
    return pcm;
  }

  private async writeFile(key: string, pcm: Int16Array): Promise<void> {
    const path = this.filePath(key);
    if (path === undefined || this.directory === undefined) return;
    const directory = this.directory;
    const temp = join(directory, `.${key}.${process.pid}.${randomUUID()}.tmp`);
    try {
      this.directoryReady ??= mkdir(directory, { recursive: true }).then(() => {});
      await this.directoryReady;
      await writeFile(temp, encodeCacheFile(pcm));
      await rename(temp, path);
    } catch (error) {
      this.directoryReady = undefined; // the folder may appear later (or be fixed): try again next time
      this.counters.diskWriteErrors++;
      this.logger.warn(
        { err: error, path },
        'TTS cache file could not be written; audio kept in memory only',
      );
      await unlink(temp).catch(() => {});
    }
  }
}

function checksum(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Encodes PCM as a cache file: an 8 kHz mono 16-bit WAV plus an `asum` (SHA-256 of the data) chunk. */
export function encodeCacheFile(pcm: Int16Array): Buffer {
  const sum = checksum(int16ToPcm16le(pcm));
  return encodeWav(pcm, SPEECH_SAMPLE_RATE, [{ id: CHECKSUM_CHUNK, data: sum }]);
}

/** Decodes a cache file; undefined when it is not exactly what {@link encodeCacheFile} writes. */
export function decodeCacheFile(bytes: Uint8Array): Int16Array | undefined {
  try {
    const wav = readWav(bytes);
    if (wav.truncated) return undefined;
    if (wav.format !== WAV_FORMAT.PCM || wav.channels !== 1 || wav.bitsPerSample !== 16) return undefined;
    if (wav.sampleRate !== SPEECH_SAMPLE_RATE || wav.data.length % 2 !== 0) return undefined;
    const sum = wav.chunks.find((c) => c.id === CHECKSUM_CHUNK);
    if (!sum?.data.equals(checksum(wav.data))) return undefined;
    return pcm16leToInt16(wav.data);
  } catch {
    return undefined;
  }
}
