/**
 * How precisely this host wakes a sleeping thread, and what a wake-up costs: the floor under any
 * pacing figure measured on it. A thread sleeps `--wait-ms` (1.6 ms: the media worker's precise
 * clock sleeps about that long between two of its 2 ms slots) in a futex wait (`Atomics.wait`, the
 * clock's own primitive, see src/media/precise-clock.ts), over and over, and prints how much later
 * than asked it woke up. Then it does the same with 20 ms sleeps (a single-timer sender's period).
 * Prints, does not assert.
 *
 *   npx tsx bench/wake-precision.ts [--seconds 10] [--wait-ms 1.6] [--default-priority]
 *
 * The thread runs at nice −10 when allowed (root), as the media worker does by default;
 * `--default-priority` leaves it at nice 0. Run it alone, then while another bench loads the
 * machine (e.g. `bench/rtp-pacing.ts --sender naive`, which runs no media worker): a p99 above a
 * millisecond there means no pacer in this process can keep every packet within a millisecond of
 * its grid on this host, whatever its code. Why it exists: on a Firecracker microVM (PVM) with 2
 * cores the worker's pacing p99 at 500 streams moved between 0.7 and 1.7 ms with no change to the
 * code.
 *
 * The cost of a wake-up is the thread's own CPU time (the scheduler's count, see
 * support/thread-cpu.ts) divided by its waits: putting it to sleep, the timer, waking it, and
 * whatever the caches lost meanwhile, which grows with the sleep. The last line puts the two
 * together as the media worker's default pacing (10 slots: 500 wake-ups a second after ~1.6 ms)
 * against a single-timer sender (50 a second after ~20 ms). On the PVM host above, in two runs,
 * that was 18 and 30 µs against 66 and 117 µs a wake-up: 0.55 and 0.89 % of one core more, 3–5 %
 * of the naive sender's CPU at 500 streams (bench/README.md, seventh session).
 */

import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { atPercentile, machine, numberFlag, runBench } from './support/bench-util.js';
import { threadCpu } from './support/thread-cpu.js';

const seconds = numberFlag('seconds', 10);
const waitMs = numberFlag('wait-ms', 1.6);
if (!(waitMs > 0 && seconds > 0)) throw new Error('--wait-ms and --seconds need a number > 0');

/** A single-timer sender's period, and the media worker's wake-ups a second with 10 slots. */
const PERIOD_MS = 20;
const SLOT_WAKEUPS_PER_SECOND = 500;

interface Sleeps {
  /** How late each wait woke, in ms, sorted. */
  late: Float64Array;
  /** The thread's CPU time per wait, in µs; undefined without /proc/self/task. */
  cpuPerWakeUs: number | undefined;
}

function sleepOver(ms: number, forSeconds: number): Sleeps {
  // Nothing ever notifies this cell: each wait is a pure sleep with a timeout.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const late = new Float64Array(Math.ceil((forSeconds * 1000) / ms) + 1);
  let count = 0;
  const cpuBefore = threadCpu().get(process.pid);
  const end = performance.now() + forSeconds * 1000;
  while (count < late.length) {
    const before = performance.now();
    if (before >= end) break;
    Atomics.wait(cell, 0, 0, ms);
    late[count++] = performance.now() - before - ms;
  }
  const cpuAfter = threadCpu().get(process.pid);
  const cpuPerWakeUs =
    cpuBefore === undefined || cpuAfter === undefined || count === 0
      ? undefined
      : (cpuAfter - cpuBefore) / 1e3 / count;
  return { late: late.slice(0, count).sort(), cpuPerWakeUs };
}

function describe(label: string, { late, cpuPerWakeUs }: Sleeps): string {
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  let over = 0;
  for (const v of late) if (v > 1) over++;
  const cpu = cpuPerWakeUs === undefined ? 'unknown (no /proc)' : `${cpuPerWakeUs.toFixed(1)} µs`;
  return (
    `${label}: ${late.length} waits, woke late by p50 ${ms(atPercentile(late, 0.5))}, ` +
    `p99 ${ms(atPercentile(late, 0.99))}, p99.9 ${ms(atPercentile(late, 0.999))}, ` +
    `max ${ms(atPercentile(late, 1))}; later than 1 ms: ${((over / late.length) * 100).toFixed(2)} % ` +
    `of the waits; CPU per wake-up ${cpu}`
  );
}

async function main(): Promise<void> {
  let priority = 'nice 0';
  if (!process.argv.includes('--default-priority')) {
    try {
      setPriority(0, -10);
      priority = 'nice −10';
    } catch {
      priority = 'nice 0 (nice −10 refused: not root)';
    }
  }
  console.log(`wake-precision: ${seconds} s of each, ${priority}; ${machine()}`);
  const short = sleepOver(waitMs, seconds);
  console.log(describe(`sleeps of ${waitMs} ms`, short));
  const long = sleepOver(PERIOD_MS, seconds);
  console.log(describe(`sleeps of ${PERIOD_MS} ms`, long));
  if (short.cpuPerWakeUs === undefined || long.cpuPerWakeUs === undefined) return;
  const slotsUs = SLOT_WAKEUPS_PER_SECOND * short.cpuPerWakeUs;
  const timerUs = (1000 / PERIOD_MS) * long.cpuPerWakeUs;
  console.log(
    `wake-ups a second: 10 slots (${SLOT_WAKEUPS_PER_SECOND} after ${waitMs} ms) ` +
      `${(slotsUs / 1e4).toFixed(2)} % of one core, one timer (${1000 / PERIOD_MS} after ` +
      `${PERIOD_MS} ms) ${(timerUs / 1e4).toFixed(2)} %: the slots cost ` +
      `${((slotsUs - timerUs) / 1e4).toFixed(2)} % of one core more`,
  );
}

runBench(main);
