/**
 * The limits on what one caller or texter can push into the process. A caller who sends 10,000
 * DTMF digits a second, or a sender who sends 10,000 texts a second to one of our numbers, is cut
 * down to these rates; the excess is dropped and counted (one warning per flood), so it cannot
 * starve the other calls of the event loop or grow a queue without bound. Every limit is far above
 * what a person, a phone or an auto-dialler produces, so legitimate input is never dropped.
 */

/**
 * DTMF keys per second one call delivers to its input (gather, menus, `on('dtmf')`), sustained.
 * A key is at least 40 ms of tone and 40 ms of pause (ITU-T Q.24; RFC 4733 senders follow it), so
 * no phone or auto-dialler signals faster than about 12.5 keys a second: 20 leaves room for
 * jitter that bunches keys together.
 */
export const DTMF_RATE_PER_SECOND = 20;

/**
 * DTMF keys a call may deliver at once above the sustained rate: a whole card number plus PIN typed
 * ahead (about 30 keys) arriving in a burst after a network stall.
 */
export const DTMF_BURST = 40;

/**
 * Keys kept for a later `gather` (type-ahead) of one call. Keys beyond it push out the oldest:
 * nobody types 64 keys ahead of a question, and a handler that never gathers (it listens with
 * `on('dtmf')`) must not pile them up for the length of the call.
 */
export const MAX_BUFFERED_DIGITS = 64;

/**
 * Texts per second one sender may send to one of our numbers, sustained: 30 a minute, the default
 * outbound `textRateLimit`, so a handler that answers every text can never queue replies faster
 * than they may be sent. People type far slower.
 */
export const TEXT_RATE_PER_SECOND = 0.5;

/**
 * Texts one sender may send to one number at once above the sustained rate: a long message split
 * into segments by the carrier (rarely more than 10) or a burst sent after reconnecting.
 */
export const TEXT_BURST = 20;

/**
 * Texts kept unread in one conversation (or one call's in-call texts). More push out the oldest:
 * a handler that reads nothing (it listens with `on('message')`) must not collect them forever.
 */
export const MAX_QUEUED_TEXTS = 50;

/**
 * (number, sender) pairs whose text rate is tracked at once. A pair is forgotten once its bucket
 * is full again (the sender has been quiet for `TEXT_BURST / TEXT_RATE_PER_SECOND` = 40 s); beyond
 * this many busy pairs the longest-tracked one is forgotten, so a flood from many senders costs
 * a bounded amount of memory.
 */
export const MAX_TRACKED_TEXT_SENDERS = 10_000;

/**
 * A token bucket: `capacity` tokens, refilled at `refillPerSecond`; each accepted item takes one.
 * Time is the monotonic clock (performance.now()), so a wall-clock jump cannot open it.
 */
export class TokenBucket {
  readonly capacity: number;
  readonly refillPerSecond: number;
  #tokens: number;
  #updatedAt: number;

  constructor(capacity: number, refillPerSecond: number, now: number = performance.now()) {
    this.capacity = capacity;
    this.refillPerSecond = refillPerSecond;
    this.#tokens = capacity;
    this.#updatedAt = now;
  }

  /** Takes a token: true when the item may pass, false when it is over the rate. */
  take(now: number = performance.now()): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** True when no token is missing (the source has been quiet long enough to burst again). */
  full(now: number = performance.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.capacity;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updatedAt) / 1000;
    this.#updatedAt = now;
    this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.refillPerSecond);
  }
}
