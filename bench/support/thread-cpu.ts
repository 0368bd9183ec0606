/**
 * CPU time of each thread of this process, from Linux's /proc/self/task/<tid>/schedstat (the
 * scheduler's own count, in nanoseconds, not the tick-sampled user/system split): the benches use
 * it to show where a sender's CPU goes (its main thread, the media worker, V8's and libuv's helper
 * threads), which process.cpuUsage() sums up into one figure.
 */

import { readdirSync, readFileSync } from 'node:fs';

/** CPU time per thread id, in ns; empty where /proc is not there (not Linux). */
export type ThreadCpu = Map<number, number>;

export function threadCpu(): ThreadCpu {
  const out: ThreadCpu = new Map();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(ns)) out.set(Number(tid), ns);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/**
 * "main 0.4 %, busiest other thread 18.8 %, 9 others 1.1 %" between two snapshots, as % of one
 * core over `elapsedMs`; undefined without /proc.
 */
export function describeThreadCpu(
  before: ThreadCpu,
  after: ThreadCpu,
  elapsedMs: number,
): string | undefined {
  if (after.size === 0) return undefined;
  const pct = (ns: number): string => `${((ns / 1e6 / elapsedMs) * 100).toFixed(1)} %`;
  let main = 0;
  let busiest = 0;
  let rest = 0;
  let others = 0;
  for (const [tid, ns] of after) {
    const used = ns - (before.get(tid) ?? 0);
    if (tid === process.pid) {
      main = used;
      continue;
    }
    others++;
    if (used > busiest) {
      rest += busiest;
      busiest = used;
    } else rest += used;
  }
  return `main thread ${pct(main)}, busiest other thread ${pct(busiest)}, ${others - 1} others ${pct(rest)}`;
}

/** All threads' CPU between two snapshots, as % of one core over `elapsedMs`; undefined without /proc. */
export function totalThreadCpu(before: ThreadCpu, after: ThreadCpu, elapsedMs: number): number | undefined {
  if (after.size === 0) return undefined;
  let used = 0;
  for (const [tid, ns] of after) used += ns - (before.get(tid) ?? 0);
  return (used / 1e6 / elapsedMs) * 100;
}

/**
 * The busiest thread's CPU between two snapshots, as % of one core over `elapsedMs` (a sender's own
 * sending thread: the naive sender's main thread, the media worker's thread); undefined without
 * /proc.
 */
export function busiestThreadCpu(before: ThreadCpu, after: ThreadCpu, elapsedMs: number): number | undefined {
  if (after.size === 0) return undefined;
  let busiest = 0;
  for (const [tid, ns] of after) busiest = Math.max(busiest, ns - (before.get(tid) ?? 0));
  return (busiest / 1e6 / elapsedMs) * 100;
}
