/** Small helpers shared by the voice benchmarks (bench/ivr-load.ts, bench/say-latency.ts). */

import { cpus } from 'node:os';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** `--name <positive number>` from the command line, or `fallback`. */
export function numberFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} needs a number ≥ 0`);
  return value;
}

/** `--name <one of choices>` from the command line, or `fallback`. */
export function choiceFlag<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1] as T;
  if (!choices.includes(value)) throw new Error(`--${name} takes one of: ${choices.join(', ')}`);
  return value;
}

/** Percentiles of a sample, in its unit; NaN when empty. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * The value at fraction `p` (0–1) of a sample sorted in ascending order (the nearest rank at or
 * below; 1 gives the largest); NaN when it is empty. Every bench's percentiles go through it.
 */
export function atPercentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The median of `values` (for an even count, the mean of the two middle values); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * A distribution-free confidence interval for the median of `values` (the order statistics whose
 * ranks a binomial(n, ½) puts around the middle): the narrowest one whose coverage is at least
 * `confidence`, else the whole range. Returns its ends and the coverage it really has, which is
 * below `confidence` only when there are too few values (under 6 for 95 %).
 *
 * Why: on a shared VM a pair of runs moves by ±5–10 %, so a median of 8 pairs alone reads like a
 * finding when it is noise; the interval says how far the median itself could be off.
 */
export function medianInterval(
  values: readonly number[],
  confidence = 0.95,
): { low: number; high: number; coverage: number } {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { low: Number.NaN, high: Number.NaN, coverage: 0 };
  // below[k] = P(X < k) for X ~ binomial(n, ½).
  const below: number[] = [0];
  let choose = 1;
  for (let k = 0; k < n; k++) {
    below.push(below[k]! + choose / 2 ** n);
    choose = (choose * (n - k)) / (k + 1);
  }
  // [x(k), x(n+1−k)] (1-based ranks) covers the median with probability 1 − 2·P(X < k).
  let k = 1;
  while (k + 1 <= n + 1 - (k + 1) && 1 - 2 * below[k + 1]! >= confidence) k++;
  return { low: sorted[k - 1]!, high: sorted[n - k]!, coverage: 1 - 2 * below[k]! };
}

export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  return {
    n: sorted.length,
    p50: atPercentile(sorted, 0.5),
    p99: atPercentile(sorted, 0.99),
    max: atPercentile(sorted, 1),
  };
}

export const ms = (v: number): string => `${v.toFixed(v < 10 ? 2 : 1)} ms`;

/** `p50 …, p99 …, max … (n samples)` */
export function describe(s: Summary): string {
  return `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (${s.n} samples)`;
}

/** The machine a run was measured on, for the README: CPU model, cores, Node version. */
export function machine(): string {
  const list = cpus();
  return `${list[0]?.model.trim() ?? 'unknown CPU'}, ${list.length} cores, Node ${process.version}`;
}

/** Wall-clock time in ms with sub-ms resolution, comparable between processes of one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A full garbage collection. Uses `gc` when node runs with --expose-gc; otherwise turns the flag
 * on at run time (V8 then exposes `gc` to contexts created afterwards).
 */
export function forceGc(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    (globalThis as { gc?: () => void }).gc = gc;
  }
  gc();
  gc();
}

/** Heap in use after a full collection, in bytes. */
export function settledHeapUsed(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

/** Event-loop delay percentiles in ms, as {@link loopDelay} reports them. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/**
 * Starts measuring this process's event-loop delay (how late a 5 ms timer fires, beyond its 5 ms);
 * call the result to stop and read it.
 */
export function loopDelay(): () => LoopDelay {
  const resolutionMs = 5;
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  const late = (ns: number) => Math.max(0, ns / 1e6 - resolutionMs);
  return () => {
    histogram.disable();
    return {
      p50: late(histogram.percentile(50)),
      p99: late(histogram.percentile(99)),
      max: late(histogram.max),
    };
  };
}

/** Ends the process (exit code 2) if it is still running after `seconds`: a run never hangs. */
export function giveUpAfter(name: string, seconds: number): void {
  setTimeout(() => {
    console.error(`${name}: still running after ${seconds} s: giving up`);
    process.exit(2);
  }, seconds * 1000).unref();
}

/** Runs a benchmark's main and exits (0, or 1 with the error printed): nothing left open keeps it alive. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
