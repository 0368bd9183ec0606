import type { PacerClock } from '../../src/media/pacer.js';

/**
 * A simulated pacer clock: timers fire in time order when the test moves time on with
 * {@link runUntil}, each `lateness()` ms after it was due (as a busy event loop would fire them),
 * so which tick sends which frame is exact and hours run in milliseconds.
 */
export class SimulatedClock implements PacerClock {
  time = 1000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #ids = 0;
  constructor(private readonly lateness: () => number = () => 0) {}
  now(): number {
    return this.time;
  }
  setTimer(fn: () => void, delayMs: number): unknown {
    const id = ++this.#ids;
    this.#timers.push({ at: this.time + delayMs + this.lateness(), fn, id });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }
  /** Runs the timers due until `until` (simulated ms), then sets the time to `until`. */
  runUntil(until: number): void {
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > until) break;
      this.#timers.shift();
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = until;
  }
  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }
}
