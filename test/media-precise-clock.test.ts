import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type PacedStream, Pacer } from '../src/media/pacer.js';
import { preciseClock } from '../src/media/precise-clock.js';

const run = promisify(execFile);

describe('preciseClock', () => {
  it('never calls back before the due time, through the timer path and the immediate path', async () => {
    const clock = preciseClock();
    for (const delay of [0, 0.3, 1.7, 2.4, 5.2]) {
      const setAt = clock.now();
      const firedAt = await new Promise<number>((resolve) =>
        clock.setTimer(() => resolve(clock.now()), delay),
      );
      expect(firedAt - setAt).toBeGreaterThanOrEqual(delay);
    }
  });

  it('a short timer fires without another wake-up of the event loop (before a 500 ms timer)', async () => {
    // In a process of its own, where nothing else wakes the loop (a vitest worker has its own
    // traffic): an unref'd immediate would wait there for the 500 ms timer.
    const script = `
      import { preciseClock } from ${JSON.stringify(new URL('../src/media/precise-clock.ts', import.meta.url).href)};
      const clock = preciseClock();
      // From a timer callback, once start-up traffic (the loader's) has settled.
      // The loop wakes up again only for the 500 ms timer: a precise timer that waited for it
      // fires at the same wake-up, after its due time.
      setTimeout(() => {
        const setAt = performance.now();
        const guard = setTimeout(() => {}, 500);
        clock.setTimer(() => {
          console.log(performance.now() - setAt < 500 ? 'before the 500 ms timer' : 'with the 500 ms timer');
          clearTimeout(guard);
        }, 0.5);
      }, 100);
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    expect(stdout.trim()).toBe('before the 500 ms timer');
  });

  it('a cleared timer never calls back, whichever path it took', async () => {
    const clock = preciseClock();
    const fired: number[] = [];
    clock.clearTimer(clock.setTimer(() => fired.push(1), 0.2));
    clock.clearTimer(clock.setTimer(() => fired.push(2), 3));
    // A later timer on the same clock: by the time it fires, the cleared ones would have.
    await new Promise<void>((resolve) => clock.setTimer(() => resolve(), 6));
    expect(fired).toEqual([]);
  });

  it('drives a pacer: every tick runs at or after its ideal time', async () => {
    const pacer = new Pacer({ clock: preciseClock() });
    const lateness: number[] = [];
    const off = pacer.observe((t) => lateness.push(t.actualMs - t.idealMs));
    let ticks = 0;
    const done = new Promise<void>((resolve) => {
      const stream: PacedStream = {
        onTick() {
          if (++ticks === 10) {
            pacer.remove(stream);
            resolve();
          }
        },
      };
      pacer.add(stream);
    });
    await done;
    off();
    expect(lateness).toHaveLength(10);
    for (const late of lateness) expect(late).toBeGreaterThanOrEqual(0);
  });
});
