import { performance } from 'node:perf_hooks';
import type { PacerClock } from './pacer.js';

/** Options of {@link preciseClock}. */
export interface PreciseClockOptions {
  /**
   * How long before the due time the event-loop timer fires, in ms; the thread sleeps the rest
   * with a sub-millisecond timed wait. Default 1.
   */
  marginMs?: number;
}

interface Handle {
  timeout: ReturnType<typeof setTimeout> | undefined;
  immediate: ReturnType<typeof setImmediate> | undefined;
  cancelled: boolean;
}

/**
 * A pacer clock for a thread that only does media (the media worker), which wakes up within a
 * few tens of microseconds of the due time instead of up to a millisecond and more after it.
 *
 * Why: Node's timers count whole milliseconds of the event loop's cached time, and libuv sleeps in
 * epoll_wait with a millisecond timeout, so a tick of the pacer runs 0–1.5 ms after its ideal time,
 * a different amount each period: that spread is the gap deviation a receiver measures. Here the
 * event-loop timer fires about `marginMs` early and the thread then sleeps the remaining fraction
 * in `Atomics.wait` (a futex with a nanosecond timeout). The thread's event loop is blocked during
 * that sleep (at most about 2 ms): incoming packets and commands wait in their queues meanwhile,
 * which the jitter buffer and the players absorb. Never use it on a thread that runs handlers.
 */
export function preciseClock(options: PreciseClockOptions = {}): PacerClock {
  const margin = options.marginMs ?? 1;
  // Nothing ever notifies this cell: Atomics.wait on it is a pure sleep with a timeout.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  return {
    now: () => performance.now(),
    setTimer(fn, delayMs) {
      const dueAt = performance.now() + delayMs;
      const handle: Handle = { timeout: undefined, immediate: undefined, cancelled: false };
      const fire = () => {
        handle.timeout = undefined;
        handle.immediate = undefined;
        if (handle.cancelled) return;
        const remaining = dueAt - performance.now();
        if (remaining > 0) Atomics.wait(cell, 0, 0, remaining);
        fn();
      };
      const early = Math.floor(delayMs - margin);
      if (early >= 1) handle.timeout = setTimeout(fire, early).unref();
      // Not unref'd: an unref'd immediate does not stop the loop from sleeping in poll until the
      // next ref'd timer or I/O (ticks came up to 140 ms late). It keeps the process up for one
      // turn only.
      else handle.immediate = setImmediate(fire);
      return handle;
    },
    clearTimer(handle) {
      const h = handle as Handle;
      h.cancelled = true;
      if (h.timeout !== undefined) clearTimeout(h.timeout);
      if (h.immediate !== undefined) clearImmediate(h.immediate);
    },
  };
}
