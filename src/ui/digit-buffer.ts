import { MAX_BUFFERED_DIGITS } from './input-limits.js';
import { InputQueue } from './input-queue.js';

/**
 * DTMF digits of one call, in arrival order. Digits pressed before anyone asks are kept
 * (type-ahead), so `gather` never loses a key pressed during or before its prompt; at most
 * {@link MAX_BUFFERED_DIGITS} of them, the oldest going first beyond that.
 */
export class DigitBuffer extends InputQueue<string> {
  /** A terminator to drop if it is the next key, until the deadline (see {@link swallowNext}). */
  private swallow?: { key: string; until: number };

  constructor(capacity: number = MAX_BUFFERED_DIGITS) {
    super(capacity);
  }

  /** Adds a key; false when the buffer was full and its oldest key was dropped. */
  override push(digit: string): boolean {
    const swallow = this.swallow;
    this.swallow = undefined;
    if (swallow && swallow.key === digit && performance.now() <= swallow.until) return true;
    return super.push(digit);
  }

  /**
   * Drops `key` if it is the next key pressed within `withinMs`: a caller who types the last
   * digit of a fixed-length code and then, out of habit, `#`, must not have that `#` answer the
   * next question.
   */
  swallowNext(key: string, withinMs: number): void {
    if (this.items[0] === key) {
      this.items.shift();
      return;
    }
    if (this.items.length === 0) this.swallow = { key, until: performance.now() + withinMs };
  }
}
