/**
 * Random hang-ups at scale: --calls simulated calls (default 10,000), --concurrency at a time, into
 * a Server whose handler uses every verb (answer, media set-up, say over RTP, gather, record,
 * transfer, play). Each caller hangs up at a random ARI request of its call (just before the PBX
 * runs it: inside the media set-up, the bridge join, a recording, a transfer), at a random time,
 * or not at all. Prints how the calls ended, which requests were interrupted, and whether
 * anything was left behind (PBX channels and bridges, routed calls, UDP sockets, timers, ARI
 * listeners), plus calls per second. test/random-hangup.test.ts runs 400 of them in `npm test`.
 *
 *   npx tsx bench/random-hangup.ts [--calls 10000] [--concurrency 50] [--seed N] [--max-seconds 900]
 */

import { silentLogger } from '../src/logger.js';
import type { Runtime } from '../src/runtime.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import {
  FLOW_NUMBER,
  flowHandler,
  randomHangupRun,
  TRANSFER_TARGET,
} from '../test/support/random-hangups.js';
import { giveUpAfter, machine, numberFlag, runBench } from './support/bench-util.js';

const calls = numberFlag('calls', 10_000);
const concurrency = numberFlag('concurrency', 50);
const seed = numberFlag('seed', Date.now() % 1_000_000);
const maxSeconds = numberFlag('max-seconds', 900);

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

runBench(async () => {
  giveUpAfter('random-hangup', maxSeconds);
  const sim = await Simulator.start({ timeScale: 0.02 });
  sim.addExtension(TRANSFER_TARGET.context, TRANSFER_TARGET.extension, 1, 'Answer');
  sim.addExtension(TRANSFER_TARGET.context, TRANSFER_TARGET.extension, 2, 'Hangup');
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: 'random-hangup-bench',
    logger: silentLogger,
    tts: new OfflineTtsEngine({ msPerChar: 20 }),
    stt: false,
    ttsCacheDirectory: false,
    maxConcurrentCalls: concurrency * 2,
    rtpPortMin: 20000,
    rtpPortMax: 20000 + concurrency * 4,
  });
  const unexpected = new Map<string, number>();
  server.on('callEnded', (_ui, outcome) => {
    const error = outcome.error as Error | undefined;
    if (!error || /Hangup/.test(error.name)) return;
    const key = `${error.name}: ${error.message.replace(/[0-9a-f-]{36}|\d+\.\d+/g, '…')}`;
    unexpected.set(key, (unexpected.get(key) ?? 0) + 1);
  });
  await server.registerExtension(FLOW_NUMBER, { voice: flowHandler });
  const runtime = (server as unknown as { runtime: Runtime }).runtime;
  const ari = runtime.connection.ari;
  const listeners = () =>
    ari.listenerCount('StasisStart') + ari.listenerCount('StasisEnd') + ari.listenerCount('event');
  const listenersBefore = listeners();
  const before = resources();
  const startedAt = performance.now();
  const run = await randomHangupRun({ sim, server, calls, concurrency, seed });
  while (server.activeCalls > 0) await new Promise((resolve) => server.once('callEnded', resolve));
  const seconds = (performance.now() - startedAt) / 1000;
  const after = resources();

  console.log(`random hang-ups: ${calls} calls, ${concurrency} at a time, seed ${seed} (${machine()})`);
  console.log(`  ${(calls / seconds).toFixed(0)} calls/s over ${seconds.toFixed(1)} s`);
  console.log(`  hung up: ${JSON.stringify(run.moments)}`);
  console.log('  interrupted requests:');
  for (const [kind, n] of Object.entries(run.interrupted).sort((a, b) => b[1] - a[1]))
    console.log(`    ${String(n).padStart(6)}  ${kind}`);
  console.log(`  handler errors other than hang-ups: ${[...unexpected.values()].reduce((a, b) => a + b, 0)}`);
  for (const [what, n] of unexpected) console.log(`    ${String(n).padStart(6)}  ${what}`);
  console.log('  left behind:');
  console.log(
    `    PBX channels ${sim.pbx.channels.size}, bridges ${sim.pbx.bridges.size}, playbacks ${sim.pbx.playbacks.size}, recordings ${sim.pbx.liveRecordings.size}`,
  );
  console.log(
    `    routed ${JSON.stringify(runtime.router.size)}, calls ${runtime.calls.size}, ARI listeners ${listeners() - listenersBefore}`,
  );
  console.log(
    `    UDP sockets ${(after.UDPWrap ?? 0) - (before.UDPWrap ?? 0)}, timers ${(after.Timeout ?? 0) - (before.Timeout ?? 0)}`,
  );
  await server.close();
  await sim.close();
});
