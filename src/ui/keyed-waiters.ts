import { TimeoutError } from '../errors.js';

/**
 * Promises waiting for an event identified by a key (a playback id, a recording name). The event
 * may arrive before anyone waits for it (ARI races REST responses and events), so an early event
 * is kept until claimed.
 */
export class KeyedWaiters<T> {
  private readonly waiting = new Map<
    string,
    { resolve: (v: T) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }
  >();
  private readonly early = new Map<string, T>();

  /** Resolves with the event for `key`; rejects with TimeoutError after `timeoutMs` if given. */
  wait(key: string, timeoutMs?: number, what = 'event'): Promise<T> {
    const arrived = this.early.get(key);
    if (arrived !== undefined) {
      this.early.delete(key);
      return Promise.resolve(arrived);
    }
    return new Promise<T>((resolve, reject) => {
      const entry: { resolve: (v: T) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = {
        resolve,
        reject,
      };
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.waiting.delete(key);
          reject(new TimeoutError(`No ${what} for ${key} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiting.set(key, entry);
    });
  }

  /** Delivers the event for `key`. */
  resolve(key: string, value: T): void {
    const entry = this.waiting.get(key);
    if (!entry) {
      this.early.set(key, value);
      return;
    }
    this.waiting.delete(key);
    if (entry.timer) clearTimeout(entry.timer);
    entry.resolve(value);
  }

  /** Forgets an unclaimed key (e.g. the wait was abandoned). */
  forget(key: string): void {
    const entry = this.waiting.get(key);
    if (entry?.timer) clearTimeout(entry.timer);
    this.waiting.delete(key);
    this.early.delete(key);
  }

  /** Rejects every waiter and forgets everything. */
  rejectAll(error: Error): void {
    for (const entry of this.waiting.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.reject(error);
    }
    this.waiting.clear();
    this.early.clear();
  }

  get size(): number {
    return this.waiting.size + this.early.size;
  }
}
