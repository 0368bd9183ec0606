import { HangupError } from '../errors.js';

/**
 * The lifetime of one call or conversation. Everything a UI method awaits is raced against it,
 * so the method rejects with {@link HangupError} the moment the far end goes away, and cleanup
 * functions registered with {@link defer} run exactly once when it ends.
 */
export class CallScope {
  private readonly controller = new AbortController();
  private readonly cleanups: (() => void | Promise<void>)[] = [];
  /**
   * The rejecters of the pending {@link race}s. Not listeners on the signal: every UI verb races,
   * and Node's EventTarget add/removeEventListener cost 170 ms of the main thread in the 2000-call
   * spoken IVR, against a Set's few microseconds.
   */
  private readonly racers = new Set<() => void>();
  private endReason?: string;

  /** Aborted when the call ends. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  /** Why it ended (`hangup`, `transferred`, `closed`…), once ended. */
  get reason(): string | undefined {
    return this.endReason;
  }

  /** Throws HangupError if the call has ended. */
  assertActive(): void {
    if (this.ended) throw new HangupError(`The call has ended (${this.endReason})`);
  }

  /**
   * Resolves like `promise`, or rejects with HangupError as soon as the call ends. The losing
   * promise's rejection is swallowed so nothing surfaces as unhandled.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.ended) {
      promise.catch(() => {});
      return Promise.reject(new HangupError(`The call has ended (${this.endReason})`));
    }
    return new Promise<T>((resolve, reject) => {
      const onEnd = () => reject(new HangupError(`The call has ended (${this.endReason})`));
      this.racers.add(onEnd);
      promise.then(
        (value) => {
          this.racers.delete(onEnd);
          resolve(value);
        },
        (error: unknown) => {
          this.racers.delete(onEnd);
          reject(error);
        },
      );
    });
  }

  /** Waits `ms`, or rejects with HangupError when the call ends first. */
  sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return this.race(wait).finally(() => clearTimeout(timer));
  }

  /** Registers a cleanup to run when the call ends (at once if it already has). */
  defer(cleanup: () => void | Promise<void>): void {
    if (this.ended) {
      void Promise.resolve()
        .then(cleanup)
        .catch(() => {});
      return;
    }
    this.cleanups.push(cleanup);
  }

  /** Ends the call: aborts every pending wait, then runs the cleanups (last registered first). */
  async end(reason: string): Promise<void> {
    if (this.ended) return;
    this.endReason = reason;
    // Marked ended first (the signal), so that code run by a rejection sees the call as ended.
    this.controller.abort();
    for (const reject of this.racers) reject();
    this.racers.clear();
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // Cleanup of a call that is already gone: the resource usually went with it.
      }
    }
  }
}
