/**
 * The messages between the main thread and the media worker (see media-worker.ts). Commands go to
 * the worker, events come back. Audio travels without copies where it can: a play's samples in a
 * buffer the main thread made for it (transferred), cached prompts in shared memory, and caller
 * audio in one transferred buffer per worker event-loop turn ({@link AUDIO_BATCH_ENTRY}).
 *
 * Two things are read across threads synchronously, through a SharedArrayBuffer of each leg and
 * of each playback: the stop generation (the worker checks it before each frame, so no frame of a
 * stopped playback leaves after the main thread's stop()), and the samples sent of a playback (so
 * `sentSamples` right after stop() is what went out).
 */

import type { RtpSessionStats } from './rtp-session.js';

/** What a leg needs to open in the worker: the RTP port range and the bind address. */
export interface LegOptions {
  /** The RTP port range (config rtpPortMin/rtpPortMax); the worker keeps one allocator per range. */
  ports: { min: number; max: number };
  bindAddress: string;
  jitterDepth?: number;
  recvBufferSize?: number;
}

/**
 * Int32 slots of the worker's shared control block (one cache line). CONTROL_STOP_EPOCH counts
 * stops of any leg: the worker reads this one cell on each tick instead of every leg's own block,
 * whose cold cache lines were the largest part of a tick's cost (perf annotate, 500 streams).
 */
export const CONTROL_STOP_EPOCH = 0;
export const CONTROL_INTS = 16;

/** Int32 slots of a leg's shared block. */
export const LEG_STOP_GENERATION = 0;
/** First of the RtpSessionStats counters (in {@link STATS_FIELDS} order), then framesPlayed. */
export const LEG_STATS = 1;
export const STATS_FIELDS = [
  'sent',
  'received',
  'droppedForeign',
  'malformed',
  'unreachable',
  'unsupportedPayload',
  'oversized',
  'wrongSsrc',
  'late',
  'duplicates',
  'reordered',
  'concealed',
  'ssrcChanges',
  'decodedFrames',
] as const satisfies readonly (keyof RtpSessionStats)[];
export const LEG_FRAMES_PLAYED = LEG_STATS + STATS_FIELDS.length;
export const LEG_BLOCK_INTS = LEG_FRAMES_PLAYED + 1;

/** Main thread → worker. */
export type MediaCommand =
  | { type: 'open'; leg: number; block: SharedArrayBuffer; options: LegOptions }
  /** The next chunk of the playback counters' table, sent before the first play that uses it. */
  | { type: 'counters'; chunk: SharedArrayBuffer }
  | { type: 'remote'; leg: number; address: string; port: number }
  /**
   * Which caller audio the main thread wants: µ-law payloads, PCM frames, or nothing; `since`
   * (epoch ms) is when it started wanting it.
   */
  | { type: 'listen'; leg: number; ulaw: boolean; pcm: boolean; since: number }
  /**
   * Opens a playback (`pb`), with its first samples and `end` for a whole play. `slot` is its
   * count of samples sent in the shared table (see playback-counters.ts).
   */
  | {
      type: 'play';
      leg: number;
      pb: number;
      slot: number;
      /** A PCM playback (Int16Array samples, encoded frame by frame in the worker) or µ-law. */
      pcm: boolean;
      data: Int16Array | Uint8Array | undefined;
      end: boolean;
      /**
       * The leg's stop generation when the play was made: a play the main thread stopped before
       * the worker got to it (a newer generation in shared memory) is not played at all.
       */
      generation: number;
    }
  | { type: 'write'; leg: number; pb: number; data: Int16Array | Uint8Array }
  | { type: 'end'; leg: number; pb: number }
  | { type: 'stop'; leg: number; req: number }
  | { type: 'stats'; leg: number; req: number }
  | { type: 'close'; leg: number }
  | { type: 'pacer'; req: number }
  /** Test hook: the worker throws an uncaught error (as a bug in it would). */
  | { type: 'crash' };

/**
 * What the main thread posts: one command, or the commands of one turn of its event loop, in
 * order (see MediaWorker.send).
 */
export type MediaMessage = MediaCommand | { type: 'batch'; commands: MediaCommand[] };

/** Worker → main thread. Times are on the epoch clock (performance.timeOrigin + now) in ms. */
export type MediaEvent =
  /** The worker is running; `priority` says whether its thread priority was raised. */
  | { type: 'ready'; priority: string }
  | { type: 'opened'; leg: number; port: number; address: string }
  | { type: 'openFailed'; leg: number; error: SerializedError }
  | { type: 'audio'; buffer: ArrayBuffer; length: number }
  | { type: 'first'; leg: number; pb: number; sentAt: number }
  /** A playback ended; its counter `slot` is the main thread's again. */
  | {
      type: 'done';
      leg: number;
      pb: number;
      slot: number;
      result: 'finished' | 'stopped';
      sentSamples: number;
    }
  | { type: 'stopped'; leg: number; req: number }
  | { type: 'stats'; leg: number; req: number }
  | { type: 'closed'; leg: number }
  /** A command of this leg threw: the leg is closed in the worker. */
  | { type: 'legFailed'; leg: number; error: SerializedError }
  | { type: 'pacer'; req: number; stats: unknown }
  /** Ticks of the worker's pacer since the last such message: [tick, latenessMs] pairs, flat. */
  | { type: 'ticks'; ticks: number[] };

/**
 * What the worker posts: one event, or the events of one task of its event loop (a pacer tick, a
 * batch of commands), in order.
 */
export type MediaEventMessage = MediaEvent | { type: 'events'; events: MediaEvent[] };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  field?: string;
}

/**
 * Layout of one caller frame in an `audio` event's buffer, 8-byte aligned:
 * u32 leg, u16 µ-law length n, u8 flags (1 = PCM follows), u8 0, f64 arrivedAt (epoch ms),
 * then n µ-law bytes padded to even, then (flag 1) n Int16 PCM samples, padded to 8.
 */
export const AUDIO_BATCH_ENTRY = 16;
export const AUDIO_HAS_PCM = 1;

/** Size in bytes of one batch entry with `n` µ-law bytes. */
export function audioEntrySize(n: number, pcm: boolean): number {
  const ulaw = (n + 1) & ~1;
  const size = AUDIO_BATCH_ENTRY + ulaw + (pcm ? 2 * n : 0);
  return (size + 7) & ~7;
}
