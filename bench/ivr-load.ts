/**
 * IVR load: N concurrent simulated calls into a Server, the Server in a process of its own
 * (bench/support/ivr-app.ts) as it would be next to a real Asterisk, the Simulator and its phones
 * in this one. Everything on loopback. Prints, does not assert; ends by itself (--max-seconds).
 *
 *   npx tsx bench/ivr-load.ts [--mode both|dtmf|say] [--calls 1000] [--say-calls <calls>] [--rounds 5]
 *       [--think-ms 1500] [--ms-per-char 65] [--rtp-port-min 20000] [--rtp-port-max 24000] [--max-seconds 300]
 *       [--ari-connections 64] [--pacing-streams 0] [--pacing-port-min 30000]
 *
 * The app's Server gets `connection: { ariMaxConnections: 64 }`: with the library's default of 16
 * HTTP connections, at 2000 calls requests queue for a connection behind the simulator's slow
 * round trips (it shares 2 cores with the app): key → next request p50 65 ms / p99 631 ms with 16,
 * 3 ms / 58 ms with 64 (2026-12-06).
 *
 * Two IVRs (see ivr-app.ts), one after the other, each with its own Simulator and app process:
 * - `dtmf`, --calls calls: gather without a prompt, then `play('sound:beep')`. ARI only, no RTP.
 * - `say`, --say-calls calls: offline-TTS prompts (--ms-per-char; 65 is speech-like, 5 makes
 *   them a few frames long) behind the in-memory TTS cache, over each call's externalMedia leg:
 *   one RTP port per call (the range must hold them), ~50 packets/s per talking call each way.
 *
 * Phases of each run:
 * 1. set-up: all calls are placed at once (a burst). Per call: placed → answered (the channel goes
 *    Up at the PBX), StasisStart → handler start (the two processes' wall clocks), StasisStart →
 *    the answer request reaching the PBX; `say` also placed → first prompt frame at the phone.
 * 2. heap: once every call is up and waiting in gather(), the app's heapUsed after a full GC,
 *    minus its heapUsed before the first call, per active call.
 * 3. keys: each phone presses a key --rounds times, each after a random think time (200 ms to
 *    --think-ms) once the previous reply (and prompt) has finished. `dtmf`: key press at the PBX
 *    (pbx.receiveDtmf) → the app's next ARI request for that call reaching the PBX (the simulator's
 *    'ari-request' hook): ChannelDtmfReceived over the websocket, the handler, POST /play over
 *    HTTP. `say`: key press → the first RTP frame of the spoken reply reaching the phone, and
 *    the same frame as it left the app: when tcpdump can capture, the first packets of talkspurts
 *    from the app's RTP ports are captured on loopback with the kernel's timestamps. The phone's
 *    figure includes the simulator's own delay in reading the packet (it shares the 2 cores with
 *    the app); the wire's does not (it still includes the simulator's delay in reporting the key).
 * 4. the handlers return and hang up; the heap is measured again.
 *
 * --pacing-streams N (DTMF IVR): during the key phase, a media worker in the app process also
 * sends N RTP streams of a prompt to a receiver process (bench/rtp-receiver.ts), while the app's
 * main thread runs the IVR; their pacing is measured as in bench/rtp-pacing.ts, from the kernel's
 * transmit timestamps when tcpdump can capture (bench/support/pcap-timing.ts). This is the case
 * the media worker exists for: audio that keeps time while the handlers are busy.
 */

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AriRequestEvent } from '../src/sandbox/ari-server.js';
import { DEFAULT_SOUNDS } from '../src/sandbox/media-catalog.js';
import type { SimChannel } from '../src/sandbox/sim-model.js';
import { Simulator } from '../src/sandbox/simulator.js';
import type { ReceiverReport } from './rtp-receiver.js';
import {
  choiceFlag,
  delay,
  describe,
  giveUpAfter,
  type LoopDelay,
  loopDelay,
  machine,
  ms,
  numberFlag,
  runBench,
  type Summary,
  summarize,
  wallNow,
} from './support/bench-util.js';
import type { AppCommand, AppReply, IvrMode } from './support/ivr-app.js';
import { type CaptureTiming, captureLoopback, datagrams, startCapture } from './support/pcap-timing.js';
import { Ear } from './support/phone-ear.js';

const mode = choiceFlag('mode', ['both', 'dtmf', 'say'] as const, 'both');
const dtmfCalls = numberFlag('calls', 1000);
const sayCalls = numberFlag('say-calls', dtmfCalls);
const rounds = numberFlag('rounds', 5);
const thinkMs = numberFlag('think-ms', 1500);
const msPerChar = numberFlag('ms-per-char', 65);
const rtpPortMin = numberFlag('rtp-port-min', 20000);
const rtpPortMax = numberFlag('rtp-port-max', 24000);
/** The app's bound on HTTP connections to ARI (16 by default in the library; see the header). */
const ariConnections = numberFlag('ari-connections', 64);
/** RTP streams the app's media worker sends during the DTMF key phase (0: none). */
const pacingStreams = numberFlag('pacing-streams', 0);
const pacingPortMin = numberFlag('pacing-port-min', 30000);
/** Longest wait for any one step of a call (answer, a reply, the hangup). */
const STEP_TIMEOUT_MS = 30_000;
/** A phone hearing nothing for this long after a prompt takes it as finished. */
const QUIET_MS = 200;
const NUMBER = '2000';
/** A run that hangs is ended after this long, whatever happened. */
const maxSeconds = numberFlag('max-seconds', 300);

interface RunResult {
  mode: IvrMode;
  calls: number;
  answeredCalls: number;
  setupPerSecond: number;
  placedToAnswered: Summary;
  stasisToHandler: Summary;
  stasisToAnswerRequest: Summary;
  placedToFirstAudio?: Summary;
  keyLatency: Summary;
  /** `say`: key press → the reply's first frame leaving the app (kernel timestamp), or why not measured. */
  keyToWire?: WireLatency | string;
  keyLost: number;
  nextRequests: Map<string, number>;
  heapPerCallKiB: number;
  heapLeftKiB: number;
  earlyKeys: number;
  gathers: number;
  keysPerSecond: number;
  appCpuPct: number;
  simCpuPct: number;
  appLoop: LoopDelay;
  simLoop: LoopDelay;
  pacer: { skippedTicks: number; maxLatenessMs: number };
  /** Of those ticks, the ones skipped while the calls were being set up (all answered at once). */
  setupSkippedTicks: number;
  setupRequestsPerCall: number;
  /** CPU of each process from the first call placed until every call was ready. */
  setupCpu: { app: number; sim: number; seconds: number };
  failures: string[];
  unfinished: number;
  pacing?: PacingResult;
}

/** Key press → first reply frame as the kernel sent it (see replyOnTheWire). */
interface WireLatency {
  latency: Summary;
  /** Presses after which no marked packet of that call was captured. */
  unmatched: number;
  droppedByKernel: number;
}

/**
 * For each press, the first talkspurt start (marked RTP packet) captured from the call's app port
 * at or after the press: the reply's first frame, as the app's socket handed it to the kernel. The
 * press and the capture are both on the wall clock (CLOCK_REALTIME).
 */
function replyOnTheWire(
  presses: readonly { appPort: number; wallMs: number }[],
  capture: { pcap: Buffer; droppedByKernel: number },
): WireLatency {
  const byPort = new Map<number, number[]>();
  for (const d of datagrams(capture.pcap)) {
    const list = byPort.get(d.sourcePort) ?? [];
    list.push(Number(d.ns) / 1e6);
    byPort.set(d.sourcePort, list);
  }
  const latency: number[] = [];
  let unmatched = 0;
  for (const press of presses) {
    const sent = byPort.get(press.appPort)?.find((at) => at >= press.wallMs);
    if (sent === undefined) unmatched++;
    else latency.push(sent - press.wallMs);
  }
  return { latency: summarize(latency), unmatched, droppedByKernel: capture.droppedByKernel };
}

/** What the receiver and the capture saw of the app's RTP streams during the key phase. */
interface PacingResult {
  streams: number;
  sent: number;
  receiver: ReceiverReport;
  kernel: CaptureTiming | string;
  workerBusyPct: number;
  /** The worker thread's priority ('nice -10' when it could be raised). */
  priority: string;
}

/** The receiver process and the capture, started before the streams. */
async function startPacingProbe(): Promise<{
  port: number;
  finish: (app: ChildProcess) => Promise<PacingResult>;
}> {
  const receiver = fork(fileURLToPath(new URL('./rtp-receiver.ts', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    receiver.once('message', (m) => resolve(m as { port: number }));
    receiver.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
  const capture = await startCapture(port);
  return {
    port,
    finish: async (app) => {
      const stopped = await ask(app, { type: 'streams-stop' }, 'streams-stopped');
      await delay(300);
      const reported = new Promise<ReceiverReport>((resolve) =>
        receiver.once('message', (m) => resolve(m as ReceiverReport)),
      );
      receiver.send({ type: 'report' });
      const report = await reported;
      const kernel = 'stop' in capture ? await capture.stop() : capture.unavailable;
      return {
        streams: pacingStreams,
        sent: stopped.sent,
        receiver: report,
        kernel,
        workerBusyPct: stopped.workerBusyPct,
        priority: stopped.priority,
      };
    },
  };
}

/** Sends a command to the app process and resolves with its next reply of `type`. */
function ask<T extends AppReply['type']>(
  app: ChildProcess,
  command: AppCommand,
  type: T,
): Promise<Extract<AppReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if ((m as AppReply).type !== type) return;
      app.off('message', onMessage);
      app.off('exit', onExit);
      resolve(m as Extract<AppReply, { type: T }>);
    };
    const onExit = (code: number | null) => reject(new Error(`the app process exited with ${code}`));
    app.on('message', onMessage);
    app.once('exit', onExit);
    app.send(command);
  });
}

/** Asks the app process to close its Server and waits (a bounded time) for it to exit. */
async function closeApp(app: ChildProcess): Promise<void> {
  if (app.exitCode !== null || app.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => app.once('exit', () => resolve()));
  app.send({ type: 'close' } satisfies AppCommand);
  if ((await withTimeout(exited, 10_000)) === 'timeout') app.kill();
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function run(ivr: IvrMode, calls: number): Promise<RunResult> {
  const sim = await Simulator.start();
  const pbx = sim.pbx;
  const app = fork(fileURLToPath(new URL('./support/ivr-app.ts', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...process.execArgv, '--expose-gc'],
  });
  try {
    await ask(
      app,
      {
        type: 'start',
        connection: sim.connectionOptions(),
        mode: ivr,
        number: NUMBER,
        rounds,
        msPerChar,
        maxCalls: calls + 10,
        rtpPortMin,
        rtpPortMax,
        ariConnections,
      },
      'ready',
    );
    const heapBefore = (await ask(app, { type: 'heap' }, 'heap')).heapUsed;

    // ------------------------------------------------------------ PBX-side instrumentation
    const stasisAt = new Map<string, { perf: number; wall: number }>();
    const answerRequestAt = new Map<string, number>();
    const answered = new Map<string, (at: number) => void>();
    /** Channel → resolver of the next ARI request for it (set while a key press is in flight). */
    const pending = new Map<string, (e: AriRequestEvent) => void>();
    pbx.on('stasis-start', (channel: SimChannel) => {
      stasisAt.set(channel.id, { perf: performance.now(), wall: wallNow() });
    });
    pbx.on('channel-state', (channel: SimChannel) => {
      if (channel.state === 'Up') answered.get(channel.id)?.(performance.now());
    });
    let requests = 0;
    pbx.on('ari-request', (e: AriRequestEvent) => {
      requests++;
      if (!e.channelId) return;
      if (e.path.endsWith('/answer') && !answerRequestAt.has(e.channelId))
        answerRequestAt.set(e.channelId, e.receivedAt);
      const resolve = pending.get(e.channelId);
      if (resolve) {
        pending.delete(e.channelId);
        resolve(e);
      }
    });

    // ------------------------------------------------------------ phase 1: set-up burst
    let goResolve!: () => void;
    const go = new Promise<void>((resolve) => {
      goResolve = resolve;
    });
    const placedToAnswered: number[] = [];
    const placedToFirstAudio: number[] = [];
    const keyLatency: number[] = [];
    /** `say`: each key press, the app's RTP port of that call and the press's wall-clock time. */
    const presses: { appPort: number; wallMs: number }[] = [];
    const nextRequests = new Map<string, number>();
    let keyLost = 0;
    let unfinished = 0;
    let lastAnsweredAt = 0;
    const beepMs = pbx.scaled(DEFAULT_SOUNDS.beep ?? 422);

    /** The app's RTP port of a call: in the name of the UnicastRTP channel bridged with it. */
    const appRtpPort = (channelId: string): number | undefined => {
      const bridgeId = pbx.channels.get(channelId)?.bridgeId;
      const bridge = bridgeId === undefined ? undefined : pbx.bridges.get(bridgeId);
      for (const member of bridge?.channels ?? []) {
        const name = pbx.channels.get(member)?.name ?? '';
        const port = /^UnicastRTP\/[^:]+:(\d+)-/.exec(name)?.[1];
        if (port) return Number(port);
      }
      return undefined;
    };

    const drive = async (i: number, ready: (ok: boolean) => void): Promise<void> => {
      const placedAt = performance.now();
      const phone = await sim.call({ from: `+1555${String(i).padStart(7, '0')}`, to: NUMBER });
      const id = phone.channelId;
      const ear = ivr === 'say' ? new Ear(phone) : undefined;
      const upAt = await withTimeout(
        new Promise<number>((resolve) => answered.set(id, resolve)),
        STEP_TIMEOUT_MS,
      );
      answered.delete(id);
      if (upAt === 'timeout') {
        ready(false);
        unfinished++;
        return;
      }
      placedToAnswered.push(upAt - placedAt);
      lastAnsweredAt = Math.max(lastAnsweredAt, upAt);
      if (ear) {
        // Ready once the welcome and the first prompt have been heard.
        const heard = await ear.quiet(0, QUIET_MS, performance.now() + STEP_TIMEOUT_MS);
        if (heard) placedToFirstAudio.push(ear.firstFrameAt - placedAt);
        ready(heard);
        if (!heard) {
          unfinished++;
          return;
        }
      } else ready(true);
      await go;

      for (let r = 0; r < rounds; r++) {
        await delay(200 + Math.random() * Math.max(0, thinkMs - 200));
        const digit = String(Math.floor(Math.random() * 10));
        if (ear) {
          // Never press while the phone is still hearing something (a prompt delayed by load).
          await ear.quiet(0, QUIET_MS, performance.now() + STEP_TIMEOUT_MS);
          const framesBefore = ear.frames;
          const first = ear.nextFrame();
          const appPort = appRtpPort(id);
          if (appPort !== undefined) presses.push({ appPort, wallMs: wallNow() });
          const pressedAt = performance.now();
          void phone.press(digit, { gapMs: 0 });
          const at = await withTimeout(first, STEP_TIMEOUT_MS);
          if (at === 'timeout') {
            keyLost++;
            break;
          }
          keyLatency.push(at - pressedAt);
          // The reply, then (but for the last round) the next prompt, then silence.
          if (!(await ear.quiet(framesBefore, QUIET_MS, performance.now() + STEP_TIMEOUT_MS))) break;
        } else {
          const request = new Promise<AriRequestEvent>((resolve) => pending.set(id, resolve));
          const pressedAt = performance.now();
          void phone.press(digit, { gapMs: 0 });
          const e = await withTimeout(request, STEP_TIMEOUT_MS);
          if (e === 'timeout') {
            pending.delete(id);
            keyLost++;
            break;
          }
          keyLatency.push(e.receivedAt - pressedAt);
          const what = `${e.method} ${e.path.replace(id, ':id')}`;
          nextRequests.set(what, (nextRequests.get(what) ?? 0) + 1);
          // The beep plays; the think time that follows covers its PlaybackFinished reaching the app.
          await delay(beepMs);
        }
      }
      if ((await withTimeout(phone.ended(), STEP_TIMEOUT_MS)) === 'timeout') unfinished++;
    };

    await ask(app, { type: 'cpu-reset' }, 'cpu-reset');
    const simSetupCpuFrom = process.cpuUsage();
    const readiness: Promise<boolean>[] = [];
    const drivers: Promise<void>[] = [];
    const firstPlacedAt = performance.now();
    for (let i = 0; i < calls; i++) {
      let ready!: (ok: boolean) => void;
      readiness.push(
        new Promise<boolean>((resolve) => {
          ready = resolve;
        }),
      );
      drivers.push(drive(i, ready));
    }
    const readyCount = (await Promise.all(readiness)).filter(Boolean).length;
    const setupRequests = requests;
    const setupWall = performance.now() - firstPlacedAt;
    const simSetupCpu = process.cpuUsage(simSetupCpuFrom);
    const appSetup = await ask(app, { type: 'report' }, 'report');
    const setupSeconds = (lastAnsweredAt - firstPlacedAt) / 1000;
    console.log(
      `  ${ivr}: ${placedToAnswered.length}/${calls} calls answered in ${setupSeconds.toFixed(2)} s, ` +
        `${readyCount} ready`,
    );

    // ------------------------------------------------------------ phase 2: heap with every call up
    await delay(300);
    const withCalls = await ask(app, { type: 'heap' }, 'heap');
    const heapPerCallKiB = (withCalls.heapUsed - heapBefore) / 1024 / Math.max(1, withCalls.activeCalls);
    console.log(
      `  ${ivr}: ${withCalls.activeCalls} active calls, app heap ${(heapBefore / 2 ** 20).toFixed(1)} → ` +
        `${(withCalls.heapUsed / 2 ** 20).toFixed(1)} MiB, rss ${(withCalls.rss / 2 ** 20).toFixed(0)} MiB`,
    );

    // ------------------------------------------------------------ phase 3: keys
    const probe = ivr === 'dtmf' && pacingStreams > 0 ? await startPacingProbe() : undefined;
    if (probe) {
      await ask(
        app,
        { type: 'streams-start', streams: pacingStreams, port: probe.port, portMin: pacingPortMin },
        'streams-started',
      );
    }
    await ask(app, { type: 'cpu-reset' }, 'cpu-reset');
    const simCpuFrom = process.cpuUsage();
    const stopSimLoop = loopDelay();
    // `say`: the first frame of each reply as the kernel sent it, so that the figure can be told
    // apart from the simulator's own delay in reading it. Only RTP packets with the marker bit
    // (the first of a talkspurt: udp[9] is the RTP header's second byte) from the app's ports.
    const wire =
      ivr === 'say'
        ? await captureLoopback(`udp src portrange ${rtpPortMin}-${rtpPortMax} and udp[9] & 0x80 != 0`)
        : undefined;
    const keysFrom = performance.now();
    goResolve();
    await Promise.all(drivers);
    const keysWall = performance.now() - keysFrom;
    const keyToWire = wire && 'stop' in wire ? replyOnTheWire(presses, await wire.stop()) : undefined;
    const simCpu = process.cpuUsage(simCpuFrom);
    const simLoop = stopSimLoop();
    const report = await ask(app, { type: 'report' }, 'report');
    const pacing = probe ? await probe.finish(app) : undefined;

    // ------------------------------------------------------------ phase 4: after the calls
    await delay(500);
    const after = await ask(app, { type: 'heap' }, 'heap');

    const stasisToHandler: number[] = [];
    let lastHandlerWall = 0;
    for (const [id, wall] of report.handlerStarts) {
      const s = stasisAt.get(id);
      if (s) stasisToHandler.push(wall - s.wall);
      lastHandlerWall = Math.max(lastHandlerWall, wall);
    }
    const stasisToAnswerRequest: number[] = [];
    for (const [id, at] of answerRequestAt) {
      const s = stasisAt.get(id);
      if (s) stasisToAnswerRequest.push(at - s.perf);
    }

    return {
      mode: ivr,
      calls,
      answeredCalls: placedToAnswered.length,
      setupPerSecond: placedToAnswered.length / setupSeconds,
      placedToAnswered: summarize(placedToAnswered),
      stasisToHandler: summarize(stasisToHandler),
      stasisToAnswerRequest: summarize(stasisToAnswerRequest),
      ...(ivr === 'say' ? { placedToFirstAudio: summarize(placedToFirstAudio) } : {}),
      ...(wire ? { keyToWire: keyToWire ?? ('unavailable' in wire ? wire.unavailable : 'no capture') } : {}),
      keyLatency: summarize(keyLatency),
      keyLost,
      nextRequests,
      heapPerCallKiB,
      heapLeftKiB: (after.heapUsed - heapBefore) / 1024,
      earlyKeys: report.earlyKeys,
      gathers: report.gathers,
      keysPerSecond: keyLatency.length / (keysWall / 1000),
      appCpuPct: (report.cpuMs / report.wallMs) * 100,
      simCpuPct: ((simCpu.user + simCpu.system) / 1000 / keysWall) * 100,
      appLoop: report.loop,
      simLoop,
      pacer: report.pacer,
      setupSkippedTicks: appSetup.pacer.skippedTicks,
      setupRequestsPerCall: setupRequests / calls,
      setupCpu: {
        app: (appSetup.cpuMs / appSetup.wallMs) * 100,
        sim: ((simSetupCpu.user + simSetupCpu.system) / 1000 / setupWall) * 100,
        seconds: setupWall / 1000,
      },
      failures: report.failures,
      unfinished,
      ...(pacing ? { pacing } : {}),
    };
  } finally {
    await closeApp(app);
    await sim.close();
  }
}

function print(r: RunResult): void {
  const what =
    r.mode === 'dtmf'
      ? 'key press → next ARI request at the PBX'
      : 'key press → first reply frame at the phone';
  console.log(`\n${r.mode} IVR, ${r.calls} calls × ${rounds} keys:`);
  console.log(
    `  set-up: ${r.answeredCalls} answered, ${r.setupPerSecond.toFixed(0)} calls/s (burst); placed → answered ${describe(r.placedToAnswered)}`,
  );
  console.log(`  StasisStart → handler start (two processes' clocks): ${describe(r.stasisToHandler)}`);
  console.log(`  StasisStart → answer request at the PBX: ${describe(r.stasisToAnswerRequest)}`);
  console.log(
    `  set-up phase (${r.setupCpu.seconds.toFixed(2)} s until every call was ready): ` +
      `${r.setupRequestsPerCall.toFixed(1)} ARI requests per call; CPU app ${r.setupCpu.app.toFixed(0)} % of a core, ` +
      `simulator + phones ${r.setupCpu.sim.toFixed(0)} %`,
  );
  if (r.placedToFirstAudio)
    console.log(`  placed → first prompt frame at the phone: ${describe(r.placedToFirstAudio)}`);
  console.log(
    `  ${what}: ${describe(r.keyLatency)}, ${r.keyLost} lost, ${r.keysPerSecond.toFixed(0)} keys/s`,
  );
  if (typeof r.keyToWire === 'string')
    console.log(`  key press → first reply frame on the wire: not measured (${r.keyToWire})`);
  else if (r.keyToWire)
    console.log(
      `  key press → first reply frame on the wire (kernel timestamp, before the simulator reads it): ` +
        `${describe(r.keyToWire.latency)}; ${r.keyToWire.unmatched} presses without a captured reply` +
        `${r.keyToWire.droppedByKernel ? `, ${r.keyToWire.droppedByKernel} packets dropped by the capture` : ''}`,
    );
  if (r.nextRequests.size > 0)
    console.log(`  next requests: ${[...r.nextRequests].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  console.log(
    `  keys that reached a gather() already waiting for them: ${r.gathers - r.earlyKeys}/${r.gathers}` +
      (r.earlyKeys ? ` (${r.earlyKeys} arrived early: the app was behind)` : ''),
  );
  console.log(
    `  app heap: ${r.heapPerCallKiB.toFixed(1)} KiB per active call; ${(r.heapLeftKiB / 1024).toFixed(2)} MiB above the start after all calls ended`,
  );
  console.log(
    `  CPU during the key phase: app ${r.appCpuPct.toFixed(0)} % of a core, simulator + phones ${r.simCpuPct.toFixed(0)} %`,
  );
  const loop = (l: LoopDelay) => `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)}`;
  console.log(
    `  event-loop delay during the key phase: app ${loop(r.appLoop)}; simulator ${loop(r.simLoop)}`,
  );
  if (r.mode === 'say')
    console.log(
      `  app RTP clock (whole run): ${r.pacer.skippedTicks} ticks skipped after stalls ` +
        `(${r.setupSkippedTicks} of them during the set-up burst), worst tick ${ms(r.pacer.maxLatenessMs)} late`,
    );
  if (r.pacing) {
    const p = r.pacing;
    const d = p.receiver.deviation;
    console.log(
      `  RTP pacing meanwhile (${p.streams} streams from the app's media worker, ${p.sent} packets sent, ` +
        `${p.receiver.received} received, ${p.receiver.lost} lost; worker thread ${p.priority}, its event loop ${p.workerBusyPct.toFixed(0)} % busy):`,
    );
    console.log(
      `    deviation from 20 ms at the receiver: p50 ${ms(d.p50)}, p99 ${ms(d.p99)}, max ${ms(d.max)}`,
    );
    if (typeof p.kernel === 'string') console.log(`    kernel timestamps: none (${p.kernel})`);
    else
      console.log(
        `    by kernel transmit timestamps (${p.kernel.deviation.samples} samples, ${p.kernel.droppedByKernel} dropped by the capture): ` +
          `p50 ${ms(p.kernel.deviation.p50)}, p99 ${ms(p.kernel.deviation.p99)}, max ${ms(p.kernel.deviation.max)}; ` +
          `after the first second p50 ${ms(p.kernel.steady.p50)}, p99 ${ms(p.kernel.steady.p99)}, max ${ms(p.kernel.steady.max)}`,
      );
  }
  if (r.unfinished || r.failures.length)
    console.log(
      `  unfinished calls: ${r.unfinished}; handler failures: ${r.failures.length} ${r.failures.slice(0, 3).join('; ')}`,
    );
}

async function main(): Promise<void> {
  giveUpAfter('ivr-load', maxSeconds);
  const host = machine();
  console.log(
    `ivr-load: mode ${mode}, ${rounds} keys per call, think ≤ ${thinkMs} ms, offline TTS ${msPerChar} ms/char, ` +
      `RTP ${rtpPortMin}-${rtpPortMax}\nmachine: ${host}`,
  );
  const plan: [IvrMode, number][] = [];
  if (mode !== 'say') plan.push(['dtmf', dtmfCalls]);
  if (mode !== 'dtmf') plan.push(['say', Math.min(sayCalls, rtpPortMax - rtpPortMin + 1)]);
  const results: RunResult[] = [];
  for (const [ivr, calls] of plan) {
    const result = await run(ivr, calls);
    print(result);
    results.push(result);
  }
  console.log('');
  console.log(
    '| IVR | calls | set-up | placed → answered p50 / p99 | StasisStart → handler p50 / p99 | key → next command p50 / p99 | heap per call | machine |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const next = r.mode === 'dtmf' ? 'ARI request' : 'first RTP frame';
    console.log(
      `| ${r.mode === 'dtmf' ? 'DTMF only (gather + sound:beep)' : 'say (offline TTS, cached)'} | ${r.calls} | ` +
        `${r.setupPerSecond.toFixed(0)} calls/s | ${ms(r.placedToAnswered.p50)} / ${ms(r.placedToAnswered.p99)} | ` +
        `${ms(r.stasisToHandler.p50)} / ${ms(r.stasisToHandler.p99)} | ${ms(r.keyLatency.p50)} / ${ms(r.keyLatency.p99)} (${next}) | ` +
        `${r.heapPerCallKiB.toFixed(0)} KiB | ${host} |`,
    );
  }
}

runBench(main);
