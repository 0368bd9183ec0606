import { type Logger, silentLogger } from '../logger.js';
import { FRAME_MS } from './audio-frame.js';

/** Something that sends audio on the shared clock: one frame at most per tick. */
export interface PacedStream {
  /**
   * Called once per tick while the stream is registered. Sends at most one frame. May unregister
   * the stream (or register others); those changes apply from the next tick.
   *
   * @param tick the pacer's tick counter.
   * @param dueAt the ideal time of this tick on the pacer's clock ({@link Pacer.now}); it runs at
   *   that time or a little later, never earlier. A stream that sent a frame off the clock (see
   *   AudioPlayer) compares it with that frame's time to keep its frames apart.
   */
  onTick(tick: number, dueAt: number): void;
}

/** The clock and timer the pacer runs on; injectable so tests can simulate hours in milliseconds. */
export interface PacerClock {
  /** Monotonic time in ms (performance.now()). */
  now(): number;
  /** Calls `fn` once after about `delayMs`; the timer must not keep the process alive. */
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Options of {@link Pacer}. */
export interface PacerOptions {
  /** Tick period in ms. Default 20 (one RTP frame). */
  intervalMs?: number;
  /**
   * Ticks run back to back after a stall (a long GC pause, a blocked event loop) before the
   * remaining overdue ticks are skipped. Default 2: a stall costs a short burst at most, never a
   * flood of frames that the far end's jitter buffer would drop.
   */
  maxCatchUpTicks?: number;
  clock?: PacerClock;
  /** Where a throwing stream is reported. Default: silent. */
  logger?: Logger;
}

/** Counters of a {@link Pacer}. */
export interface PacerStats {
  /** Ticks run since the pacer was created. */
  ticks: number;
  /** Overdue ticks dropped after stalls (their frames went out later, not twice as fast). */
  skippedTicks: number;
  /** Streams registered now. */
  activeStreams: number;
  /** How late the last tick ran compared with its ideal time, in ms. */
  lastLatenessMs: number;
  /** The worst lateness seen, in ms. */
  maxLatenessMs: number;
}

/** What a tick observer gets: when the tick should have run and when it did. */
export interface TickInfo {
  tick: number;
  idealMs: number;
  actualMs: number;
}

const systemClock: PacerClock = {
  now: () => performance.now(),
  setTimer: (fn, delayMs) => setTimeout(fn, delayMs).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

let shared: Pacer | undefined;

/**
 * The pacing clock of outbound audio: every `intervalMs` (20 ms) it asks each registered stream to
 * send one frame. All calls of a process share one pacer ({@link Pacer.shared}) rather than one
 * timer each: one wake-up per 20 ms however many calls are up, and the streams' packets leave in
 * the same order every tick, so each stream's spacing stays regular.
 *
 * Tick `k` of a run is due at `origin + k × interval`, and each timer is set from that ideal time,
 * not from "now + 20 ms": timer lateness never accumulates, so after ten minutes of prompt the
 * ticks are still where the ideal clock says. The timer exists only while a stream is registered.
 *
 * A stream may also send a frame off the clock (an AudioPlayer sends the first frame of a play at
 * once instead of waiting up to 20 ms for the next tick); {@link now} and the `dueAt` given to
 * {@link PacedStream.onTick} let it pass over a tick that comes too soon after that frame.
 */
export class Pacer {
  readonly #interval: number;
  readonly #maxCatchUp: number;
  readonly #clock: PacerClock;
  readonly #logger: Logger;
  readonly #streams = new Set<PacedStream>();
  readonly #observers = new Set<(info: TickInfo) => void>();
  #timer: unknown;
  #running = false;
  /** Ideal time of tick 0 of the current run. */
  #origin = 0;
  /** Index (in the current run) of the next tick to run. */
  #nextIndex = 0;
  #ticks = 0;
  #skipped = 0;
  #lastLateness = 0;
  #maxLateness = 0;
  /** Counters of the clock that runs in another thread, from its relayed ticks (see relay). */
  #relayed = { ticks: 0, skipped: 0, lastTick: -1 };

  constructor(options: PacerOptions = {}) {
    this.#interval = options.intervalMs ?? FRAME_MS;
    this.#maxCatchUp = Math.max(1, options.maxCatchUpTicks ?? 2);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /** The process-wide pacer every call uses unless told otherwise. */
  static get shared(): Pacer {
    shared ??= new Pacer();
    return shared;
  }

  /** The pacer's clock (performance.now() unless a clock was injected), in ms. */
  now(): number {
    return this.#clock.now();
  }

  /** Whether the timer is running (at least one stream registered). */
  get running(): boolean {
    return this.#running;
  }

  /**
   * A copy of the counters. With the media worker they include its clock's ticks, as relayed
   * (see {@link relay}): the counters then describe the clock that really sends the audio.
   */
  get stats(): PacerStats {
    return {
      ticks: this.#ticks + this.#relayed.ticks,
      skippedTicks: this.#skipped + this.#relayed.skipped,
      activeStreams: this.#streams.size,
      lastLatenessMs: this.#lastLateness,
      maxLatenessMs: this.#maxLateness,
    };
  }

  /** Registers a stream; the clock starts (with a tick right away) if it was idle. */
  add(stream: PacedStream): void {
    this.#streams.add(stream);
    if (!this.#running) this.#start();
  }

  /** Unregisters a stream; the clock stops when none is left. */
  remove(stream: PacedStream): void {
    this.#streams.delete(stream);
    if (this.#streams.size === 0) this.#stop();
  }

  has(stream: PacedStream): boolean {
    return this.#streams.has(stream);
  }

  /** Adds a tick observer (benchmarks, drift tests); returns a function that removes it. */
  observe(listener: (info: TickInfo) => void): () => void {
    this.#observers.add(listener);
    return () => {
      this.#observers.delete(listener);
    };
  }

  /**
   * Shows the observers a tick of a pacer that runs in another thread (the media worker's), so
   * whoever watches this pacer (metrics) sees the clock that actually sends the audio, and counts
   * it in {@link stats}: its lateness, and the ticks it skipped (a jump in its tick numbers; a clock
   * that stopped and started again counts from 0 again).
   */
  relay(info: TickInfo): void {
    const relayed = this.#relayed;
    relayed.ticks++;
    if (relayed.lastTick >= 0 && info.tick > relayed.lastTick + 1)
      relayed.skipped += info.tick - relayed.lastTick - 1;
    relayed.lastTick = info.tick;
    this.#lastLateness = Math.max(0, info.actualMs - info.idealMs);
    this.#maxLateness = Math.max(this.#maxLateness, this.#lastLateness);
    for (const observer of this.#observers) observer(info);
  }

  #start(): void {
    this.#running = true;
    this.#origin = this.#clock.now();
    this.#nextIndex = 0;
    // Tick 0 is due now: a prompt that starts an idle clock goes out without waiting a period.
    this.#timer = this.#clock.setTimer(() => this.#run(), 0);
  }

  #stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #run(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const now = this.#clock.now();
    // Ticks whose ideal time has come: indices 0 … due-1.
    const due = Math.floor((now - this.#origin) / this.#interval) + 1;
    let overdue = due - this.#nextIndex;
    if (overdue > this.#maxCatchUp) {
      this.#skipped += overdue - this.#maxCatchUp;
      this.#nextIndex += overdue - this.#maxCatchUp;
      overdue = this.#maxCatchUp;
    }
    for (let i = 0; i < overdue && this.#streams.size > 0; i++) this.#tick(now);
    if (this.#streams.size === 0) {
      this.#stop();
      return;
    }
    const nextIdeal = this.#origin + this.#nextIndex * this.#interval;
    // Rounded up: Node's timers have 1 ms resolution, and a timer that fires early only costs a
    // wasted wake-up, whereas the schedule itself never slips.
    const delay = Math.max(0, Math.ceil(nextIdeal - this.#clock.now()));
    this.#timer = this.#clock.setTimer(() => this.#run(), delay);
  }

  #tick(now: number): void {
    const index = this.#nextIndex++;
    const tick = this.#ticks++;
    const ideal = this.#origin + index * this.#interval;
    this.#lastLateness = now - ideal;
    if (this.#lastLateness > this.#maxLateness) this.#maxLateness = this.#lastLateness;
    // A snapshot: streams that unregister (finished) or register during the tick are handled from
    // the next one, so no stream is visited twice in a tick.
    for (const stream of [...this.#streams]) {
      if (!this.#streams.has(stream)) continue;
      try {
        stream.onTick(tick, ideal);
      } catch (error) {
        this.#logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'A paced stream threw; it stays registered',
        );
      }
    }
    for (const observer of this.#observers) observer({ tick, idealMs: ideal, actualMs: now });
  }
}
