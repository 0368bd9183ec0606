import { InputQueue } from './input-queue.js';

/**
 * DTMF digits of one call, in arrival order. Digits pressed before anyone asks are kept
 * (type-ahead), so `gather` never loses a key pressed during or before its prompt.
 */
export class DigitBuffer extends InputQueue<string> {
  /** A terminator to drop if it is the next key, until the deadline (see {@link swallowNext}). */
  private swallow?: { key: string; until: number };

  override push(digit: string): void {
    const swallow = this.swallow;
    this.swallow = undefined;
    if (swallow && swallow.key === digit && performance.now() <= swallow.until) return;
    super.push(digit);
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
