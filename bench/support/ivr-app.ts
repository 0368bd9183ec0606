/**
 * The application side of bench/ivr-load.ts, in its own process (as it would be next to a real
 * Asterisk): a Server connected to the parent's Simulator, serving one number with a small IVR.
 * Driven over IPC; see {@link AppCommand} and {@link AppReply}. Not meant to be run by hand.
 *
 * IVRs (each of `rounds` rounds waits for one key, then answers it):
 * - `dtmf`: answer; per round `gather(undefined, { numDigits: 1 })`, then `play('sound:beep')`.
 *   No TTS and no RTP: every step is an ARI request or event.
 * - `say`: answer; `say('Welcome.')`; per round `gather('Press a key.', …)`, then
 *   `say('You pressed N.')`, with the offline TTS behind the (in-memory) TTS cache. Opens the
 *   call's externalMedia leg: one RTP port per call.
 */

import { HangupError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { encodeMulaw } from '../../src/media/g711.js';
import { type MediaLeg, MediaWorker } from '../../src/media/media-worker.js';
import { Pacer } from '../../src/media/pacer.js';
import { tone } from '../../src/media/tone.js';
import type { Simulator } from '../../src/sandbox/simulator.js';
import { Server } from '../../src/server.js';
import { OfflineTtsEngine } from '../../src/tts/offline-tts-engine.js';
import { type LoopDelay, loopDelay, settledHeapUsed, wallNow } from './bench-util.js';

export type IvrMode = 'dtmf' | 'say';

export type AppCommand =
  | {
      type: 'start';
      connection: ReturnType<Simulator['connectionOptions']>;
      mode: IvrMode;
      number: string;
      rounds: number;
      msPerChar: number;
      maxCalls: number;
      rtpPortMin: number;
      rtpPortMax: number;
      /** The Server's bound on HTTP connections to ARI (`connection.ariMaxConnections`). */
      ariConnections: number;
    }
  | { type: 'heap' }
  /** Starts `streams` RTP streams on a media worker of this process, to `port` on loopback. */
  | { type: 'streams-start'; streams: number; port: number; portMin: number }
  | { type: 'streams-stop' }
  | { type: 'cpu-reset' }
  | { type: 'report' }
  | { type: 'close' };

export type AppReply =
  | { type: 'ready' }
  | { type: 'streams-started' }
  | { type: 'streams-stopped'; sent: number; workerBusyPct: number; priority: string }
  | { type: 'cpu-reset' }
  | { type: 'heap'; heapUsed: number; rss: number; activeCalls: number }
  | {
      type: 'report';
      /** Channel id → wall-clock ms when its handler started. */
      handlerStarts: [string, number][];
      /** gather() calls that found their key already pressed (the press reached us too early). */
      earlyKeys: number;
      gathers: number;
      /** Handlers that ended with an error other than a hangup. */
      failures: string[];
      /** CPU time since the last cpu-reset, in ms, and the wall time it covers. */
      cpuMs: number;
      wallMs: number;
      /** Event-loop delay over the same span. */
      loop: LoopDelay;
      /** The shared 20 ms RTP clock: ticks dropped after stalls, worst lateness (ms). */
      pacer: { skippedTicks: number; maxLatenessMs: number };
    };

const send = (reply: AppReply) => process.send?.(reply);

let server: Server | undefined;
const handlerStarts: [string, number][] = [];
const failures: string[] = [];
let earlyKeys = 0;
let gathers = 0;
let cpuFrom = process.cpuUsage();
let wallFrom = performance.now();
let stopLoop = loopDelay();

/** A gather that returns within this long found its key already buffered. */
const EARLY_MS = 1;

async function start(cmd: Extract<AppCommand, { type: 'start' }>): Promise<void> {
  server = await Server.create({
    ...cmd.connection,
    appName: `bench-${process.pid}`,
    logger: silentLogger,
    tts: cmd.mode === 'say' ? new OfflineTtsEngine({ msPerChar: cmd.msPerChar }) : false,
    stt: false,
    ttsCacheDirectory: false,
    rtpPortMin: cmd.rtpPortMin,
    rtpPortMax: cmd.rtpPortMax,
    maxConcurrentCalls: cmd.maxCalls,
    connection: { ariMaxConnections: cmd.ariConnections },
  });
  server.on('callEnded', (ui, outcome) => {
    const error = outcome.error;
    if (error && !(error instanceof HangupError))
      failures.push(`${ui.channelId}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const gatherOnce = async (gather: () => Promise<string>): Promise<string> => {
    const asked = performance.now();
    const key = await gather();
    gathers++;
    if (performance.now() - asked < EARLY_MS) earlyKeys++;
    return key;
  };
  await server.registerExtension(cmd.number, {
    voice: async (ui) => {
      handlerStarts.push([ui.channelId, wallNow()]);
      await ui.answer();
      if (cmd.mode === 'dtmf') {
        for (let r = 0; r < cmd.rounds; r++) {
          await gatherOnce(() => ui.gather(undefined, { numDigits: 1, finishOnKey: '', timeout: 60 }));
          await ui.play('sound:beep');
        }
      } else {
        await ui.say('Welcome.');
        for (let r = 0; r < cmd.rounds; r++) {
          const key = await gatherOnce(() =>
            ui.gather('Press a key.', { numDigits: 1, finishOnKey: '', timeout: 60 }),
          );
          await ui.say(`You pressed ${key || 'nothing'}.`);
        }
      }
    },
  });
  send({ type: 'ready' });
}

/**
 * RTP streams sent by the process's media worker (the Server's own, MediaWorker.shared, idle in
 * the DTMF IVR, which has no RTP) while the main thread runs the IVR: the pacing the media plane
 * keeps when the app is busy. Legs of their own, pointed at the bench's receiver.
 */
let streams: { worker: MediaWorker; legs: MediaLeg[]; playing: boolean; loops: Promise<void>[] } | undefined;

async function startStreams(cmd: Extract<AppCommand, { type: 'streams-start' }>): Promise<void> {
  const worker = MediaWorker.shared;
  const legs: MediaLeg[] = [];
  for (let i = 0; i < cmd.streams; i++) {
    const leg = await worker.openLeg({
      ports: { min: cmd.portMin, max: cmd.portMin + cmd.streams + 100 },
      bindAddress: '127.0.0.1',
    });
    leg.setRemote('127.0.0.1', cmd.port);
    legs.push(leg);
  }
  // A prompt encoded once, as the TTS cache keeps them, in shared memory (posted without a copy).
  const encoded = encodeMulaw(tone(440, 10_000, { amplitude: 0.3 }));
  const prompt = new Uint8Array(new SharedArrayBuffer(encoded.length));
  prompt.set(encoded);
  const state = { worker, legs, playing: true, loops: [] as Promise<void>[] };
  state.loops = legs.map(async (leg) => {
    while (state.playing) if ((await leg.playUlaw(prompt)) === 'stopped') break;
  });
  streams = state;
  send({ type: 'streams-started' });
}

async function stopStreams(): Promise<void> {
  const state = streams;
  streams = undefined;
  if (!state) {
    send({ type: 'streams-stopped', sent: 0, workerBusyPct: 0, priority: '' });
    return;
  }
  state.playing = false;
  const busy = state.worker.utilization();
  await Promise.all(state.legs.map((leg) => leg.stop()));
  await Promise.all(state.loops);
  const stats = await Promise.all(state.legs.map((leg) => leg.fetchStats()));
  await Promise.all(state.legs.map((leg) => leg.close()));
  send({
    type: 'streams-stopped',
    sent: stats.reduce((n, s) => n + s.sent, 0),
    workerBusyPct: busy * 100,
    priority: state.worker.priority,
  });
}

process.on('message', (message) => {
  const cmd = message as AppCommand;
  switch (cmd.type) {
    case 'start':
      start(cmd).catch((error: unknown) => {
        console.error('ivr-app: could not start:', error);
        process.exit(1);
      });
      break;
    case 'heap': {
      const heapUsed = settledHeapUsed();
      send({ type: 'heap', heapUsed, rss: process.memoryUsage().rss, activeCalls: server?.activeCalls ?? 0 });
      break;
    }
    case 'streams-start':
      startStreams(cmd).catch((error: unknown) => {
        console.error('ivr-app: could not start the RTP streams:', error);
        process.exit(1);
      });
      break;
    case 'streams-stop':
      void stopStreams();
      break;
    case 'cpu-reset':
      cpuFrom = process.cpuUsage();
      wallFrom = performance.now();
      stopLoop = loopDelay();
      send({ type: 'cpu-reset' });
      break;
    case 'report': {
      const cpu = process.cpuUsage(cpuFrom);
      send({
        type: 'report',
        handlerStarts,
        earlyKeys,
        gathers,
        failures,
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: performance.now() - wallFrom,
        loop: stopLoop(),
        pacer: {
          skippedTicks: Pacer.shared.stats.skippedTicks,
          maxLatenessMs: Pacer.shared.stats.maxLatenessMs,
        },
      });
      break;
    }
    case 'close':
      void (server?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      break;
  }
});

// The parent going away ends this process too.
process.on('disconnect', () => process.exit(0));
