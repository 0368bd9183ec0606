/**
 * RTP pacing under load: N calls play S seconds of audio at once through the real media stack
 * (PortAllocator → RtpSession → AudioPlayer on the shared Pacer), to a receiver in a separate
 * process (bench/rtp-receiver.ts) that measures how regularly each stream's packets arrive.
 * A probe call meanwhile starts short prompts at random moments, to measure play() → first packet
 * latency on a busy clock. Prints, does not assert.
 *
 *   npx tsx bench/rtp-pacing.ts [--streams 200] [--seconds 60] [--port-min 40000]
 */

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AudioPlayer } from '../src/media/audio-player.js';
import { Pacer } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { RtpSession } from '../src/media/rtp-session.js';
import { tone } from '../src/media/tone.js';
import type { ReceiverReport } from './rtp-receiver.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

const ms = (v: number): string => `${v.toFixed(2)} ms`;

async function main(): Promise<void> {
  const streams = option('streams', 200);
  const seconds = option('seconds', 60);
  const portMin = option('port-min', 40000);

  // The receiver: its own process and event loop (fork keeps tsx's loader via execArgv).
  const receiver = fork(fileURLToPath(new URL('./rtp-receiver.ts', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; recvBufferSize: number }>((resolve, reject) => {
    receiver.once('message', (m) => resolve(m as { port: number; recvBufferSize: number }));
    receiver.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });

  const allocator = new PortAllocator({ min: portMin, max: portMin + streams + 100 });
  const sessions: RtpSession[] = [];
  for (let i = 0; i < streams + 1; i++) {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    session.setRemote('127.0.0.1', ready.port);
    sessions.push(session);
  }
  const pacer = Pacer.shared;
  const lateness: number[] = [];
  pacer.observe((t) => lateness.push(t.actualMs - t.idealMs));

  console.log(
    `rtp-pacing: ${streams} streams × ${seconds} s, receiver pid ${receiver.pid} ` +
      `(recv buffer ${(ready.recvBufferSize / 1024 / 1024).toFixed(1)} MiB), node ${process.version}`,
  );

  const audio = tone(440, seconds * 1000, { amplitude: 0.3 });
  const players = sessions.slice(0, streams).map((sink) => new AudioPlayer({ sink }));
  const startupLatencies: number[] = [];
  for (const p of players) p.onFirstPacket((info) => startupLatencies.push(info.latencyMs));

  // The probe: 60 ms prompts started at random points of the running clock.
  const probe = new AudioPlayer({ sink: sessions[streams]! });
  const probeLatencies: number[] = [];
  probe.onFirstPacket((info) => probeLatencies.push(info.latencyMs));
  const prompt = tone(1000, 60);
  let running = true;
  const probing = (async () => {
    while (running) {
      await probe.play(prompt);
      await new Promise((resolve) => setTimeout(resolve, 40 + Math.random() * 200));
    }
  })();

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const results = await Promise.all(players.map((p) => p.play(audio)));
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  running = false;
  await probing;

  // Let the last datagrams land, then ask for the report.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const reportPromise = new Promise<ReceiverReport>((resolve) =>
    receiver.once('message', (m) => resolve(m as ReceiverReport)),
  );
  receiver.send({ type: 'report' });
  const report = await reportPromise;
  const sent = sessions.reduce((n, s) => n + s.stats.sent, 0);
  await Promise.all(sessions.map((s) => s.close()));

  const cpuPct = ((cpu.user + cpu.system) / 1000 / elapsed) * 100;
  const finished = results.filter((r) => r === 'finished').length;
  console.log(`played: ${finished}/${streams} finished in ${(elapsed / 1000).toFixed(2)} s`);
  console.log(
    `packets: sent ${sent}, received ${report.received}, lost ${report.lost}, reordered ${report.reordered}`,
  );
  console.log(
    `inter-arrival deviation from 20 ms (${report.deviation.samples} samples): p50 ${ms(report.deviation.p50)}, ` +
      `p99 ${ms(report.deviation.p99)}, p99.9 ${ms(report.deviation.p999)}, max ${ms(report.deviation.max)}`,
  );
  console.log(`RFC 3550 jitter: mean ${ms(report.rfc3550.mean)}, worst stream ${ms(report.rfc3550.max)}`);
  console.log(
    `pacer: ${pacer.stats.ticks} ticks, ${pacer.stats.skippedTicks} skipped, tick lateness ` +
      `p50 ${ms(percentile(lateness, 0.5))}, p99 ${ms(percentile(lateness, 0.99))}, max ${ms(pacer.stats.maxLatenessMs)}`,
  );
  console.log(
    `play() → first packet: all ${streams} at once p50 ${ms(percentile(startupLatencies, 0.5))} ` +
      `max ${ms(Math.max(...startupLatencies))}; probe on the running clock (${probeLatencies.length} plays) ` +
      `p50 ${ms(percentile(probeLatencies, 0.5))} p99 ${ms(percentile(probeLatencies, 0.99))}`,
  );
  console.log(`sender CPU: ${cpuPct.toFixed(1)} % of one core`);
  console.log('');
  console.log(
    '| streams | seconds | sent | received | lost | jitter p50 | jitter p99 | jitter max | first packet p50 | CPU |',
  );
  console.log(
    `| ${streams} | ${seconds} | ${sent} | ${report.received} | ${report.lost} | ${ms(report.deviation.p50)} | ` +
      `${ms(report.deviation.p99)} | ${ms(report.deviation.max)} | ${ms(percentile(probeLatencies, 0.5))} | ` +
      `${cpuPct.toFixed(0)} % |`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
