/**
 * Input of one call or conversation (keys pressed, texts received), in arrival order. Input that
 * arrives before anyone asks is kept, so nothing typed ahead is lost, up to `capacity` items:
 * beyond it the oldest unread item goes, so a reader that never comes cannot make it grow forever.
 */
export class InputQueue<T> {
  protected readonly items: T[] = [];
  private waiter?: { resolve: (item: T | undefined) => void; timer?: NodeJS.Timeout };
  private readonly pushListeners = new Set<(item: T) => void>();
  private readonly capacity: number;

  /** @param capacity most unread items kept (default: no limit). */
  constructor(capacity = Number.POSITIVE_INFINITY) {
    this.capacity = capacity;
  }

  /** Items waiting to be read. */
  get size(): number {
    return this.items.length;
  }

  /**
   * Adds an item: to the pending reader if there is one, otherwise to the queue. Returns false when
   * the queue was full and its oldest unread item was dropped to make room.
   */
  push(item: T): boolean {
    for (const listener of [...this.pushListeners]) listener(item);
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(item);
      return true;
    }
    this.items.push(item);
    if (this.items.length <= this.capacity) return true;
    this.items.shift();
    return false;
  }

  /** Puts items back at the front, in order (read but not handled); a pending reader gets the first. */
  unshift(items: readonly T[]): void {
    if (items.length === 0) return;
    const [first, ...rest] = items;
    this.items.unshift(...rest);
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(first);
      return;
    }
    this.items.unshift(first as T);
  }

  /** Calls `listener` for every item pushed from now on; returns the unsubscribe function. */
  onPush(listener: (item: T) => void): () => void {
    this.pushListeners.add(listener);
    return () => this.pushListeners.delete(listener);
  }

  /**
   * The next item, waiting up to `timeoutMs` (undefined: forever). Resolves `undefined` on
   * timeout. One reader at a time: a second concurrent read ends the first with `undefined`.
   */
  next(timeoutMs?: number): Promise<T | undefined> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    this.cancel();
    return new Promise((resolve) => {
      const waiter: { resolve: (item: T | undefined) => void; timer?: NodeJS.Timeout } = { resolve };
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

  /** Drops queued items. */
  clear(): void {
    this.items.length = 0;
  }

  /** Cancels reads, drops items and listeners: the call or conversation is over. */
  dispose(): void {
    this.cancel();
    this.clear();
    this.pushListeners.clear();
  }
}
