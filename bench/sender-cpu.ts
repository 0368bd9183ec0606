/**
 * Sender CPU of the media worker against the naive single-timer sender, as a ratio that survives a
 * noisy machine: bench/rtp-pacing.ts run in pairs, one pair per round.
 *
 *   npx tsx bench/sender-cpu.ts [--rounds 6] [--streams 500] [--seconds 20]
 *                               [--mode both|together|apart] [--worker-args "--priority"]
 *                               [--anchor naive|paced|lean|stack]
 *
 * Compiled (a deployed app runs JS, and under tsx every isolate also has a loader thread):
 *   npx tsc -p tsconfig.json --outDir /tmp/js && cp package.json /tmp/js/ && ln -s "$PWD/node_modules" /tmp/js/
 *   node /tmp/js/bench/sender-cpu.js
 *
 * Why pairs: on a shared 2-core VM the same sender's CPU moves by ±10 % from one 20 s run to the
 * next (the host's other guests), more than the difference being measured. `together` starts both
 * senders at once (each with its own receiver and ports; ~20 % of a core each, so they do not
 * compete for a core), so both see the same disturbance and their ratio is steadier; `apart` runs
 * them one after the other, as bench/rtp-pacing.ts alone would. The start order alternates by
 * round. Both without the probe call (the naive sender starts no plays), without the packet
 * capture (tcpdump's filter runs in each sender's sendmsg, for every packet on loopback, its own
 * and the other's), and with the receivers at the default priority: a receiver at nice −10 (what
 * rtp-pacing does without the capture, to time arrivals) preempts a sender at nice 0 on the
 * datagrams it wakes up for, and made the naive sender 10-20 % dearer than with the receiver at
 * the default priority (the worker runs at nice −10 itself and moved much less).
 *
 * Printed per pair: each sender's CPU over the whole run and after the first 2 s (once all plays
 * have started; the worker's start-up, its JIT compiling and the 500 plays started at once, is in
 * the first), as % of one core, and worker / naive; then the same for the sending thread alone
 * after the first 2 s (the naive sender's main thread, the media worker's thread): the difference
 * is the rest of the process, for the worker its idle main thread and V8's helper threads (after
 * start-up the main isolate's memory reducer runs a few major collections there); then the
 * medians, each with a distribution-free 95 % confidence interval (with 8 pairs that is the range
 * of the 8; 16 pairs give the 4th to the 13th). The target is the whole process's figure. Prints,
 * does not assert.
 *
 * `--anchor paced` compares the worker with `rtp-pacing --sender paced` instead of the naive
 * sender: the same pre-encoded packets, on connected sockets, on a Pacer with the precise clock
 * and the worker's slots (it gets the worker's --priority and --slots). The ratio is then what the
 * library's own per-packet work and its worker thread cost, the pacing regime aside; `naive /
 * paced` would be what the regime and connected sockets cost or save.
 *
 * `--anchor lean` compares it with `rtp-pacing --sender lean`: the paced sender plus the work a
 * player and an RTP session must do for each frame (the prompt's frame copied into the packet,
 * header, send-queue check, samples sent published, stop check), in one closure per stream. The
 * ratio is then what the library adds around that work: its objects, its calls and the media
 * worker's thread and state. It gets the worker's --priority and --slots too.
 *
 * `--anchor stack` compares it with the same library on the bench's own thread
 * (`rtp-pacing --sender stack --precise-clock`, with the worker's --priority and --slots): the
 * ratio is what running it in the media worker costs.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  choiceFlag,
  delay,
  machine,
  median,
  medianInterval,
  numberFlag,
  runBench,
} from './support/bench-util.js';

const rounds = numberFlag('rounds', 6);
const streams = numberFlag('streams', 500);
const seconds = numberFlag('seconds', 20);
const mode = choiceFlag('mode', ['both', 'together', 'apart'] as const, 'both');
const anchor = choiceFlag('anchor', ['naive', 'paced', 'lean', 'stack'] as const, 'naive');
const workerArgsAt = process.argv.indexOf('--worker-args');
const workerArgs = (workerArgsAt < 0 ? '--priority' : (process.argv[workerArgsAt + 1] ?? ''))
  .split(' ')
  .filter(Boolean);

const PACING = fileURLToPath(
  new URL(import.meta.url.endsWith('.js') ? './rtp-pacing.js' : './rtp-pacing.ts', import.meta.url),
);

interface Result {
  cpuPct: number;
  steadyCpuPct: number | null;
  steadySendingThreadPct: number | null;
  lost: number;
  sent: number;
}

/** The worker, and what it is measured against (--anchor: the naive, paced, lean or stack sender). */
type Kind = 'anchor' | 'worker';

function runOne(kind: Kind, portMin: number): Promise<Result> {
  const args = [
    PACING,
    '--streams',
    String(streams),
    '--seconds',
    String(seconds),
    '--sender',
    kind === 'worker' ? 'worker' : anchor,
    '--port-min',
    String(portMin),
  ];
  args.push('--no-capture', '--no-probe', '--receiver-default-priority', '--json');
  if (kind === 'worker') args.push(...workerArgs);
  else if (anchor !== 'naive') {
    // The anchor sends as the worker does: the same thread priority and slots.
    if (anchor === 'stack') args.push('--precise-clock');
    if (workerArgs.includes('--priority')) args.push('--priority');
    const slotsAt = workerArgs.indexOf('--slots');
    if (slotsAt >= 0) args.push('--slots', workerArgs[slotsAt + 1] ?? '');
  }
  const child = spawn(process.execPath, [...process.execArgv, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) {
        reject(new Error(`rtp-pacing ${args.slice(1).join(' ')} exited with ${code}:\n${out}`));
        return;
      }
      resolve(JSON.parse(line.slice('RESULT '.length)) as Result);
    });
  });
}

/** Runs both, together (the second 300 ms after the first) or one after the other. */
async function pair(together: boolean, workerFirst: boolean): Promise<Record<Kind, Result>> {
  const order: Kind[] = workerFirst ? ['worker', 'anchor'] : ['anchor', 'worker'];
  // rtp-pacing binds from --port-min up to streams + 100 ports above it: the two ranges stay apart.
  const ports: Record<Kind, number> = { anchor: 40000, worker: 40000 + streams + 200 };
  const results: Partial<Record<Kind, Result>> = {};
  if (together) {
    const first = runOne(order[0]!, ports[order[0]!]);
    await delay(300);
    const second = runOne(order[1]!, ports[order[1]!]);
    [results[order[0]!], results[order[1]!]] = await Promise.all([first, second]);
  } else {
    for (const kind of order) results[kind] = await runOne(kind, ports[kind]);
  }
  return results as Record<Kind, Result>;
}

const pct = (v: number | null): string => (v === null ? '–' : `${v.toFixed(1)} %`);
const ratio = (worker: number | null, anchor: number | null): number =>
  worker !== null && anchor !== null ? worker / anchor : Number.NaN;

async function main(): Promise<void> {
  const modes = mode === 'both' ? [true, false] : [mode === 'together'];
  console.log(
    `sender-cpu: ${streams} streams × ${seconds} s, ${rounds} rounds, worker ${workerArgs.join(' ') || '(defaults)'}, ` +
      `against the ${anchor} sender; ${machine()}`,
  );
  console.log(
    `| round | run | ${anchor} whole | worker whole | ratio | ${anchor} after 2 s | worker after 2 s | ratio | ` +
      `sending thread after 2 s, ${anchor} / worker | ratio | lost |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const ratios = new Map<string, { whole: number[]; steady: number[]; thread: number[] }>();
  for (let round = 1; round <= rounds; round++) {
    for (const together of modes) {
      const name = together ? 'together' : 'apart';
      const r = await pair(together, round % 2 === 0);
      const whole = r.worker.cpuPct / r.anchor.cpuPct;
      const steady = ratio(r.worker.steadyCpuPct, r.anchor.steadyCpuPct);
      const thread = ratio(r.worker.steadySendingThreadPct, r.anchor.steadySendingThreadPct);
      const entry = ratios.get(name) ?? { whole: [], steady: [], thread: [] };
      entry.whole.push(whole);
      entry.steady.push(steady);
      entry.thread.push(thread);
      ratios.set(name, entry);
      console.log(
        `| ${round} | ${name} | ${pct(r.anchor.cpuPct)} | ${pct(r.worker.cpuPct)} | ${whole.toFixed(2)}× | ` +
          `${pct(r.anchor.steadyCpuPct)} | ${pct(r.worker.steadyCpuPct)} | ${steady.toFixed(2)}× | ` +
          `${pct(r.anchor.steadySendingThreadPct)} / ${pct(r.worker.steadySendingThreadPct)} | ${thread.toFixed(2)}× | ` +
          `${r.anchor.lost + r.worker.lost} |`,
      );
    }
  }
  // Each median with the interval it lies in at 95 % confidence: a difference of a few % between
  // two sets of pairs means something only where their intervals do not overlap.
  const withInterval = (values: number[]): string => {
    const { low, high, coverage } = medianInterval(values);
    return `${median(values).toFixed(2)}× (${low.toFixed(2)}–${high.toFixed(2)}× at ${(coverage * 100).toFixed(0)} %)`;
  };
  for (const [name, { whole, steady, thread }] of ratios)
    console.log(
      `median worker / ${anchor}, ${name}: whole run ${withInterval(whole)}, after the first 2 s ${withInterval(steady)}, ` +
        `sending thread alone after the first 2 s ${withInterval(thread)} (${whole.length} pairs)`,
    );
}

runBench(main);
