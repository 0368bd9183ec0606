/**
 * Keeps a repeated problem (malformed frames from a broken or hostile peer, a caller flooding keys)
 * from flooding the log: the first occurrence is logged at once, later ones at most once per
 * interval, each logged line saying how many were left out since the previous one. Counters kept
 * by the caller give the exact totals.
 */
export class LogThrottle {
  readonly #intervalMs: number;
  #lastLoggedAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  /** @param intervalMs shortest time between two logged lines. Default 10 s. */
  constructor(intervalMs = 10_000) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Call once per occurrence. Returns how many occurrences were left out since the last logged one
   * when this one is to be logged, or `undefined` when it is to be left out.
   */
  take(now: number = performance.now()): number | undefined {
    if (now - this.#lastLoggedAt < this.#intervalMs) {
      this.#suppressed++;
      return undefined;
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#lastLoggedAt = now;
    return suppressed;
  }
}
