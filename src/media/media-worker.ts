import { Worker } from 'node:worker_threads';
import {
  AsteramiskError,
  ConfigError,
  InvalidInputError,
  MediaWorkerError,
  ResourceExhaustedError,
} from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import type { FirstPacketInfo, PlaybackSamples, PlaybackStream, PlayResult } from './audio-player.js';
import { decodeMulaw } from './g711.js';
import {
  AUDIO_BATCH_ENTRY,
  AUDIO_HAS_PCM,
  audioEntrySize,
  CONTROL_INTS,
  CONTROL_STOP_EPOCH,
  LEG_BLOCK_INTS,
  LEG_FRAMES_PLAYED,
  LEG_STATS,
  LEG_STOP_GENERATION,
  type LegOptions,
  type MediaCommand,
  type MediaEvent,
  type MediaEventMessage,
  type MediaMessage,
  type SerializedError,
  STATS_FIELDS,
} from './media-commands.js';
import { DEFAULT_SLOTS, Pacer, type PacerStats } from './pacer.js';
import { PlaybackCounters } from './playback-counters.js';
import {
  type AudioListener,
  checkRemote,
  type PayloadListener,
  type RtpSessionStats,
} from './rtp-session.js';

/** Options of {@link MediaWorker}. */
export interface MediaWorkerOptions {
  /** Where the worker's failure is logged. */
  logger?: Logger;
  /**
   * Nice value for the worker thread (Linux; e.g. −10), so that on a loaded host the kernel runs
   * the media clock first, as Asterisk does for its own media threads. Raising it needs
   * CAP_SYS_NICE (root); when refused the worker runs at the default priority and says so in
   * {@link MediaWorker.priority}. Default: not changed.
   */
  threadPriority?: number;
  /**
   * SCHED_FIFO priority (1–99) for the worker thread (Linux, through util-linux's `chrt`), as
   * `asterisk -p` runs Asterisk: a woken media clock then preempts every time-shared thread of the
   * host. Needs CAP_SYS_NICE (root); when refused the worker falls back to {@link threadPriority}
   * and {@link MediaWorker.priority} says why. Default: not used.
   */
  realtimePriority?: number;
  /**
   * How the worker's pacer wakes up: `precise` (default) sleeps the last millisecond before each
   * tick in a sub-millisecond wait (see media/precise-clock.ts); `timers` uses Node's timers alone
   * (whole milliseconds, 0–1.5 ms late), for comparison in bench/rtp-pacing.ts.
   */
  clock?: 'precise' | 'timers';
  /**
   * Phases of the 20 ms period over which the worker spreads its calls' frames (see
   * PacerOptions.slots), 1 to 20. Default 10: a wake-up every 2 ms, each sending a tenth of the
   * frames, which keeps each call's spacing within a fraction of a millisecond. 1 sends all frames
   * in one burst per period: a tenth of the wake-ups, for less CPU and coarser spacing (with the
   * `timers` clock, as a naive sender: at 500 calls 1.1–1.16× the naive sender's CPU against 1.2×,
   * and a p99 of 2–4 ms instead of 0.3 ms; bench/rtp-pacing.ts).
   */
  slots?: number;
}

/**
 * Starts the worker's entry: the compiled .js next to this file, or, when this module runs from its
 * .ts source (vitest, tsx), the .ts entry through tsx's loader, registered inside the worker
 * (Node 20 does not apply `--import tsx` from a worker's execArgv).
 */
function startWorker(workerData: unknown): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./media-worker-main.js', self), { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./media-worker-main.ts', self).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

function revive(error: SerializedError): Error {
  if (error.name === 'ResourceExhaustedError') return new ResourceExhaustedError(error.message);
  if (error.name === 'ConfigError') return new ConfigError(error.field ?? 'rtpBindAddress', error.message);
  if (error.name === 'InvalidInputError') return new InvalidInputError(error.message);
  return new AsteramiskError(error.message, error.code === undefined ? {} : { code: error.code });
}

let shared: MediaWorker | undefined;

/**
 * The priority the shared worker asks for (see {@link MediaWorker.shared}): a nice value, or a
 * SCHED_FIFO priority (`realtime`, `realtime:<1-99>`) with nice −10 as the fallback.
 */
function sharedThreadPriority(): { nice?: number; realtime?: number } {
  const setting = process.env.ASTERAMISK_MEDIA_PRIORITY?.trim();
  if (setting === undefined || setting === '') return { nice: -10 };
  if (setting === 'default') return {};
  const realtime = /^realtime(?::(\d+))?$/.exec(setting);
  const value = realtime ? Number(realtime[1] ?? 10) : Number(setting);
  if (realtime && value >= 1 && value <= 99) return { nice: -10, realtime: value };
  if (!realtime && Number.isInteger(value) && value >= -20 && value <= 19) return { nice: value };
  throw new ConfigError(
    'ASTERAMISK_MEDIA_PRIORITY',
    `ASTERAMISK_MEDIA_PRIORITY is ${JSON.stringify(setting)}: use a nice value from -20 to 19, "realtime" or "realtime:<1-99>" (SCHED_FIFO), or "default".`,
  );
}

/**
 * How the shared worker paces its calls' frames (see {@link MediaWorker.shared}):
 * ASTERAMISK_MEDIA_PACING `precise` (the default) or `burst` (Node's timers, one burst per period).
 */
function sharedPacing(): Pick<MediaWorkerOptions, 'clock' | 'slots'> {
  const setting = process.env.ASTERAMISK_MEDIA_PACING?.trim();
  if (setting === undefined || setting === '' || setting === 'precise') return {};
  if (setting === 'burst') return { clock: 'timers', slots: 1 };
  throw new ConfigError(
    'ASTERAMISK_MEDIA_PACING',
    `ASTERAMISK_MEDIA_PACING is ${JSON.stringify(setting)}: use "precise" (the default) or "burst".`,
  );
}
let legIds = 0;
let requestIds = 0;

/**
 * A worker thread that carries the media of many calls (their RTP sockets, the 20 ms pacer, jitter
 * buffers and G.711 coding), so the timing of their audio does not depend on what the main thread
 * is doing: handler code, ARI/AMI event parsing and GC pauses there delay commands (play, stop),
 * never the frames already queued. The main thread holds a {@link MediaLeg} per call.
 *
 * When the worker throws or exits, each of its legs fails with a {@link MediaWorkerError} (logged
 * once), and {@link MediaWorker.shared} starts a new worker for the next call. The worker keeps the process
 * alive only while it carries a leg (or answers a request).
 */
export class MediaWorker {
  readonly #worker: Worker;
  /** Shared with the worker: see CONTROL_STOP_EPOCH. */
  readonly #control = new Int32Array(new SharedArrayBuffer(CONTROL_INTS * 4));
  /** Samples sent of each playback, written by the worker (see playback-counters.ts). */
  readonly #counters = new PlaybackCounters();
  readonly #logger: Logger;
  /** Commands queued by {@link send} in the current turn, and the buffers they transfer. */
  #outbox: MediaCommand[] = [];
  #outboxTransfer: ArrayBuffer[] = [];
  readonly #legs = new Map<number, MediaLeg>();
  readonly #opening = new Map<
    number,
    { resolve: (leg: MediaLeg) => void; reject: (e: Error) => void; leg: MediaLeg }
  >();
  readonly #requests = new Map<number, (value: unknown) => void>();
  #failure: MediaWorkerError | undefined;
  #terminating = false;
  #priority = 'starting';
  readonly #pacing: string;
  /** Whether SCHED_FIFO was asked for (its refusal is then worth a warning). */
  readonly #wantsRealtime: boolean;
  #refd = true;
  #booted = false;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;

  constructor(options: MediaWorkerOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    const realtime = options.realtimePriority;
    if (realtime !== undefined && !(Number.isInteger(realtime) && realtime >= 1 && realtime <= 99))
      throw new ConfigError('realtimePriority', `realtimePriority is ${realtime}: use 1 to 99.`);
    this.#wantsRealtime = realtime !== undefined;
    const slots = options.slots;
    if (slots !== undefined && !(Number.isInteger(slots) && slots >= 1 && slots <= 20))
      throw new ConfigError('slots', `slots is ${slots}: use 1 to 20.`);
    const count = slots ?? DEFAULT_SLOTS;
    this.#pacing = `${options.clock ?? 'precise'} clock, ${count} slot${count === 1 ? '' : 's'}`;
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    this.#worker = startWorker({
      control: this.#control.buffer,
      priority: options.threadPriority,
      realtime: options.realtimePriority,
      clock: options.clock ?? 'precise',
      slots,
    });
    this.#worker.on('message', (message: MediaEventMessage) => {
      if (message.type !== 'events') {
        this.#onEvent(message);
        return;
      }
      for (const event of message.events) this.#onEvent(event);
    });
    this.#worker.on('error', (error) => {
      this.#fail(new MediaWorkerError(`The media worker threw: ${error.message}`, { cause: error }));
    });
    this.#worker.on('exit', (code) => {
      if (this.#terminating) this.#fail(new MediaWorkerError('The media worker was closed'), false);
      else this.#fail(new MediaWorkerError(`The media worker exited with code ${code}`));
    });
    // Ref'd until it is ready (someone may await `ready` with nothing else keeping the process
    // alive), then only while it has work (#updateRef).
  }

  /**
   * The process-wide worker; a new one once the previous failed. It asks for nice −10 for its
   * thread ({@link MediaWorkerOptions.threadPriority}), or the value of ASTERAMISK_MEDIA_PRIORITY
   * (`default` leaves it unchanged): on a host whose cores are busy, a thread at the default
   * priority waits its turn behind the app's own threads for several milliseconds, which the
   * audio's spacing shows (bench/ivr-load.ts --pacing-streams). Without CAP_SYS_NICE the request
   * is refused and the thread runs at the default priority. `realtime` or `realtime:<1-99>` asks
   * for SCHED_FIFO instead ({@link MediaWorkerOptions.realtimePriority}), with nice −10 as the
   * fallback. ASTERAMISK_MEDIA_PACING=burst trades the spacing of the frames for CPU: Node's timers
   * and one burst per period ({@link MediaWorkerOptions.slots}), as a naive sender times them.
   */
  static get shared(): MediaWorker {
    if (!shared || shared.failed) {
      const priority = sharedThreadPriority();
      shared = new MediaWorker({
        ...sharedPacing(),
        logger: sharedLogger,
        ...(priority.nice === undefined ? {} : { threadPriority: priority.nice }),
        ...(priority.realtime === undefined ? {} : { realtimePriority: priority.realtime }),
      });
    }
    return shared;
  }

  /** {@link shared}, whose failures (when it starts now) are logged to `logger`. */
  static sharedWith(logger: Logger): MediaWorker {
    sharedLogger = logger;
    return MediaWorker.shared;
  }

  /**
   * The worker thread's priority: 'default', 'nice -10', 'SCHED_FIFO 10', or why it was not
   * raised.
   */
  get priority(): string {
    return this.#priority;
  }

  /**
   * Resolves once the worker runs (its modules loaded), or has failed: commands sent before are
   * queued anyway; this is for a server that wants its first call not to wait for the boot.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** How the worker paces frames: its clock and its slots per period, e.g. 'precise clock, 10 slots'. */
  get pacing(): string {
    return this.#pacing;
  }

  /** Whether the worker has thrown or exited. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Legs open now. */
  get legCount(): number {
    return this.#legs.size;
  }

  /**
   * How busy the worker's event loop was since it started (0–1). With the precise clock (the
   * default) the sub-millisecond sleeps before each tick count as busy: the loop is blocked then,
   * not running code. The thread's CPU time is the measure of its cost.
   */
  utilization(): number {
    return this.#worker.performance.eventLoopUtilization().utilization;
  }

  /**
   * Binds an RTP socket in the worker on a port of `options.ports`.
   *
   * @throws {ResourceExhaustedError} when the port range is used up.
   * @throws {ConfigError} when the bind address is not local.
   * @throws {MediaWorkerError} when the worker has failed.
   */
  openLeg(options: LegOptions): Promise<MediaLeg> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = ++legIds;
    const block = new SharedArrayBuffer(LEG_BLOCK_INTS * 4);
    const leg = new MediaLeg(this, id, new Int32Array(block));
    return new Promise((resolve, reject) => {
      this.#opening.set(id, { resolve, reject, leg });
      this.#updateRef();
      this.send({ type: 'open', leg: id, block, options });
    });
  }

  /** The worker's pacer counters. */
  pacerStats(): Promise<PacerStats> {
    return this.#request((req) => ({ type: 'pacer', req })) as Promise<PacerStats>;
  }

  /** Test hook: makes the worker throw an uncaught error, as a bug in it would. */
  crashForTest(): void {
    this.send({ type: 'crash' });
  }

  /** Ends the worker; its legs fail with a MediaWorkerError (not logged). */
  async close(): Promise<void> {
    if (this.#failure) return;
    this.#terminating = true;
    await this.#worker.terminate();
  }

  /**
   * @internal Queues a command; the commands queued during one turn of the event loop go to the
   * worker together, in order, at the end of that turn (setImmediate).
   *
   * Why: every postMessage wakes the worker, and the worker (at nice −10) then preempts the main
   * thread inside the call. Under load one turn handles the ARI events of many calls, whose
   * handlers send a play, a listen, a stop each: one message for all of them costs one wake-up
   * instead of one per command (postMessage took 13 % of the main thread in the 2000-call spoken
   * IVR, about 85 µs a message under load against 1–3 µs in a tight loop). A microtask would batch
   * only one event's commands (each event's handlers settle in their own checkpoint). Stops do not
   * wait for the message: they act through shared memory at once.
   */
  send(command: MediaCommand, transfer?: ArrayBuffer[]): void {
    if (this.#failure) return;
    this.#outbox.push(command);
    if (transfer) for (const buffer of transfer) this.#outboxTransfer.push(buffer);
    if (this.#outbox.length === 1) setImmediate(() => this.#flush());
  }

  #flush(): void {
    const commands = this.#outbox;
    const transfer = this.#outboxTransfer;
    this.#outbox = [];
    this.#outboxTransfer = [];
    if (this.#failure || commands.length === 0) return;
    const message: MediaMessage = commands.length === 1 ? commands[0]! : { type: 'batch', commands };
    try {
      this.#worker.postMessage(message, transfer);
    } catch (error) {
      // A command that cannot be cloned (a bug): the others still go, one by one.
      this.#logger.error(
        { err: error instanceof Error ? error.message : String(error), commands: commands.length },
        'A batch of media commands could not be posted; posting them one by one',
      );
      for (const command of commands) {
        try {
          this.#worker.postMessage(command);
        } catch (single) {
          this.#logger.error(
            { err: single instanceof Error ? single.message : String(single), command: command.type },
            'A media command could not be posted',
          );
        }
      }
    }
  }

  /** @internal */
  request(build: (req: number) => MediaCommand): Promise<unknown> {
    return this.#request(build);
  }

  /** @internal Takes a playback's counter slot; the worker gets a new chunk of the table first. */
  takeCounter(): number {
    const { slot, chunk } = this.#counters.allocate();
    if (chunk) this.send({ type: 'counters', chunk });
    return slot;
  }

  /** @internal The samples the worker last stored for the playback in `slot`. */
  readCounter(slot: number): number {
    return this.#counters.read(slot);
  }

  /** @internal Counter slots taken and not yet given back (none once every playback ended). */
  get countersInUse(): number {
    return this.#counters.inUse;
  }

  /** @internal A leg published a stop in its block: tells the worker's clock to look (see CONTROL_STOP_EPOCH). */
  noteStop(): void {
    Atomics.add(this.#control, CONTROL_STOP_EPOCH, 1);
  }

  /** @internal */
  forget(id: number): void {
    this.#legs.delete(id);
    this.#updateRef();
  }

  /** The worker keeps the process alive while it has work (a leg, an open, a request), not when idle. */
  #updateRef(): void {
    if (this.#failure) return;
    const busy = !this.#booted || this.#legs.size + this.#opening.size + this.#requests.size > 0;
    if (busy === this.#refd) return;
    this.#refd = busy;
    if (busy) this.#worker.ref();
    else this.#worker.unref();
  }

  #request(build: (req: number) => MediaCommand): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const req = ++requestIds;
    return new Promise((resolve) => {
      this.#requests.set(req, resolve);
      this.#updateRef();
      this.send(build(req));
    });
  }

  #fail(error: MediaWorkerError, log = true): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#resolveReady();
    if (log)
      this.#logger.error(
        { err: error.message, legs: this.#legs.size + this.#opening.size },
        'The media worker failed; its calls end',
      );
    for (const { reject } of this.#opening.values()) reject(error);
    this.#opening.clear();
    for (const leg of [...this.#legs.values()]) leg.fail(error);
    this.#legs.clear();
    for (const resolve of this.#requests.values()) resolve(undefined);
    this.#requests.clear();
  }

  #onEvent(event: MediaEvent): void {
    switch (event.type) {
      case 'ready':
        this.#priority = event.priority;
        if (this.#wantsRealtime && !event.priority.startsWith('SCHED_FIFO'))
          this.#logger.warn({ priority: event.priority }, 'The media worker could not run in SCHED_FIFO');
        else this.#logger.debug({ priority: event.priority }, 'Media worker started');
        this.#booted = true;
        this.#resolveReady();
        this.#updateRef();
        return;
      case 'opened': {
        const opening = this.#opening.get(event.leg);
        if (!opening) return;
        this.#opening.delete(event.leg);
        opening.leg.opened(event.port, event.address);
        this.#legs.set(event.leg, opening.leg);
        opening.resolve(opening.leg);
        this.#updateRef();
        return;
      }
      case 'openFailed': {
        const opening = this.#opening.get(event.leg);
        this.#opening.delete(event.leg);
        opening?.reject(revive(event.error));
        this.#updateRef();
        return;
      }
      case 'audio':
        this.#onAudio(event.buffer, event.length);
        return;
      case 'ticks': {
        const now = performance.now();
        const ticks = event.ticks;
        for (let i = 0; i + 1 < ticks.length; i += 2)
          Pacer.shared.relay({ tick: ticks[i]!, idealMs: now - ticks[i + 1]!, actualMs: now });
        return;
      }
      case 'pacer':
      case 'stats': {
        const resolve = this.#requests.get(event.req);
        this.#requests.delete(event.req);
        resolve?.(event.type === 'pacer' ? event.stats : undefined);
        this.#updateRef();
        return;
      }
      case 'done':
        // The worker writes no more to the slot: it can go to the next playback.
        this.#counters.release(event.slot);
        this.#legs.get(event.leg)?.onEvent(event);
        return;
      case 'legFailed':
        this.#logger.error({ err: event.error.message, leg: event.leg }, 'A media leg failed in the worker');
        this.#legs
          .get(event.leg)
          ?.fail(new MediaWorkerError(`The media worker dropped a call: ${event.error.message}`));
        this.#legs.delete(event.leg);
        this.#updateRef();
        return;
      default:
        this.#legs.get(event.leg)?.onEvent(event);
    }
  }

  #onAudio(buffer: ArrayBuffer, length: number): void {
    const view = new DataView(buffer);
    const origin = performance.timeOrigin;
    for (let at = 0; at < length; ) {
      const id = view.getUint32(at, true);
      const n = view.getUint16(at + 4, true);
      const hasPcm = (view.getUint8(at + 6) & AUDIO_HAS_PCM) !== 0;
      const arrivedAt = view.getFloat64(at + 8, true) - origin;
      const ulaw = new Uint8Array(buffer, at + AUDIO_BATCH_ENTRY, n);
      const pcm = hasPcm ? new Int16Array(buffer, at + AUDIO_BATCH_ENTRY + ((n + 1) & ~1), n) : undefined;
      this.#legs.get(id)?.deliver(ulaw, arrivedAt, pcm);
      at += audioEntrySize(n, hasPcm);
    }
  }
}

let sharedLogger: Logger = silentLogger;

/** The main thread's side of one playback in the worker. */
interface Playback {
  id: number;
  generation: number;
  /** Its count of samples sent in the worker's counter table. */
  slot: number;
  ended: boolean;
  /** Fixed at stop() (what had gone out then) or when the worker reported the end. */
  finalSamples: number | undefined;
  requestedAt: number;
  settle: (result: PlayResult) => void;
}

/**
 * One call's RTP leg in a {@link MediaWorker}, seen from the main thread: the same surface as an
 * RtpSession with its AudioPlayer (play, stream, stop, caller audio, first-packet timing, stats),
 * as commands and events. Playback samples are copied once into a buffer that is transferred (a
 * SharedArrayBuffer-backed array is shared instead); caller audio arrives as views of the batch
 * buffer the worker transferred: copy a frame to keep it.
 */
export class MediaLeg {
  readonly #worker: MediaWorker;
  readonly id: number;
  readonly #block: Int32Array;
  #port = 0;
  #address = '';
  #generation = 0;
  #nextPlayback = 0;
  readonly #playbacks = new Map<number, Playback>();
  readonly #stopWaiters = new Map<number, () => void>();
  readonly #audioListeners = new Set<AudioListener>();
  readonly #payloadListeners = new Set<PayloadListener>();
  readonly #firstPacketListeners = new Set<(info: FirstPacketInfo) => void>();
  readonly #failureListeners = new Set<(error: MediaWorkerError) => void>();
  #listening = { ulaw: false, pcm: false };
  #closed = false;
  #closedPromise: Promise<void>;
  #resolveClosed!: () => void;
  #failure: MediaWorkerError | undefined;
  #frozenStats: (RtpSessionStats & { framesPlayed: number }) | undefined;

  /** @internal */
  constructor(worker: MediaWorker, id: number, block: Int32Array) {
    this.#worker = worker;
    this.id = id;
    this.#block = block;
    this.#closedPromise = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** @internal */
  opened(port: number, address: string): void {
    this.#port = port;
    this.#address = address;
  }

  get localPort(): number {
    return this.#port;
  }

  get localAddress(): string {
    return this.#address;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The worker's failure, once it failed. */
  get failure(): MediaWorkerError | undefined {
    return this.#failure;
  }

  /** Whether a playback is queued or playing. */
  get playing(): boolean {
    return this.#playbacks.size > 0;
  }

  /**
   * The counters of the leg as the worker last published them (every second, and at each
   * {@link fetchStats}); exact after {@link fetchStats} or close.
   */
  get stats(): RtpSessionStats & { framesPlayed: number } {
    if (this.#frozenStats) return { ...this.#frozenStats };
    const out = { framesPlayed: Atomics.load(this.#block, LEG_FRAMES_PLAYED) } as RtpSessionStats & {
      framesPlayed: number;
    };
    for (let i = 0; i < STATS_FIELDS.length; i++)
      out[STATS_FIELDS[i]!] = Atomics.load(this.#block, LEG_STATS + i);
    return out;
  }

  /** The exact counters, asked of the worker. */
  async fetchStats(): Promise<RtpSessionStats & { framesPlayed: number }> {
    if (!this.#closed) await this.#worker.request((req) => ({ type: 'stats', leg: this.id, req }));
    return this.stats;
  }

  /** Called with the worker's failure (not for a normal close); returns the remover. */
  onFailure(listener: (error: MediaWorkerError) => void): () => void {
    this.#failureListeners.add(listener);
    return () => {
      this.#failureListeners.delete(listener);
    };
  }

  /** @throws {InvalidInputError} for an address that is not an IP or a port out of range. */
  setRemote(address: string, port: number): void {
    const normalised = checkRemote(address, port);
    this.#worker.send({ type: 'remote', leg: this.id, address: normalised, port });
  }

  play(pcm: Int16Array): Promise<PlayResult> {
    return this.#open('pcm', pcm, true).done;
  }

  playUlaw(ulaw: Uint8Array): Promise<PlayResult> {
    return this.#open('ulaw', ulaw, true).done;
  }

  stream(): PlaybackStream<Int16Array> {
    return this.#open('pcm', undefined, false);
  }

  streamUlaw(): PlaybackStream<Uint8Array> {
    return this.#open('ulaw', undefined, false);
  }

  /**
   * Stops every playback: published in shared memory at once (the worker checks it before each
   * frame, so nothing of them goes out after this call, the few microseconds of a frame being sent
   * aside), resolved at the worker's next tick.
   */
  stop(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#generation++;
    Atomics.store(this.#block, LEG_STOP_GENERATION, this.#generation);
    // After the leg's own generation: the worker that sees the new epoch then sees that too.
    this.#worker.noteStop();
    let active = false;
    for (const playback of this.#playbacks.values()) {
      active = true;
      if (playback.generation < this.#generation && playback.finalSamples === undefined)
        playback.finalSamples = this.#worker.readCounter(playback.slot);
    }
    if (!active) {
      this.#worker.send({ type: 'stop', leg: this.id, req: 0 });
      return Promise.resolve();
    }
    const req = ++requestIds;
    const stopped = new Promise<void>((resolve) => this.#stopWaiters.set(req, resolve));
    this.#worker.send({ type: 'stop', leg: this.id, req });
    return stopped;
  }

  onAudio(listener: AudioListener): () => void {
    this.#audioListeners.add(listener);
    this.#updateListening();
    return () => {
      this.#audioListeners.delete(listener);
      this.#updateListening();
    };
  }

  onPayload(listener: PayloadListener): () => void {
    this.#payloadListeners.add(listener);
    this.#updateListening();
    return () => {
      this.#payloadListeners.delete(listener);
      this.#updateListening();
    };
  }

  onFirstPacket(listener: (info: FirstPacketInfo) => void): () => void {
    this.#firstPacketListeners.add(listener);
    return () => {
      this.#firstPacketListeners.delete(listener);
    };
  }

  /** Closes the socket in the worker (the port is free again when this resolves). Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#settleAll();
      this.#worker.send({ type: 'close', leg: this.id });
      if (this.#worker.failed) this.#resolveClosed();
    }
    return this.#closedPromise;
  }

  /** @internal The worker failed: everything ends now. */
  fail(error: MediaWorkerError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#frozenStats = this.stats;
    const wasClosed = this.#closed;
    this.#closed = true;
    this.#settleAll();
    this.#resolveClosed();
    if (wasClosed) return;
    for (const listener of this.#failureListeners) {
      try {
        listener(error);
      } catch {
        // A failure listener must not stop the others.
      }
    }
  }

  /** @internal */
  onEvent(event: MediaEvent): void {
    switch (event.type) {
      case 'first': {
        const playback = this.#playbacks.get(event.pb);
        if (!playback || this.#firstPacketListeners.size === 0) return;
        const sentAt = event.sentAt - performance.timeOrigin;
        const info: FirstPacketInfo = {
          requestedAt: playback.requestedAt,
          sentAt,
          latencyMs: sentAt - playback.requestedAt,
        };
        for (const listener of this.#firstPacketListeners) {
          try {
            listener(info);
          } catch {
            // As AudioPlayer: a throwing observer does not stop the others.
          }
        }
        return;
      }
      case 'done': {
        const playback = this.#playbacks.get(event.pb);
        if (!playback) return;
        playback.finalSamples ??= event.sentSamples;
        playback.settle(event.result);
        return;
      }
      case 'stopped': {
        const resolve = this.#stopWaiters.get(event.req);
        this.#stopWaiters.delete(event.req);
        resolve?.();
        return;
      }
      case 'closed':
        this.#frozenStats = this.stats;
        this.#worker.forget(this.id);
        this.#resolveClosed();
        return;
      default:
        return;
    }
  }

  /** @internal Caller audio from the worker's batch. */
  deliver(ulaw: Uint8Array, arrivedAt: number, pcm: Int16Array | undefined): void {
    if (this.#closed) return;
    for (const listener of this.#payloadListeners) {
      try {
        listener(ulaw, arrivedAt);
      } catch {
        // As RtpSession: one faulty consumer must not starve the others.
      }
    }
    if (this.#audioListeners.size === 0) return;
    const frame = pcm ?? decodeMulaw(ulaw);
    for (const listener of this.#audioListeners) {
      try {
        listener(frame);
      } catch {
        // Same.
      }
    }
  }

  #updateListening(): void {
    const ulaw = this.#payloadListeners.size > 0;
    const pcm = this.#audioListeners.size > 0;
    if (this.#closed || (ulaw === this.#listening.ulaw && pcm === this.#listening.pcm)) return;
    this.#listening = { ulaw, pcm };
    const since = performance.timeOrigin + performance.now();
    this.#worker.send({ type: 'listen', leg: this.id, ulaw, pcm, since });
  }

  #settleAll(): void {
    for (const playback of [...this.#playbacks.values()]) {
      playback.finalSamples ??= this.#worker.readCounter(playback.slot);
      playback.settle('stopped');
    }
    for (const resolve of this.#stopWaiters.values()) resolve();
    this.#stopWaiters.clear();
  }

  #open<T extends PlaybackSamples>(
    encoding: 'pcm' | 'ulaw',
    samples: T | undefined,
    whole: boolean,
  ): PlaybackStream<T> {
    const id = ++this.#nextPlayback;
    let settle!: (result: PlayResult) => void;
    const done = new Promise<PlayResult>((resolve) => {
      settle = resolve;
    });
    const playback: Playback = {
      id,
      generation: this.#generation,
      slot: -1,
      ended: whole,
      finalSamples: undefined,
      requestedAt: performance.now(),
      settle: (result) => {
        this.#playbacks.delete(id);
        settle(result);
      },
    };
    if (this.#closed) {
      playback.finalSamples = 0;
      settle('stopped');
    } else {
      playback.slot = this.#worker.takeCounter();
      this.#playbacks.set(id, playback);
      const [data, transfer] = samples && samples.length > 0 ? forTransfer(samples) : [undefined, []];
      this.#worker.send(
        {
          type: 'play',
          leg: this.id,
          pb: id,
          slot: playback.slot,
          pcm: encoding === 'pcm',
          data,
          end: whole,
          generation: playback.generation,
        },
        transfer,
      );
    }
    const worker = this.#worker;
    const accepts = (): boolean =>
      !this.#closed && !playback.ended && playback.generation === this.#generation;
    return {
      done,
      get sentSamples() {
        return playback.finalSamples ?? worker.readCounter(playback.slot);
      },
      write: (more: T) => {
        if (!accepts()) return false;
        if (more.length > 0) {
          const [data, transfer] = forTransfer(more);
          this.#worker.send({ type: 'write', leg: this.id, pb: id, data }, transfer);
        }
        return true;
      },
      end: () => {
        if (!accepts()) return;
        playback.ended = true;
        this.#worker.send({ type: 'end', leg: this.id, pb: id });
      },
    };
  }
}

/**
 * Samples ready to post: an array over shared memory as it is (nothing copied), anything else
 * copied once into a buffer of its own that is transferred (the caller's array may be a view of a
 * larger buffer, a pooled Buffer, or reused).
 */
function forTransfer<T extends PlaybackSamples>(samples: T): [T, ArrayBuffer[]] {
  if (samples.buffer instanceof SharedArrayBuffer) return [samples, []];
  // Not samples.slice(): on a Buffer that is a view of the same memory.
  const copy = (samples instanceof Int16Array ? new Int16Array(samples) : new Uint8Array(samples)) as T;
  return [copy, [copy.buffer as ArrayBuffer]];
}
