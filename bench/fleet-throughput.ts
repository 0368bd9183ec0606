/**
 * Calls and texts per second against the number of app instances (1, 2, 3) of one fleet, each
 * instance in its own process (test/support/cluster-instance.ts), on the built-in simulator, with a
 * real redis-server for the texts (skipped, saying so, without one). Calls: --calls callers, at
 * most --concurrency at a time, each hanging up once answered (the first live instance moves each
 * call to the least loaded one). Texts: --texts conversations from distinct senders, each done when
 * its first reply arrives (every instance sees every text; Redis decides which one answers).
 *
 *   npx tsx bench/fleet-throughput.ts [--calls 600] [--texts 300] [--concurrency 60] [--max-instances 3]
 *
 * On one 2-core machine the instances share the same two cores with the simulator, so more
 * instances cannot mean more throughput here: the figure shows what sharing costs (the moves, the
 * heartbeats, the Redis round trips), not how a fleet scales on separate machines.
 */
import { spawnSync } from 'node:child_process';
import type { SentText } from '../src/sandbox/pbx.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { type FleetInstance, startFleetInstance } from '../test/support/fleet-process.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { machine, numberFlag } from './support/bench-util.js';

const totalCalls = numberFlag('calls', 600);
const totalTexts = numberFlag('texts', 300);
const concurrency = numberFlag('concurrency', 60);
const maxInstances = numberFlag('max-instances', 3);

const haveRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;

/** Places `n` calls, `concurrency` at a time, each hung up once answered; resolves with calls/s. */
async function callsPerSecond(sim: Simulator, n: number, round: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const phone = await sim.call({ from: `+1556${round}${String(i).padStart(6, '0')}`, to: '1000' });
      await phone.waitForAnswer();
      await phone.hangup();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return n / ((performance.now() - started) / 1000);
}

/** Sends `n` first texts from distinct senders; resolves with texts answered per second. */
async function textsPerSecond(sim: Simulator, n: number, round: number): Promise<number> {
  const senders = Array.from({ length: n }, (_, i) => `+1557${round}${String(i).padStart(6, '0')}`);
  const waiting = new Set(senders);
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const off = sim.onSentText((t: SentText) => {
    if (waiting.delete(t.toUser) && waiting.size === 0) done();
  });
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const from = senders[next++]!;
      await sim.sendText({ from, to: '1000', body: 'hello' });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await all;
  off();
  const rate = n / ((performance.now() - started) / 1000);
  // End the conversations (the handler returns on "bye").
  await Promise.all(senders.map((from) => sim.sendText({ from, to: '1000', body: 'bye' })));
  return rate;
}

console.log(`fleet-throughput: ${machine()}`);
console.log(`calls: ${totalCalls} (${concurrency} at a time); texts: ${totalTexts}`);
if (!haveRedis) console.log('redis-server not found: texts are not measured (apt-get install redis-server)');
const rows: string[] = [];
for (let count = 1; count <= maxInstances; count++) {
  const sim = await Simulator.start();
  const redis: TestRedis | undefined = haveRedis ? await startRedis() : undefined;
  const instances: FleetInstance[] = [];
  try {
    for (let i = 0; i < count; i++) {
      instances.push(
        await startFleetInstance(`i${i}`, sim, {
          MAX_CONCURRENT_CALLS: '1000',
          MAX_CONCURRENT_CONVERSATIONS: '5000',
          ...(redis ? { ASTERAMISK_REDIS_URL: redis.url } : {}),
        }),
      );
    }
    const calls = await callsPerSecond(sim, totalCalls, count);
    const texts = redis ? await textsPerSecond(sim, totalTexts, count) : Number.NaN;
    const row = `${count} instance${count > 1 ? 's' : ' '}: ${calls.toFixed(0).padStart(5)} calls/s   ${
      Number.isNaN(texts) ? '    -' : texts.toFixed(0).padStart(5)
    } texts/s`;
    rows.push(row);
    console.log(row);
  } finally {
    for (const instance of instances) await instance.kill();
    await sim.close();
    await redis?.stop();
  }
}
