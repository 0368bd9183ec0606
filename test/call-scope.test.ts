import { describe, expect, it } from 'vitest';
import { HangupError } from '../src/errors.js';
import { CallScope } from '../src/ui/call-scope.js';

/** The scope's pending races (private): settled ones must not stay behind. */
const pendingRaces = (scope: CallScope): number => (scope as unknown as { racers: Set<unknown> }).racers.size;

describe('CallScope', () => {
  it('race(): settles as the promise does, keeps nothing once settled, and rejects with HangupError when the call ends', async () => {
    const scope = new CallScope();
    await expect(scope.race(Promise.resolve(7))).resolves.toBe(7);
    await expect(scope.race(Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(pendingRaces(scope)).toBe(0);

    let release!: (v: string) => void;
    const slow = scope.race(new Promise<string>((resolve) => (release = resolve)));
    const sleeping = scope.sleep(60_000);
    expect(pendingRaces(scope)).toBe(2);
    let signalAbortedWhenRejected: boolean | undefined;
    const observed = slow.catch((error: unknown) => {
      signalAbortedWhenRejected = scope.signal.aborted;
      throw error;
    });
    await scope.end('hangup');
    await expect(observed).rejects.toBeInstanceOf(HangupError);
    await expect(sleeping).rejects.toThrow('The call has ended (hangup)');
    expect(signalAbortedWhenRejected).toBe(true);
    expect(pendingRaces(scope)).toBe(0);
    release('late');
    // After the end, a race rejects at once and swallows its promise's own failure.
    await expect(scope.race(Promise.reject(new Error('ignored')))).rejects.toBeInstanceOf(HangupError);
    expect(scope.reason).toBe('hangup');
  });

  it('end() runs the cleanups once, last registered first, and later ones at once', async () => {
    const scope = new CallScope();
    const order: string[] = [];
    scope.defer(() => {
      order.push('first');
    });
    scope.defer(async () => {
      order.push('second');
      throw new Error('a failing cleanup does not stop the others');
    });
    await scope.end('closed');
    await scope.end('again');
    expect(order).toEqual(['second', 'first']);
    const late = new Promise<void>((resolve) => scope.defer(resolve));
    await late;
    expect(scope.reason).toBe('closed');
  });
});
