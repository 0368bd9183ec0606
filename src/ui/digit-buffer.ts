/**
 * DTMF digits of one call, in arrival order. Digits pressed before anyone asks are kept (type-ahead),
 * so `gather` never loses a key pressed during or before its prompt.
 */
export class DigitBuffer {
  private readonly digits: string[] = [];
  /** A terminator to drop if it is the next key, until the deadline (see {@link swallowNext}). */
  private swallow?: { key: string; until: number };
  private waiter?: { resolve: (digit: string | undefined) => void; timer?: NodeJS.Timeout };
  private readonly pushListeners = new Set<(digit: string) => void>();

  /** Digits waiting to be read. */
  get size(): number {
    return this.digits.length;
  }

  /** Adds a digit from the caller. */
  push(digit: string): void {
    const swallow = this.swallow;
    this.swallow = undefined;
    if (swallow && swallow.key === digit && performance.now() <= swallow.until) return;
    for (const listener of [...this.pushListeners]) listener(digit);
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(digit);
      return;
    }
    this.digits.push(digit);
  }

  /** Calls `listener` for every digit pushed from now on; returns the unsubscribe function. */
  onPush(listener: (digit: string) => void): () => void {
    this.pushListeners.add(listener);
    return () => this.pushListeners.delete(listener);
  }

  /**
   * The next digit, waiting up to `timeoutMs` (undefined: forever). Resolves `undefined` on
   * timeout. One reader at a time: a second concurrent read replaces (and ends) the first.
   */
  next(timeoutMs?: number): Promise<string | undefined> {
    const ready = this.digits.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    this.cancel();
    return new Promise((resolve) => {
      const waiter: { resolve: (d: string | undefined) => void; timer?: NodeJS.Timeout } = { resolve };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          if (this.waiter === waiter) this.waiter = undefined;
          resolve(undefined);
        }, timeoutMs);
      }
      this.waiter = waiter;
    });
  }

  /** Ends a pending read with `undefined` and clears its timer. */
  cancel(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter?.timer) clearTimeout(waiter.timer);
    waiter?.resolve(undefined);
  }

  /**
   * Drops `key` if it is the next key pressed within `withinMs`: a caller who types the last
   * digit of a fixed-length code and then, out of habit, `#`, must not have that `#` answer the
   * next question.
   */
  swallowNext(key: string, withinMs: number): void {
    if (this.digits[0] === key) {
      this.digits.shift();
      return;
    }
    if (this.digits.length === 0) this.swallow = { key, until: performance.now() + withinMs };
  }

  /** Drops buffered digits. */
  clear(): void {
    this.digits.length = 0;
  }

  /** Cancels reads, drops digits and listeners: the call is over. */
  dispose(): void {
    this.cancel();
    this.clear();
    this.pushListeners.clear();
  }
}
