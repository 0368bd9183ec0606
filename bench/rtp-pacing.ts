/**
 * RTP pacing under load: N calls play S seconds of audio at once through the real media stack
 * (PortAllocator → RtpSession → AudioPlayer on the shared Pacer), to a receiver in a separate
 * process (bench/rtp-receiver.ts) that measures how regularly each stream's packets arrive.
 * A probe call meanwhile starts short prompts at random moments, to measure play() → first packet
 * latency on a busy clock. Prints, does not assert.
 *
 *   npx tsx bench/rtp-pacing.ts [--streams 200] [--seconds 60] [--port-min 40000]
 *                               [--sender stack|naive|paced|lean|worker] [--busy]
 *                               [--priority] [--realtime] [--timer-clock] [--precise-clock]
 *                               [--slots N] [--plays-apart] [--no-capture]
 *                               [--no-probe]
 *
 * --sender stack  (default) the media stack on this thread's shared pacer;
 * --sender naive  the anchor: one setInterval(20 ms) sending pre-encoded 172-byte packets from one
 *                 socket per stream, no player, no pacer;
 * --sender paced  the pacing regime's anchor: the naive sender's pre-encoded packets, on connected
 *                 sockets, sent by a Pacer on the precise clock with the worker's slots (10 by
 *                 default), on this thread: what the media worker's way of sending costs with none
 *                 of the library's per-packet work (no player, no RTP session, no worker thread).
 *                 With --priority this thread runs at nice −10, as the worker's does.
 * --sender lean   the library's per-packet work without its structure: the paced sender's way of
 *                 sending, each stream one closure that copies the prompt's next frame into its
 *                 packet, stamps it, sends it, checks it was not queued and publishes the samples
 *                 sent, as a player and an RTP session must (no AudioPlayer, no RtpSession, no
 *                 worker). `lean / paced` is what that work costs; `worker / lean` what the
 *                 library adds around it.
 * --sender worker the media stack in the media worker (src/media/media-worker.ts), this thread only
 *                 sending commands. Also prints the worker clock's tick lateness: a packet leaves
 *                 no more regularly than the tick that sends it (bench/wake-precision.ts gives the
 *                 host's own floor).
 * --priority      (all but naive) the sending thread at nice −10 (needs root), as Asterisk runs its media
 *                 threads at a raised priority.
 * --realtime      (worker) the worker thread in SCHED_FIFO at priority 10 (needs root; falls back
 *                 to --priority's nice value when refused), as `asterisk -p` runs Asterisk.
 * --precise-clock (stack) a pacer of its own on the media worker's precise clock instead of the
 *                 shared one on Node's timers: with --priority, the library as the worker runs it,
 *                 but on this thread, so `worker / stack` is what the media worker itself costs.
 * --plays-apart   (worker) each stream's play sent in an event-loop turn of its own, as calls start
 *                 their prompts, instead of all in one turn (the worker then gets them in one
 *                 message, all as views of one buffer object).
 * --timer-clock   (worker) the worker's pacer wakes on Node's timers alone (whole milliseconds)
 *                 instead of its precise clock (src/media/precise-clock.ts), for comparison.
 * --slots N       (worker, paced, lean, stack with --precise-clock) the pacer spreads the streams
 *                 over N phases of the period (MediaWorkerOptions.slots; default 10).
 *                 `--timer-clock --slots 1` times the worker's frames as the naive sender does: one
 *                 timer, one burst per period.
 * --no-capture    skip the kernel-timestamp capture (by default, when tcpdump is installed and
 *                 capturing is allowed, tcpdump records the packets on loopback and the pacing is
 *                 also measured from the kernel's transmit timestamps: bench/support/pcap-timing.ts).
 *                 Without the capture the receiver runs at nice −10 (its clock is then the measure);
 *                 with it, at the default priority (it is then only a sink).
 * --no-probe      (stack, worker) no probe plays: the sender then sends the naive sender's N
 *                 streams and nothing else (the probe's leg stays open, idle), for comparing CPU.
 *                 The probe's plays cost the main thread a few wake-ups a second, which the naive
 *                 sender does not pay.
 * --receiver-default-priority  the receiver at the default priority even without the capture
 *                 (for CPU figures: a receiver at nice −10 preempts a sender at nice 0 on every
 *                 datagram it wakes up for, which makes such a sender, the naive one, look dearer).
 * --json          also print one line `RESULT {…}` with the figures (bench/sender-cpu.ts reads it).
 * --busy          the main thread burns 30 ms out of every 50 (a busy loop allocating garbage),
 *                 like handler code, event parsing and GC of a loaded app.
 */

import { fork } from 'node:child_process';
import type { Socket } from 'node:dgram';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AudioPlayer, type PlayResult } from '../src/media/audio-player.js';
import { encodeMulaw } from '../src/media/g711.js';
import { DEFAULT_SLOTS, type PacedStream, Pacer } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { preciseClock } from '../src/media/precise-clock.js';
import { stampRtpHeader } from '../src/media/rtp-packet.js';
import { RtpSession } from '../src/media/rtp-session.js';
import { tone } from '../src/media/tone.js';
import type { ReceiverReport } from './rtp-receiver.js';
import { atPercentile } from './support/bench-util.js';
import { preEncodedPackets, stampFrame } from './support/naive-rtp.js';
import { type CaptureTiming, startCapture } from './support/pcap-timing.js';
import {
  busiestThreadCpu,
  describeThreadCpu,
  type ThreadCpu,
  threadCpu,
  totalThreadCpu,
} from './support/thread-cpu.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}

function choice(name: string, values: readonly string[], fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1] ?? '';
  if (!values.includes(value)) throw new Error(`--${name} is one of ${values.join(', ')}`);
  return value;
}

/**
 * Synthetic main-thread load: every 50 ms, 30 ms of busy work that allocates short-lived objects
 * (so the GC runs too). Returns the stopper and how much time it burnt.
 */
function burnMainThread(): { stop: () => void; burntMs: () => number } {
  let burnt = 0;
  let sink = 0;
  const timer = setInterval(() => {
    const start = performance.now();
    while (performance.now() - start < 30) {
      const garbage: { a: number; b: string }[] = [];
      for (let i = 0; i < 200; i++) garbage.push({ a: i, b: `x${i}` });
      sink += garbage.length;
    }
    burnt += performance.now() - start;
  }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      if (sink < 0) console.log(sink);
    },
    burntMs: () => burnt,
  };
}

/** The value at fraction `p` of an unsorted sample (see atPercentile). */
function percentile(values: readonly number[], p: number): number {
  return atPercentile(Float64Array.from(values).sort(), p);
}

const ms = (v: number): string => `${v.toFixed(2)} ms`;

/** "worker clock: tick lateness (N ticks) p50 …, p99 …, p99.9 …, max …" */
function describeLateness(lateness: readonly number[]): string {
  const sorted = Float64Array.from(lateness).sort();
  const at = (p: number): string => ms(atPercentile(sorted, p));
  return `worker clock: tick lateness (${sorted.length} ticks) p50 ${at(0.5)}, p99 ${at(0.99)}, p99.9 ${at(0.999)}, max ${at(1)}`;
}

const describeProbe = (latencies: number[]): string =>
  latencies.length === 0
    ? 'no probe'
    : `probe on the running clock (${latencies.length} plays) ` +
      `p50 ${ms(percentile(latencies, 0.5))} p99 ${ms(percentile(latencies, 0.99))}`;

/**
 * The streams' audio as the TTS cache hands a prompt to a call: µ-law encoded once, in shared
 * memory (the worker gets it without a copy), as the naive sender's packets are pre-encoded.
 */
function sharedPrompt(seconds: number): Uint8Array {
  const encoded = encodeMulaw(tone(440, seconds * 1000, { amplitude: 0.3 }));
  const shared = new Uint8Array(new SharedArrayBuffer(encoded.length));
  shared.set(encoded);
  return shared;
}

/** One way of sending the streams: set up, then play every stream for `seconds`. */
interface Sender {
  /** Plays all streams; resolves with the number that finished. */
  run(): Promise<number>;
  sent(): number | Promise<number>;
  /** Lines about the sender's own clock and start-up latency. */
  details(): string[];
  close(): Promise<void>;
}

async function stackSender(streams: number, seconds: number, portMin: number, port: number): Promise<Sender> {
  const allocator = new PortAllocator({ min: portMin, max: portMin + streams + 100 });
  const sessions: RtpSession[] = [];
  for (let i = 0; i < streams + 1; i++) {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    session.setRemote('127.0.0.1', port);
    sessions.push(session);
  }
  // --precise-clock: a pacer of its own on the media worker's clock (and slots), so that the same
  // library can be compared on this thread and in the worker.
  const pacer = process.argv.includes('--precise-clock') ? precisePacer() : Pacer.shared;
  let priority = 'nice 0';
  const lateness: number[] = [];
  pacer.observe((t) => lateness.push(t.actualMs - t.idealMs));
  const audio = sharedPrompt(seconds);
  const players = sessions.slice(0, streams).map((sink) => new AudioPlayer({ sink, pacer }));
  const startupLatencies: number[] = [];
  for (const p of players) p.onFirstPacket((info) => startupLatencies.push(info.latencyMs));
  const probe = new AudioPlayer({ sink: sessions[streams]!, pacer });
  const probeLatencies: number[] = [];
  probe.onFirstPacket((info) => probeLatencies.push(info.latencyMs));
  return {
    async run() {
      if (process.argv.includes('--priority')) priority = raiseThisThread();
      // The probe: 60 ms prompts started at random points of the running clock.
      const prompt = tone(1000, 60);
      const results = await whileProbing(probe, prompt, () =>
        Promise.all(players.map((p) => p.playUlaw(audio))),
      );
      return results.filter((r) => r === 'finished').length;
    },
    sent: () => sessions.reduce((n, s) => n + s.stats.sent, 0),
    details: () => [
      `stack: ${priority}, ${pacer === Pacer.shared ? "Node's timers" : 'precise clock'}; ` +
        `pacer: ${pacer.stats.ticks} ticks, ${pacer.stats.skippedTicks} skipped, tick lateness ` +
        `p50 ${ms(percentile(lateness, 0.5))}, p99 ${ms(percentile(lateness, 0.99))}, max ${ms(pacer.stats.maxLatenessMs)}`,
      `play() → first packet: all ${streams} at once p50 ${ms(percentile(startupLatencies, 0.5))} ` +
        `max ${ms(Math.max(...startupLatencies))}; ${describeProbe(probeLatencies)}`,
    ],
    close: async () => {
      await Promise.all(sessions.map((s) => s.close()));
    },
  };
}

/** The anchor of the issue: one interval timer, pre-encoded packets, nothing else. */
async function naiveSender(streams: number, seconds: number, portMin: number, port: number): Promise<Sender> {
  const allocator = new PortAllocator({ min: portMin, max: portMin + streams + 100 });
  const sockets = await Promise.all(
    Array.from({ length: streams }, () => allocator.allocate('127.0.0.1').then((a) => a.socket)),
  );
  const payload = encodeMulaw(tone(440, 20, { amplitude: 0.3 }));
  const packets = preEncodedPackets(streams, Buffer.from(payload));
  let sent = 0;
  return {
    run: () =>
      new Promise<number>((resolve) => {
        const frames = (seconds * 1000) / 20;
        let frame = 0;
        const timer = setInterval(() => {
          for (let i = 0; i < streams; i++) {
            const packet = packets[i]!;
            stampFrame(packet, frame);
            sockets[i]!.send(packet, port, '127.0.0.1');
            sent++;
          }
          if (++frame === frames) {
            clearInterval(timer);
            resolve(streams);
          }
        }, 20);
      }),
    sent: () => sent,
    details: () => [],
    close: async () => {
      for (const s of sockets) s.close();
    },
  };
}

/**
 * `streams` sockets of the RTP range, each connected to the receiver, as RtpSession connects its
 * socket to the peer (the paced and lean senders).
 */
async function connectedSockets(streams: number, portMin: number, port: number): Promise<Socket[]> {
  const allocator = new PortAllocator({ min: portMin, max: portMin + streams + 100 });
  const sockets = await Promise.all(
    Array.from({ length: streams }, () => allocator.allocate('127.0.0.1').then((a) => a.socket)),
  );
  await Promise.all(
    sockets.map((socket) => new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve))),
  );
  return sockets;
}

/** The slots of the pacers of this bench: --slots, else the library's default. */
function slotCount(): number {
  return process.argv.includes('--slots') ? option('slots', DEFAULT_SLOTS) : DEFAULT_SLOTS;
}

/** A pacer on the media worker's precise clock, with its slots (--slots). */
function precisePacer(): Pacer {
  return new Pacer({ clock: preciseClock(), slots: slotCount() });
}

async function pacedSender(streams: number, seconds: number, portMin: number, port: number): Promise<Sender> {
  const sockets = await connectedSockets(streams, portMin, port);
  const packets = preEncodedPackets(streams, Buffer.from(encodeMulaw(tone(440, 20, { amplitude: 0.3 }))));
  let priority = 'nice 0';
  const pacer = precisePacer();
  let sent = 0;
  return {
    run: () =>
      new Promise<number>((resolve) => {
        if (process.argv.includes('--priority')) priority = raiseThisThread();
        const frames = (seconds * 1000) / 20;
        let left = streams;
        for (let i = 0; i < streams; i++) {
          const packet = packets[i]!;
          const socket = sockets[i]!;
          let frame = 0;
          const stream: PacedStream = {
            onTick() {
              stampFrame(packet, frame);
              socket.send(packet);
              sent++;
              if (++frame === frames) {
                pacer.remove(stream);
                if (--left === 0) resolve(streams);
              }
            },
          };
          pacer.add(stream);
        }
      }),
    sent: () => sent,
    details: () => [
      `paced: ${priority}, precise clock, ${slotCount()} slots; pacer ${JSON.stringify(pacer.stats)}`,
    ],
    close: async () => {
      for (const s of sockets) s.close();
    },
  };
}

/**
 * The media worker's anchor with the library's per-packet work but none of its structure: each
 * stream is one closure that does what a player and an RTP session must do for every frame of a
 * prompt, and nothing else: a look at the shared stop epoch, the prompt's next 160 bytes copied
 * into the stream's packet (word by word, from the shared prompt, as RtpSession does), sequence
 * number, timestamp and header, the send and the check that it was not queued (else a new packet),
 * and the samples sent stored in shared memory for the main thread. Sent like the paced sender:
 * connected sockets, a Pacer on the precise clock, this thread at nice −10 with --priority. So
 * `lean / paced` is what that work costs, and `worker / lean` what the library adds around it
 * (bench/sender-cpu.ts --anchor lean).
 */
async function leanSender(streams: number, seconds: number, portMin: number, port: number): Promise<Sender> {
  const sockets = await connectedSockets(streams, portMin, port);
  const prompt = sharedPrompt(seconds);
  const promptWords = new Int32Array(prompt.buffer, 0, prompt.byteLength >> 2);
  /** As the media worker's: samples sent of each playback, and the stop epoch (never moved here). */
  const counters = new Int32Array(new SharedArrayBuffer(4 * streams));
  const control = new Int32Array(new SharedArrayBuffer(64));
  let seenStopEpoch = 0;
  let stopsSeen = 0;
  let queued = 0;
  let priority = 'nice 0';
  const pacer = precisePacer();
  let sent = 0;
  return {
    run: () =>
      new Promise<number>((resolve) => {
        if (process.argv.includes('--priority')) priority = raiseThisThread();
        let left = streams;
        for (let i = 0; i < streams; i++) {
          const socket = sockets[i]!;
          const ssrc = i + 1;
          let packet = newLeanPacket();
          let payload = payloadWords(packet);
          let offset = 0;
          let sequence = 0;
          let timestamp = 0;
          const stream: PacedStream = {
            onTick() {
              if (control[0] !== seenStopEpoch) {
                seenStopEpoch = Atomics.load(control, 0);
                stopsSeen++;
              }
              const from = offset >> 2;
              for (let w = 0; w < payload.length; w++) payload[w] = promptWords[from + w]!;
              offset += 160;
              sequence = (sequence + 1) & 0xffff;
              timestamp = (timestamp + 160) | 0;
              stampRtpHeader(packet, 0, false, sequence, timestamp, ssrc);
              socket.send(packet);
              if (socket.getSendQueueCount() > 0) {
                // Queued by libuv (the kernel's buffer was full): the packet is still referenced.
                queued++;
                packet = newLeanPacket();
                payload = payloadWords(packet);
              }
              counters[i] = offset;
              sent++;
              if (offset + 160 > prompt.length) {
                pacer.remove(stream);
                if (--left === 0) resolve(streams);
              }
            },
          };
          pacer.add(stream);
        }
      }),
    sent: () => sent,
    details: () => [
      `lean: ${priority}, precise clock, ${slotCount()} slots; ${queued} sends queued, ${stopsSeen} stops; ` +
        `pacer ${JSON.stringify(pacer.stats)}`,
    ],
    close: async () => {
      for (const s of sockets) s.close();
    },
  };
}

/** A PCMU packet of one 20 ms frame in memory of its own (so its payload is word aligned). */
function newLeanPacket(): Buffer {
  const packet = Buffer.alloc(12 + 160);
  packet[0] = 0x80;
  return packet;
}

function payloadWords(packet: Buffer): Int32Array {
  return new Int32Array(packet.buffer, packet.byteOffset + 12, 40);
}

/**
 * This thread at nice −10, as the media worker's (--priority), and only from now on: the receiver
 * and tcpdump, started before, keep the default priority (a child inherits its parent thread's
 * nice value). Returns what happened, for the report.
 */
function raiseThisThread(): string {
  try {
    setPriority(0, -10);
    return 'nice −10';
  } catch {
    return 'nice 0 (nice −10 refused: not root)';
  }
}

async function workerSender(
  streams: number,
  seconds: number,
  portMin: number,
  port: number,
): Promise<Sender> {
  const { MediaWorker } = await import('../src/media/media-worker.js');
  const priority = process.argv.includes('--priority') ? -10 : undefined;
  const clock = process.argv.includes('--timer-clock') ? 'timers' : 'precise';
  const realtime = process.argv.includes('--realtime') ? 10 : undefined;
  const slots = process.argv.includes('--slots') ? option('slots', 10) : undefined;
  const playsApart = process.argv.includes('--plays-apart');
  const worker = new MediaWorker({
    clock,
    ...(slots === undefined ? {} : { slots }),
    ...(priority === undefined ? {} : { threadPriority: priority }),
    ...(realtime === undefined ? {} : { realtimePriority: realtime }),
  });
  const range = { min: portMin, max: portMin + streams + 100 };
  const legs: import('../src/media/media-worker.js').MediaLeg[] = [];
  for (let i = 0; i < streams + 1; i++) {
    const leg = await worker.openLeg({ ports: range, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', port);
    legs.push(leg);
  }
  const audio = sharedPrompt(seconds);
  const players = legs.slice(0, streams);
  const startupLatencies: number[] = [];
  for (const p of players) p.onFirstPacket((info) => startupLatencies.push(info.latencyMs));
  const probe = legs[streams]!;
  const probeLatencies: number[] = [];
  probe.onFirstPacket((info) => probeLatencies.push(info.latencyMs));
  // The worker's clock: each tick's lateness, as the worker relays it (once a second) to this
  // thread's pacer. A packet can leave no more regularly than the tick that sends it.
  const lateness: number[] = [];
  Pacer.shared.observe((t) => lateness.push(t.actualMs - t.idealMs));
  let pacerStats: unknown;
  return {
    async run() {
      const prompt = tone(1000, 60);
      const results = await whileProbing(probe, prompt, async () => {
        if (!playsApart) return Promise.all(players.map((p) => p.playUlaw(audio)));
        // As calls start their prompts: each play in an event-loop turn of its own, so each reaches
        // the worker in a message of its own, with a view (and buffer object) of its own of the
        // shared prompt.
        const plays: Promise<PlayResult>[] = [];
        for (const p of players) {
          plays.push(p.playUlaw(audio));
          await new Promise((resolve) => setImmediate(resolve));
        }
        return Promise.all(plays);
      });
      pacerStats = await worker.pacerStats();
      return results.filter((r) => r === 'finished').length;
    },
    async sent() {
      const stats = await Promise.all(legs.map((l) => l.fetchStats()));
      return stats.reduce((n, s) => n + s.sent, 0);
    },
    details: () => [
      `worker: thread priority ${worker.priority}; ${clock} clock, ${slots ?? 10} slots; pacer ${JSON.stringify(pacerStats)}; worker event loop ${(worker.utilization() * 100).toFixed(1)} % busy`,
      describeLateness(lateness),
      `play() → first packet: all ${streams} at once p50 ${ms(percentile(startupLatencies, 0.5))} ` +
        `max ${ms(Math.max(...startupLatencies))}; ${describeProbe(probeLatencies)}`,
    ],
    close: async () => {
      await Promise.all(legs.map((l) => l.close()));
      await worker.close();
    },
  };
}

async function main(): Promise<void> {
  const streams = option('streams', 200);
  const seconds = option('seconds', 60);
  const portMin = option('port-min', 40000);
  const senderKind = choice('sender', ['stack', 'naive', 'paced', 'lean', 'worker'], 'stack');
  const busy = process.argv.includes('--busy');
  const label = `${senderKind}${
    senderKind === 'naive'
      ? ''
      : senderKind === 'worker' && process.argv.includes('--realtime')
        ? ' (SCHED_FIFO 10)'
        : process.argv.includes('--priority')
          ? ' (nice −10)'
          : ''
  }`;

  // The receiver: its own process and event loop (fork keeps tsx's loader via execArgv).
  // Compiled (tsc) the receiver is a .js file beside this one; under tsx, the .ts source.
  const receiverFile = import.meta.url.endsWith('.js') ? './rtp-receiver.js' : './rtp-receiver.ts';
  const receiver = fork(fileURLToPath(new URL(receiverFile, import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; recvBufferSize: number }>((resolve, reject) => {
    receiver.once('message', (m) => resolve(m as { port: number; recvBufferSize: number }));
    receiver.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });

  const make = {
    stack: stackSender,
    naive: naiveSender,
    paced: pacedSender,
    lean: leanSender,
    worker: workerSender,
  }[senderKind]!;
  const sender = await make(streams, seconds, portMin, ready.port);
  const capture = process.argv.includes('--no-capture')
    ? { unavailable: 'turned off (--no-capture)' }
    : await startCapture(ready.port);

  // Without the kernel's timestamps the receiver's own clock is the measure, so it gets the CPU
  // before anything else (nice −10, when allowed) and the figures show the sender's timing rather
  // than the receiver's scheduling. With them it is only a sink, left at the default priority: on
  // loopback every datagram wakes it inside the sender's sendmsg, and at nice −10 it would preempt
  // the sender mid-burst, which a receiver on another host (Asterisk) never does.
  let receiverNice = 'default priority';
  if (!('stop' in capture) && !process.argv.includes('--receiver-default-priority')) {
    try {
      setPriority(receiver.pid!, -10);
      receiverNice = 'nice −10';
    } catch {
      // Not permitted (not root): measured at the default priority.
    }
  }
  console.log(
    `rtp-pacing: ${streams} streams × ${seconds} s, sender ${senderKind}${busy ? ', main thread busy 30 ms of every 50' : ''}, ` +
      `receiver pid ${receiver.pid} (${receiverNice}, recv buffer ${(ready.recvBufferSize / 1024 / 1024).toFixed(1)} MiB), node ${process.version}`,
  );

  const burner = busy ? burnMainThread() : undefined;
  const cpuBefore = process.cpuUsage();
  const threadsBefore = threadCpu();
  // A second snapshot once every play has started: the steady state's share of each thread.
  let threadsSteady: { at: number; cpu: ThreadCpu } | undefined;
  const steadyTimer = setTimeout(() => {
    threadsSteady = { at: performance.now(), cpu: threadCpu() };
  }, 2000);
  const started = performance.now();
  const finished = await sender.run();
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const threadsAfter = threadCpu();
  clearTimeout(steadyTimer);
  const steadyMs = threadsSteady ? started + elapsed - threadsSteady.at : 0;
  const threadLines = [
    describeThreadCpu(threadsBefore, threadsAfter, elapsed),
    threadsSteady && describeThreadCpu(threadsSteady.cpu, threadsAfter, steadyMs),
  ];
  // Once every play has started: what sending costs, without the start of 500 plays at once.
  const steadyCpuPct = threadsSteady && totalThreadCpu(threadsSteady.cpu, threadsAfter, steadyMs);
  // The sending thread alone (the busiest one: the naive sender's main thread, the media worker's
  // thread), without what the process's other threads spent meanwhile.
  const steadySendingThreadPct = threadsSteady && busiestThreadCpu(threadsSteady.cpu, threadsAfter, steadyMs);
  burner?.stop();

  // Let the last datagrams land, then ask for the report.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const reportPromise = new Promise<ReceiverReport>((resolve) =>
    receiver.once('message', (m) => resolve(m as ReceiverReport)),
  );
  receiver.send({ type: 'report' });
  const report = await reportPromise;
  const kernel: CaptureTiming | string = 'stop' in capture ? await capture.stop() : capture.unavailable;
  const sent = await sender.sent();
  const details = sender.details();
  await sender.close();

  // The burner's time is the simulated app's, not the media plane's.
  const senderCpuMs = (cpu.user + cpu.system) / 1000 - (burner?.burntMs() ?? 0);
  const cpuPct = (senderCpuMs / elapsed) * 100;
  console.log(`played: ${finished}/${streams} finished in ${(elapsed / 1000).toFixed(2)} s`);
  console.log(
    `packets: sent ${sent}, received ${report.received}, lost ${report.lost}, reordered ${report.reordered}`,
  );
  console.log(
    `inter-arrival deviation from 20 ms (${report.deviation.samples} samples): p50 ${ms(report.deviation.p50)}, ` +
      `p99 ${ms(report.deviation.p99)}, p99.9 ${ms(report.deviation.p999)}, max ${ms(report.deviation.max)}`,
  );
  if (typeof kernel === 'string') {
    console.log(
      `kernel timestamps: none (${kernel}); the deviation above includes the receiver's own delays`,
    );
  } else {
    console.log(
      `deviation by kernel transmit timestamps (tcpdump, ${kernel.deviation.samples} samples, ` +
        `${kernel.droppedByKernel} dropped by the capture): p50 ${ms(kernel.deviation.p50)}, ` +
        `p99 ${ms(kernel.deviation.p99)}, p99.9 ${ms(kernel.deviation.p999)}, max ${ms(kernel.deviation.max)}`,
    );
    const steady = kernel.steady;
    console.log(
      `  after the first second (steady state, ${steady.samples} samples): p50 ${ms(steady.p50)}, ` +
        `p99 ${ms(steady.p99)}, p99.9 ${ms(steady.p999)}, max ${ms(steady.max)}`,
    );
  }
  console.log(`RFC 3550 jitter: mean ${ms(report.rfc3550.mean)}, worst stream ${ms(report.rfc3550.max)}`);
  for (const line of details) console.log(line);
  console.log(
    `sender CPU: ${cpuPct.toFixed(1)} % of one core${busy ? ` (the ${(((burner?.burntMs() ?? 0) / elapsed) * 100).toFixed(0)} % burnt by the synthetic load not counted)` : ''}`,
  );
  if (threadLines[0]) console.log(`  by thread, whole run: ${threadLines[0]}`);
  if (threadLines[1]) console.log(`  by thread, after the first 2 s: ${threadLines[1]}`);
  if (steadyCpuPct !== undefined)
    console.log(`sender CPU after the first 2 s (all threads): ${steadyCpuPct.toFixed(1)} % of one core`);
  console.log('');
  console.log(
    '| sender | busy | streams | seconds | sent | received | lost | dev p50 | dev p99 | dev max | kernel p50 | kernel p99 | kernel max | steady p99 | CPU |',
  );
  const k = typeof kernel === 'string' ? undefined : kernel.deviation;
  console.log(
    `| ${label} | ${busy ? 'yes' : 'no'} | ${streams} | ${seconds} | ${sent} | ${report.received} | ${report.lost} | ` +
      `${ms(report.deviation.p50)} | ${ms(report.deviation.p99)} | ${ms(report.deviation.max)} | ` +
      `${k ? `${ms(k.p50)} | ${ms(k.p99)} | ${ms(k.max)}` : '– | – | –'} | ` +
      `${typeof kernel === 'string' ? '–' : ms(kernel.steady.p99)} | ${cpuPct.toFixed(1)} % |`,
  );
  if (process.argv.includes('--json')) {
    const result = {
      sender: label,
      streams,
      seconds,
      sent,
      received: report.received,
      lost: report.lost,
      cpuPct,
      steadyCpuPct: steadyCpuPct ?? null,
      steadySendingThreadPct: steadySendingThreadPct ?? null,
      deviationP99Ms: report.deviation.p99,
      kernelSteadyP99Ms: typeof kernel === 'string' ? null : kernel.steady.p99,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * Runs `work` while a probe plays short prompts started at random points of the running clock
 * (their first-packet latency is what a new say() on a busy clock waits).
 */
async function whileProbing<T>(
  probe: { play(pcm: Int16Array): Promise<unknown> },
  prompt: Int16Array,
  work: () => Promise<T>,
): Promise<T> {
  if (process.argv.includes('--no-probe')) return work();
  let running = true;
  const probing = (async () => {
    while (running) {
      await probe.play(prompt);
      await new Promise((resolve) => setTimeout(resolve, 40 + Math.random() * 200));
    }
  })();
  try {
    return await work();
  } finally {
    running = false;
    await probing;
  }
}
