import { performance } from 'node:perf_hooks';
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
   * @param now when the tick started running, on the same clock (read once for all its streams).
   */
  onTick(tick: number, dueAt: number, now: number): void;
  /**
   * Optional: reads the objects the next {@link onTick} will read first (its own fields, its queue
   * head, its sink), without sending anything, and returns any number derived from them. Before a
   * tick runs its streams' onTick one by one, it calls warm on all of them.
   *
   * Why: at 20 ms between two ticks of a call, every object a stream touches is out of the cache,
   * and in onTick each of those misses waits behind the previous stream's send (a system call that
   * fills the cache with the kernel's own data). Read in one tight loop, the misses of all the
   * slot's streams overlap instead; perf of the media worker at 500 streams: the samples in the
   * library's own JS fell by about a quarter (bench/rtp-pacing.ts).
   */
  warm?(): number;
}

/** The clock and timer the pacer runs on; injectable so tests can simulate hours in milliseconds. */
export interface PacerClock {
  /** Monotonic time in ms (performance.now()). */
  now(): number;
  /**
   * Calls `fn` once after about `delayMs` (a fraction of a ms, which a precise clock may honour),
   * never earlier; the timer must not keep the process alive.
   */
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Options of {@link Pacer}. */
export interface PacerOptions {
  /** Tick period in ms. Default 20 (one RTP frame). */
  intervalMs?: number;
  /**
   * Slots per period: streams are spread over this many phases of the period (10 slots of a 20 ms
   * period start 2 ms apart), each stream keeping its slot, so each wake-up sends a tenth of the
   * packets. Default 10; 1 sends every stream in one burst per period.
   *
   * Why: one burst of 500–1000 packets takes 4–8 ms of sending, and any preemption of the thread
   * inside it shifts the streams after that point, so each stream's spacing varies by up to the
   * burst's length. Short bursts at fixed phases keep each stream within about a millisecond of
   * its grid (bench/rtp-pacing.ts measures it with the kernel's timestamps).
   */
  slots?: number;
  /**
   * Streams a slot takes before the next slot is opened. Default 50 (a burst of about half a
   * millisecond of sending): a few calls share one wake-up per period, as with one slot, and the
   * slots fill up as calls grow, so each wake-up costs its timer only when it carries a burst.
   */
  slotCapacity?: number;
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
  /** Ticks run since the pacer was created: one per period for each slot that has streams. */
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
  /**
   * The tick's number: one more than the previous tick's, plus the ticks skipped in between (so a
   * jump tells a skip).
   */
  tick: number;
  idealMs: number;
  actualMs: number;
  /** The slot (phase of the period) whose streams this tick served; 0 when there is one slot. */
  slot?: number;
}

/** Slots per period unless told otherwise (see {@link PacerOptions.slots}). */
export const DEFAULT_SLOTS = 10;
/** Streams per slot before another slot opens unless told otherwise (see {@link PacerOptions.slotCapacity}). */
const DEFAULT_SLOT_CAPACITY = 50;

const systemClock: PacerClock = {
  now: () => performance.now(),
  // Rounded up: Node's timers have 1 ms resolution, and a timer that fires early only costs a
  // wasted wake-up (the pacer finds nothing due and sets the timer again).
  setTimer: (fn, delayMs) => setTimeout(fn, Math.ceil(delayMs)).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

let shared: Pacer | undefined;
/** What the last touch pass read (see PacedStream.warm). */
// biome-ignore lint/correctness/noUnusedVariables: only written, so the pass's reads stay in the compiled code
let warmed = 0;

/** One phase of the period: its streams, and the index of its next tick. */
interface Slot {
  index: number;
  /** Offset of the slot's ticks from the run's origin, in ms. */
  offset: number;
  streams: Set<PacedStream>;
  /**
   * `streams` as an array, taken by a tick and kept until the set changes: the tick walks a
   * snapshot (see #tick), and most ticks find the set as the last one left it.
   */
  snapshot: PacedStream[] | undefined;
  /** Index (in the current run) of the slot's next tick, due at origin + offset + next × interval. */
  next: number;
}

/**
 * The pacing clock of outbound audio: every `intervalMs` (20 ms) it asks each registered stream to
 * send one frame. All calls of a process share one pacer ({@link Pacer.shared}) rather than one
 * timer each, so the wake-ups do not grow with the number of calls.
 *
 * The period is cut into `slots` phases (10 by default, 2 ms apart). Each stream joins a slot and
 * stays there: one already in use while it has fewer than `slotCapacity` streams (50), else an
 * empty one, else the least busy. So a few calls share one wake-up per period, 500 calls are sent
 * as ten bursts of 50 instead of one of 500, and each stream's packets leave at the same phase
 * every period, in the same order. A slot with no stream costs no wake-up.
 *
 * Tick `k` of a slot is due at `origin + offset + k × interval`, and each timer is set from that
 * ideal time, not from "now + 20 ms": timer lateness never accumulates, so after ten minutes of
 * prompt the ticks are still where the ideal clock says. The timer exists only while a stream is
 * registered.
 *
 * A stream may also send a frame off the clock (an AudioPlayer sends the first frame of a play at
 * once instead of waiting for its slot); {@link now} and the `dueAt` given to
 * {@link PacedStream.onTick} let it pass over a tick that comes too soon after that frame.
 */
export class Pacer {
  readonly #interval: number;
  readonly #maxCatchUp: number;
  readonly #clock: PacerClock;
  readonly #logger: Logger;
  readonly #slots: Slot[];
  readonly #capacity: number;
  readonly #slotOf = new Map<PacedStream, Slot>();
  readonly #observers = new Set<(info: TickInfo) => void>();
  #timer: unknown;
  #running = false;
  /** Ideal time of tick 0 of slot 0 in the current run. */
  #origin = 0;
  #ticks = 0;
  /** Ticks run or skipped: the number the next tick gets. */
  #sequence = 0;
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
    const count = Math.max(1, Math.floor(options.slots ?? DEFAULT_SLOTS));
    this.#capacity = Math.max(1, Math.floor(options.slotCapacity ?? DEFAULT_SLOT_CAPACITY));
    this.#slots = Array.from({ length: count }, (_, index) => ({
      index,
      offset: (index * this.#interval) / count,
      streams: new Set<PacedStream>(),
      snapshot: undefined,
      next: 0,
    }));
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
      activeStreams: this.#slotOf.size,
      lastLatenessMs: this.#lastLateness,
      maxLatenessMs: this.#maxLateness,
    };
  }

  /**
   * Registers a stream in the least busy slot; the clock starts (with a tick of slot 0 right away)
   * if it was idle.
   */
  add(stream: PacedStream): void {
    if (this.#slotOf.has(stream)) return;
    if (!this.#running) {
      this.#start();
      this.#join(stream, this.#slots[0]!);
      this.#schedule();
      return;
    }
    const now = this.#clock.now();
    // A slot that already wakes up and has room, else an empty one, else the least busy; among
    // equals, the slot whose next tick is furthest away, so that a player which sends its first
    // frame at once (off the clock) sends the second about 20 ms later.
    const rank = (slot: Slot): number => {
      const size = slot.streams.size;
      if (size > 0 && size < this.#capacity) return 0;
      if (size === 0) return 1;
      return 2 + size;
    };
    let best: Slot | undefined;
    let bestRank = 0;
    let bestWait = -1;
    for (const slot of this.#slots) {
      const r = rank(slot);
      const wait = this.#nextDue(slot, now) - now;
      if (!best || r < bestRank || (r === bestRank && wait > bestWait)) {
        best = slot;
        bestRank = r;
        bestWait = wait;
      }
    }
    this.#join(stream, best!);
    this.#schedule();
  }

  /** Unregisters a stream; the clock stops when none is left. */
  remove(stream: PacedStream): void {
    const slot = this.#slotOf.get(stream);
    if (!slot) return;
    slot.streams.delete(stream);
    slot.snapshot = undefined;
    this.#slotOf.delete(stream);
    if (this.#slotOf.size === 0) this.#stop();
  }

  has(stream: PacedStream): boolean {
    return this.#slotOf.has(stream);
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

  #join(stream: PacedStream, slot: Slot): void {
    if (slot.streams.size === 0 && this.#running) {
      // A slot that was empty resumes at its first tick not already past.
      slot.next = Math.max(0, Math.ceil((this.#clock.now() - this.#origin - slot.offset) / this.#interval));
    }
    slot.streams.add(stream);
    slot.snapshot = undefined;
    this.#slotOf.set(stream, slot);
  }

  /** When the slot's next tick is due (for an empty slot: when it would be if a stream joined). */
  #nextDue(slot: Slot, now: number): number {
    if (slot.streams.size > 0) return this.#origin + slot.offset + slot.next * this.#interval;
    const next = Math.max(0, Math.ceil((now - this.#origin - slot.offset) / this.#interval));
    return this.#origin + slot.offset + next * this.#interval;
  }

  #start(): void {
    this.#running = true;
    this.#origin = this.#clock.now();
    this.#sequence = 0;
    for (const slot of this.#slots) slot.next = 0;
  }

  #stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Sets the timer for the earliest tick due among the slots with streams. */
  #schedule(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    if (!this.#running) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const slot of this.#slots) {
      if (slot.streams.size === 0) continue;
      const due = this.#origin + slot.offset + slot.next * this.#interval;
      if (due < earliest) earliest = due;
    }
    if (earliest === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, earliest - this.#clock.now());
    this.#timer = this.#clock.setTimer(() => this.#run(), delay);
  }

  #run(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const now = this.#clock.now();
    // The slots in order of their next tick, so a catch-up keeps the phases' order.
    const ready: Slot[] = [];
    for (const slot of this.#slots) {
      if (slot.streams.size > 0 && this.#origin + slot.offset + slot.next * this.#interval <= now)
        ready.push(slot);
    }
    ready.sort((a, b) => a.next * this.#interval + a.offset - (b.next * this.#interval + b.offset));
    for (const slot of ready) {
      // Ticks of this slot whose ideal time has come: indices next … due-1.
      const due = Math.floor((now - this.#origin - slot.offset) / this.#interval) + 1;
      let overdue = due - slot.next;
      if (overdue > this.#maxCatchUp) {
        const skipped = overdue - this.#maxCatchUp;
        this.#skipped += skipped;
        this.#sequence += skipped;
        slot.next += skipped;
        overdue = this.#maxCatchUp;
      }
      for (let i = 0; i < overdue && slot.streams.size > 0; i++) this.#tick(slot, now);
    }
    if (this.#slotOf.size === 0) {
      this.#stop();
      return;
    }
    this.#schedule();
  }

  #tick(slot: Slot, now: number): void {
    const index = slot.next++;
    const tick = this.#sequence++;
    this.#ticks++;
    const ideal = this.#origin + slot.offset + index * this.#interval;
    this.#lastLateness = now - ideal;
    if (this.#lastLateness > this.#maxLateness) this.#maxLateness = this.#lastLateness;
    // A snapshot: streams that register during the tick are handled from the next one, so no
    // stream is visited twice in a tick; one that unregisters (finished, or removed by another
    // stream's tick) is not visited again. Only a change during the tick makes the set worth asking.
    slot.snapshot ??= [...slot.streams];
    const snapshot = slot.snapshot;
    // The touch pass (see PacedStream.warm): its sum is kept so the reads are not optimized away.
    // Only a hint: a stream whose warm() throws ends the pass, never the tick.
    let sum = 0;
    try {
      for (const stream of snapshot) if (stream.warm !== undefined) sum += stream.warm();
    } catch {
      // The streams' own onTick below still runs, each in its own try.
    }
    warmed = sum;
    for (const stream of snapshot) {
      if (slot.snapshot !== snapshot && !slot.streams.has(stream)) continue;
      try {
        stream.onTick(tick, ideal, now);
      } catch (error) {
        this.#logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'A paced stream threw; it stays registered',
        );
      }
    }
    for (const observer of this.#observers)
      observer({ tick, idealMs: ideal, actualMs: now, slot: slot.index });
  }
}
