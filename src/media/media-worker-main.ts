/**
 * The media worker's entry (a worker_threads thread started by {@link MediaWorker}): it owns the
 * RTP sockets, the 20 ms pacer, the jitter buffers and the G.711 coding of its legs, so none of
 * them waits for the main thread's handlers, event parsing or GC. Protocol: media-commands.ts.
 */

import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { AsteramiskError } from '../errors.js';
import { AudioPlayer, type PlaybackStream } from './audio-player.js';
import { FrameRing } from './frame-ring.js';
import { decodeMulaw } from './g711.js';
import {
  AUDIO_BATCH_ENTRY,
  AUDIO_HAS_PCM,
  audioEntrySize,
  CONTROL_STOP_EPOCH,
  LEG_FRAMES_PLAYED,
  LEG_STATS,
  LEG_STOP_GENERATION,
  type LegOptions,
  type MediaCommand,
  type MediaEvent,
  type MediaEventMessage,
  type MediaMessage,
  type SerializedError,
  STATS_FIELDS,
} from './media-commands.js';
import { Pacer } from './pacer.js';
import { PlaybackCounterTable } from './playback-counters.js';
import { PortAllocator } from './port-allocator.js';
import { preciseClock } from './precise-clock.js';
import { RtpSession } from './rtp-session.js';

const port = parentPort;
if (!port) throw new Error('media-worker-main runs in a worker thread');

/**
 * Events wait for the end of the task that made them (a pacer tick, a batch of commands) and leave
 * in one message: the 50 first frames of a slot's tick, or 500 plays ending together, wake the
 * main thread once instead of 50 or 500 times, and each message costs both threads a structured
 * clone and an event dispatch. A microtask, not setImmediate: the event is not held back while the
 * precise clock sleeps until the next tick.
 */
let outbox: MediaEvent[] = [];
let outboxTransfers: ArrayBuffer[] = [];
const flushEvents = (): void => {
  const events = outbox;
  const transfers = outboxTransfers;
  outbox = [];
  outboxTransfers = [];
  const message: MediaEventMessage = events.length === 1 ? events[0]! : { type: 'events', events };
  port.postMessage(message, transfers);
};
const post = (event: MediaEvent, transfer?: ArrayBuffer[]): void => {
  if (outbox.length === 0) queueMicrotask(flushEvents);
  outbox.push(event);
  if (transfer) for (const buffer of transfer) outboxTransfers.push(buffer);
};
const epoch = (now: number): number => performance.timeOrigin + now;

interface Leg {
  id: number;
  block: Int32Array;
  session: RtpSession | undefined;
  player: AudioPlayer | undefined;
  /** PCM playbacks are encoded frame by frame as they go out (the cost spread over the play). */
  playbacks: Map<number, PlaybackStream<Int16Array | Uint8Array>>;
  /** Each playing counter slot's playback id (a playback's tag in the player is its slot). */
  pbBySlot: Map<number, number>;
  knownGeneration: number;
  lastStop: Promise<void>;
  /** Whether the main thread wants the caller's audio now. */
  listening: boolean;
  wantPcm: boolean;
  /**
   * The last frames released while nobody listened, with their release time (epoch ms): a
   * listener added on the main thread gets those released after it was added, as it would have
   * in-thread, although its 'listen' command reaches the worker a little later.
   */
  recent: FrameRing;
  /** Commands that came while the socket was being bound. */
  pending: MediaCommand[] | undefined;
  closed: boolean;
}

/** This thread's kernel id (Linux: a thread's id works as a pid for setpriority and sched_setscheduler). */
function threadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

/**
 * Raises this thread's scheduling priority, as Asterisk raises its own media threads: on a loaded
 * host the kernel then runs the media clock before other work. Returns what happened, for the main
 * thread's log.
 */
function raisePriority(priority: number): string {
  try {
    const tid = threadId();
    if (!Number.isInteger(tid)) return 'no thread id';
    setPriority(tid, priority);
    return `nice ${priority}`;
  } catch (error) {
    return `not raised: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Puts this thread in the SCHED_FIFO real-time class at `priority` (1–99), as `asterisk -p` does
 * for Asterisk: a woken media clock then runs at once instead of waiting for a time-shared thread's
 * turn (at nice −10 the 1000-stream pacing p99 was 2.0–2.3 ms, 0.5 ms in SCHED_FIFO). Node has no
 * sched_setscheduler; util-linux's chrt makes the call for this thread's id. Returns what happened,
 * or why it was refused (the caller then falls back to a nice value).
 */
function enterRealtime(priority: number): { result: string } | { refused: string } {
  try {
    const tid = threadId();
    const chrt = spawnSync('chrt', ['--fifo', '--pid', String(priority), String(tid)], {
      encoding: 'utf8',
      timeout: 5000,
    });
    if (chrt.error) return { refused: chrt.error.message };
    if (chrt.status !== 0) return { refused: chrt.stderr.trim() || `chrt exited with ${chrt.status}` };
    return { result: `SCHED_FIFO ${priority}` };
  } catch (error) {
    return { refused: error instanceof Error ? error.message : String(error) };
  }
}

const options = workerData as {
  control: SharedArrayBuffer;
  priority?: number;
  realtime?: number;
  clock?: 'precise' | 'timers';
  slots?: number;
};
/** The main thread's count of stops (see CONTROL_STOP_EPOCH), and the last value acted on. */
const control = new Int32Array(options.control);
let seenStopEpoch = 0;

function applyPriority(): string {
  const nice = options.priority;
  if (options.realtime !== undefined) {
    const realtime = enterRealtime(options.realtime);
    if ('result' in realtime) return realtime.result;
    const fallback = nice === undefined ? 'default' : raisePriority(nice);
    return `${fallback} (SCHED_FIFO refused: ${realtime.refused})`;
  }
  return nice === undefined ? 'default' : raisePriority(nice);
}
const priorityResult = applyPriority();

const legs = new Map<number, Leg>();
/** Frames kept per leg while nobody listens (see Leg.recent): 100 ms. */
const RECENT_FRAMES = 5;
/**
 * A frame released up to this long before the listener was added is delivered too: the two
 * threads' clocks (performance.timeOrigin) may differ by a fraction of a millisecond, and a frame
 * released while the main thread was adding the listener is better given than lost.
 */
const LISTEN_SLACK_MS = 20;
const allocators = new Map<string, PortAllocator>();
const pacer = new Pacer({
  ...(options.clock === 'timers' ? {} : { clock: preciseClock() }),
  ...(options.slots === undefined ? {} : { slots: options.slots }),
});

function allocatorFor(options: LegOptions): PortAllocator {
  const key = `${options.ports.min}-${options.ports.max}`;
  let allocator = allocators.get(key);
  if (!allocator) {
    allocator = new PortAllocator(options.ports);
    allocators.set(key, allocator);
  }
  return allocator;
}

function serialize(error: unknown): SerializedError {
  if (error instanceof Error) {
    const out: SerializedError = { name: error.name, message: error.message };
    if (error instanceof AsteramiskError) out.code = error.code;
    const field = (error as { field?: unknown }).field;
    if (typeof field === 'string') out.field = field;
    return out;
  }
  return { name: 'Error', message: String(error) };
}

// ------------------------------------------------------------------------------ caller audio

let batch = new ArrayBuffer(64 * 1024);
let batchView = new DataView(batch);
let batchLength = 0;
let flushScheduled = false;
/** Legs with frames in the batch: their counters are published with it. */
const batchLegs = new Set<Leg>();

function flush(): void {
  flushScheduled = false;
  for (const leg of batchLegs) publishStats(leg);
  batchLegs.clear();
  if (batchLength === 0) return;
  const full = batch;
  const length = batchLength;
  batch = new ArrayBuffer(full.byteLength);
  batchView = new DataView(batch);
  batchLength = 0;
  post({ type: 'audio', buffer: full, length }, [full]);
}

/** Queues one released frame for the main thread; all frames of one loop turn go in one message. */
function queueAudio(leg: Leg, ulaw: Uint8Array, arrivedAt: number): void {
  const n = ulaw.length;
  const size = audioEntrySize(n, leg.wantPcm);
  if (batchLength + size > batch.byteLength) {
    const bigger = new ArrayBuffer(Math.max(batch.byteLength * 2, batchLength + size));
    new Uint8Array(bigger).set(new Uint8Array(batch, 0, batchLength));
    batch = bigger;
    batchView = new DataView(batch);
  }
  const at = batchLength;
  batchView.setUint32(at, leg.id, true);
  batchView.setUint16(at + 4, n, true);
  batchView.setUint8(at + 6, leg.wantPcm ? AUDIO_HAS_PCM : 0);
  batchView.setFloat64(at + 8, epoch(arrivedAt), true);
  new Uint8Array(batch, at + AUDIO_BATCH_ENTRY, n).set(ulaw);
  if (leg.wantPcm) {
    const pcmAt = at + AUDIO_BATCH_ENTRY + ((n + 1) & ~1);
    new Int16Array(batch, pcmAt, n).set(decodeMulaw(ulaw));
  }
  batchLength += size;
  batchLegs.add(leg);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

// ------------------------------------------------------------------------------ legs

/** Samples sent of each playback, for the main thread (see playback-counters.ts). */
const counters = new PlaybackCounterTable();

function publishStats(leg: Leg): void {
  if (!leg.session || !leg.player) return;
  const stats = leg.session.stats;
  for (let i = 0; i < STATS_FIELDS.length; i++) leg.block[LEG_STATS + i] = stats[STATS_FIELDS[i]!];
  leg.block[LEG_FRAMES_PLAYED] = leg.player.stats.framesSent;
}

/**
 * Applies a stop the main thread published in the leg's shared block (before a command of the
 * leg, and when the stop epoch moved: see checkStops).
 */
function syncStop(leg: Leg): void {
  const generation = Atomics.load(leg.block, LEG_STOP_GENERATION);
  if (generation === leg.knownGeneration || !leg.player) return;
  leg.knownGeneration = generation;
  leg.lastStop = leg.player.stop();
}

/**
 * Stops the main thread published, applied before any frame goes out: called before each player's
 * tick. The common case, no stop since the last look, is one plain read of the control block's
 * epoch, a cache line all legs share. Reading each leg's own block here instead was the largest
 * part of a tick's cost (four dependent loads, the last one a cold cache line per leg; perf
 * annotate at 500 streams). A plain read, not Atomics.load, which V8 compiles to a builtin call:
 * an aligned Int32Array element is tear-free, so it gives the old epoch or the new one, the new
 * one at the latest on the next read. When it moved, Atomics.load reads it again and then each
 * leg's generation: the main thread stores a leg's generation before it adds to the epoch, so the
 * generations stored before the epoch seen are seen too.
 */
function checkStops(): void {
  if (control[CONTROL_STOP_EPOCH] === seenStopEpoch) return;
  seenStopEpoch = Atomics.load(control, CONTROL_STOP_EPOCH);
  for (const leg of legs.values()) syncStop(leg);
}

/**
 * A playback's tag is its counter slot: a number, so the frame's store loads no object. One
 * function for all legs: a closure per leg was one more cold object per frame (perf of the worker,
 * 500 streams: about a tenth of the library's own samples).
 */
function storeSentSamples(tag: unknown, sentSamples: number): void {
  counters.store(tag as number, sentSamples);
}

async function open(command: Extract<MediaCommand, { type: 'open' }>): Promise<void> {
  const leg: Leg = {
    id: command.leg,
    block: new Int32Array(command.block),
    session: undefined,
    player: undefined,
    playbacks: new Map(),
    pbBySlot: new Map(),
    knownGeneration: 0,
    lastStop: Promise.resolve(),
    listening: false,
    wantPcm: false,
    recent: new FrameRing(RECENT_FRAMES),
    pending: [],
    closed: false,
  };
  legs.set(leg.id, leg);
  let session: RtpSession;
  try {
    session = await RtpSession.open({
      allocator: allocatorFor(command.options),
      bindAddress: command.options.bindAddress,
      ...(command.options.jitterDepth === undefined ? {} : { jitterDepth: command.options.jitterDepth }),
      ...(command.options.recvBufferSize === undefined
        ? {}
        : { recvBufferSize: command.options.recvBufferSize }),
    });
  } catch (error) {
    legs.delete(leg.id);
    post({ type: 'openFailed', leg: leg.id, error: serialize(error) });
    return;
  }
  leg.session = session;
  session.onPayload((ulaw, arrivedAt) => {
    if (leg.listening) {
      queueAudio(leg, ulaw, arrivedAt);
      return;
    }
    // Released when it arrived (in order) or when the jitter buffer's wait ran out: arrivedAt.
    leg.recent.push(ulaw, arrivedAt, epoch(arrivedAt));
  });
  leg.player = new AudioPlayer({
    sink: session,
    pacer,
    beforeTick: checkStops,
    onFrameTaken: storeSentSamples,
    onFirstFrameSent: (tag, sentAt) => {
      const pb = leg.pbBySlot.get(tag as number);
      if (pb !== undefined) post({ type: 'first', leg: leg.id, pb, sentAt: epoch(sentAt) });
    },
  });
  post({ type: 'opened', leg: leg.id, port: session.localPort, address: session.localAddress });
  const pending = leg.pending ?? [];
  leg.pending = undefined;
  for (const queued of pending) dispatch(queued);
}

function closeLeg(leg: Leg): void {
  if (leg.closed) return;
  leg.closed = true;
  publishStats(leg);
  legs.delete(leg.id);
  leg.player?.close();
  const closing = leg.session?.close() ?? Promise.resolve();
  void closing.then(() => post({ type: 'closed', leg: leg.id }));
}

function playbackCommand(leg: Leg, command: MediaCommand): void {
  const player = leg.player!;
  const session = leg.session!;
  switch (command.type) {
    case 'remote':
      session.setRemote(command.address, command.port);
      return;
    case 'listen': {
      leg.wantPcm = command.pcm;
      const wanted = command.ulaw || command.pcm;
      if (wanted && !leg.listening) {
        leg.recent.forEach((ulaw, arrivedAt, releasedAt) => {
          if (releasedAt >= command.since - LISTEN_SLACK_MS) queueAudio(leg, ulaw, arrivedAt);
        });
      }
      leg.recent.clear();
      leg.listening = wanted;
      return;
    }
    case 'play': {
      if (command.generation < leg.knownGeneration) {
        // Stopped on the main thread before it reached this thread: none of it is sent.
        notPlayed(leg.id, command);
        return;
      }
      const { pb, slot } = command;
      const playback: PlaybackStream<Int16Array | Uint8Array> = command.pcm
        ? player.stream(slot)
        : player.streamUlaw(slot);
      leg.playbacks.set(pb, playback);
      leg.pbBySlot.set(slot, pb);
      void playback.done.then((result) => {
        leg.playbacks.delete(pb);
        leg.pbBySlot.delete(slot);
        publishStats(leg);
        post({ type: 'done', leg: leg.id, pb, slot, result, sentSamples: playback.sentSamples });
      });
      if (command.data) playback.write(command.data);
      if (command.end) playback.end();
      return;
    }
    case 'write':
      leg.playbacks.get(command.pb)?.write(command.data);
      return;
    case 'end':
      leg.playbacks.get(command.pb)?.end();
      return;
    case 'stop':
      void leg.lastStop.then(() => {
        publishStats(leg);
        post({ type: 'stopped', leg: leg.id, req: command.req });
      });
      return;
    case 'stats':
      publishStats(leg);
      post({ type: 'stats', leg: leg.id, req: command.req });
      return;
    default:
      return;
  }
}

/** Reports a play that never started (stopped or its leg gone before it got here). */
function notPlayed(leg: number, command: Extract<MediaCommand, { type: 'play' }>): void {
  post({ type: 'done', leg, pb: command.pb, slot: command.slot, result: 'stopped', sentSamples: 0 });
}

function dispatch(command: MediaCommand): void {
  switch (command.type) {
    case 'open':
      void open(command);
      return;
    case 'pacer':
      post({ type: 'pacer', req: command.req, stats: pacer.stats });
      return;
    case 'counters':
      counters.add(command.chunk);
      return;
    case 'crash':
      setImmediate(() => {
        throw new Error('media worker crash requested by a test');
      });
      return;
    default:
      break;
  }
  const leg = legs.get(command.leg);
  if (!leg) {
    // Already closed (a failed command closed it): the main thread still waits for the answer,
    // and for the end of a play, whose counter slot it then takes back.
    if (command.type === 'close') post({ type: 'closed', leg: command.leg });
    if (command.type === 'play') notPlayed(command.leg, command);
    return;
  }
  if (leg.pending) {
    leg.pending.push(command);
    return;
  }
  if (command.type === 'close') {
    closeLeg(leg);
    return;
  }
  try {
    // A stop published by the main thread applies before whatever came after it.
    syncStop(leg);
    playbackCommand(leg, command);
  } catch (error) {
    // One leg's bad command ends that leg, not the worker's other calls.
    closeLeg(leg);
    post({ type: 'legFailed', leg: leg.id, error: serialize(error) });
  }
}

port.on('message', (message: MediaMessage) => {
  if (message.type !== 'batch') {
    dispatch(message);
    return;
  }
  for (const command of message.commands) dispatch(command);
});

// Each tick's lateness, for the main thread's pacer observers (metrics): gathered and posted once
// a second from the clock's own ticks, whatever the number of calls and of slots in use. Each
// message wakes the main thread, and a timer of its own would wake this one: at a few calls the
// relay was as many wake-ups as the clock. A timer is armed only for the last ticks before the
// clock stops. Once a second, not every 100 ms: at 500 calls the ten wake-ups a second were half
// of the main thread's CPU while it had nothing else to do (0.4 % of a core against 0.2 %,
// bench/rtp-pacing.ts by thread), and metrics are scraped at seconds at best.
const TICK_RELAY_MS = 1000;
let tickBatch: number[] = [];
let lastRelayAt = 0;
let relayTimer: ReturnType<typeof setTimeout> | undefined;
function relayTicks(): void {
  if (relayTimer !== undefined) clearTimeout(relayTimer);
  relayTimer = undefined;
  lastRelayAt = performance.now();
  if (tickBatch.length === 0) return;
  const ticks = tickBatch;
  tickBatch = [];
  post({ type: 'ticks', ticks });
}
pacer.observe((t) => {
  tickBatch.push(t.tick, t.actualMs - t.idealMs);
  if (t.actualMs - lastRelayAt >= TICK_RELAY_MS) relayTicks();
  else relayTimer ??= setTimeout(relayTicks, TICK_RELAY_MS).unref();
});

// Counters for the main thread's synchronous `stats` (metrics read them when a call ends): each
// leg once a second, a tenth of them every 100 ms, so that at 2000 legs the clock never waits for
// one 16 ms burst of copying.
const STATS_PHASES = 10;
let statsPhase = 0;
setInterval(() => {
  for (const leg of legs.values()) if (leg.id % STATS_PHASES === statsPhase) publishStats(leg);
  statsPhase = (statsPhase + 1) % STATS_PHASES;
}, 1000 / STATS_PHASES).unref();

post({ type: 'ready', priority: priorityResult });
