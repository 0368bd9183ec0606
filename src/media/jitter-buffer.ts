import { performance } from 'node:perf_hooks';
import { FRAME_MS, FRAME_SAMPLES } from './audio-frame.js';
import { MULAW_SILENCE } from './g711.js';

/** Options of {@link JitterBuffer}. */
export interface JitterBufferOptions {
  /**
   * Receives each frame in sequence order, as µ-law bytes (concealed gaps as µ-law silence, 0xFF).
   * `arrivedAt` is the `arrivedAt` of the push that released the frame, or the time the wait for a
   * missing frame expired when the buffer's timer released it.
   */
  onFrame: (ulaw: Uint8Array, arrivedAt: number) => void;
  /**
   * Frames that may queue behind a missing one before it is given up as lost and replaced by
   * silence. Default 3 (60 ms of reordering tolerance).
   */
  depth?: number;
  /** Longest wait for a missing frame once a later one is queued, in ms. Default `depth × 20`. */
  maxWaitMs?: number;
}

/** Counters of a {@link JitterBuffer}. */
export interface JitterBufferStats {
  /** Frames handed to `onFrame`, concealment included. */
  released: number;
  /** Silence frames (0xFF bytes) inserted for packets that never came. */
  concealed: number;
  /** Packets that arrived after their place had been passed (dropped). */
  late: number;
  /** Packets received twice (dropped). */
  duplicates: number;
  /** Packets that arrived after a later one and were put back in order. */
  reordered: number;
  /** Sequence jumps too large to be loss or reordering, taken as a restart of the sender. */
  resyncs: number;
}

/** A jump of more than this many packets either way is a restart of the stream, not loss or reordering. */
const MAX_GAP = 50;
/** How many released sequence numbers are remembered to tell a duplicate from a late packet. */
const RECENT = 64;

/**
 * A small reordering jitter buffer for one RTP stream, keyed by 16-bit sequence numbers (with
 * wraparound 65535 → 0). It holds the packets' µ-law payloads as they came (one byte per sample):
 * decoding, if anyone needs PCM, is the consumer's business and happens once per released frame.
 *
 * In-order frames are released at once: the consumers are speech recognition and voice activity
 * detection, not a loudspeaker, so holding frames back would only add latency. When a frame is
 * missing, the frames after it wait until it arrives, until `depth` frames queue behind it, or until
 * `maxWaitMs` passes; then the missing frame is replaced by silence. Silence is inserted only when
 * the buffer moves past a hole, never while the sender is simply quiet (a two-member Asterisk
 * bridge sends nothing while the other side is silent).
 */
export class JitterBuffer {
  readonly #onFrame: (ulaw: Uint8Array, arrivedAt: number) => void;
  readonly #depth: number;
  readonly #maxWaitMs: number;
  /** Extended (unwrapped) sequence number of the next frame to release; undefined before the first. */
  #next: number | undefined;
  /** Highest extended sequence number received since the last resync. */
  #highest = -1;
  readonly #pending = new Map<number, Uint8Array>();
  /** `#recent[ext % RECENT] === ext` when `ext` was received and released: a second copy is a duplicate. */
  readonly #recent = new Array<number>(RECENT).fill(-1);
  #frameSamples = FRAME_SAMPLES;
  /** The `arrivedAt` handed to `onFrame` for what is being released now. */
  #releasedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #stats: JitterBufferStats = {
    released: 0,
    concealed: 0,
    late: 0,
    duplicates: 0,
    reordered: 0,
    resyncs: 0,
  };

  constructor(options: JitterBufferOptions) {
    this.#onFrame = options.onFrame;
    this.#depth = Math.max(1, Math.floor(options.depth ?? 3));
    this.#maxWaitMs = options.maxWaitMs ?? this.#depth * FRAME_MS;
  }

  /** A copy of the counters. */
  get stats(): JitterBufferStats {
    return { ...this.#stats };
  }

  /** Frames waiting behind a hole. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Adds the µ-law payload of the packet with RTP sequence number `sequence` (0–65535), received
   * at `arrivedAt` (performance.now() by default). Returns what happened to it: released now (with
   * any frames it unblocked), queued behind a hole, or dropped. The payload is kept, not copied.
   */
  push(
    sequence: number,
    ulaw: Uint8Array,
    arrivedAt: number = performance.now(),
  ): 'released' | 'queued' | 'duplicate' | 'late' {
    if (this.#closed) return 'late';
    this.#releasedAt = arrivedAt;
    if (this.#next === undefined) this.#next = sequence;
    // Signed distance from the expected number, modulo 2^16: -32768 … 32767.
    const diff = ((((sequence - this.#next) % 0x10000) + 0x10000 + 0x8000) % 0x10000) - 0x8000;
    if (diff >= MAX_GAP || diff < -MAX_GAP) {
      this.#resync();
      return this.push(sequence, ulaw, arrivedAt);
    }
    const ext = this.#next + diff;
    if (diff < 0) {
      if (this.#recent[ext % RECENT] === ext) {
        this.#stats.duplicates++;
        return 'duplicate';
      }
      this.#stats.late++;
      return 'late';
    }
    if (diff === 0 && this.#pending.size === 0) {
      // The frame expected, with nothing queued: released at once, without passing through the
      // map (what nearly every packet of a healthy stream is).
      if (ext > this.#highest) this.#highest = ext;
      this.#frameSamples = ulaw.length;
      this.#recent[ext % RECENT] = ext;
      this.#next = ext + 1;
      this.#emit(ulaw);
      return 'released';
    }
    if (this.#pending.has(ext)) {
      this.#stats.duplicates++;
      return 'duplicate';
    }
    if (ext < this.#highest) this.#stats.reordered++;
    if (ext > this.#highest) this.#highest = ext;
    this.#frameSamples = ulaw.length;
    this.#pending.set(ext, ulaw);
    this.#drain();
    return this.#pending.has(ext) ? 'queued' : 'released';
  }

  /**
   * Releases the queued frames in order (no silence for holes) and forgets the sequence: for a new
   * SSRC, whose numbers have nothing to do with the old ones. `arrivedAt` is what the released
   * frames report (the packet of the new SSRC that caused the reset).
   */
  reset(arrivedAt: number = performance.now()): void {
    this.#releasedAt = arrivedAt;
    this.#flushPending();
    this.#next = undefined;
    this.#highest = -1;
    this.#recent.fill(-1);
  }

  /** Stops the timer and drops whatever is queued. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
    this.#pending.clear();
  }

  /** Releases every frame that is next in line; arms or fires the give-up rules for a hole. */
  #drain(): void {
    for (;;) {
      this.#releaseInOrder();
      if (this.#pending.size === 0) {
        this.#clearTimer();
        return;
      }
      // A hole at #next with later frames queued.
      if (this.#highest - this.#next! < this.#depth) {
        this.#timer ??= setTimeout(() => this.#onWaitExpired(), this.#maxWaitMs).unref();
        return;
      }
      this.#skipHole();
    }
  }

  #releaseInOrder(): void {
    let frame = this.#pending.get(this.#next!);
    while (frame !== undefined) {
      this.#pending.delete(this.#next!);
      this.#recent[this.#next! % RECENT] = this.#next!;
      this.#next!++;
      this.#emit(frame);
      frame = this.#pending.get(this.#next!);
    }
  }

  /** Gives up the missing frames at #next: one silence frame each, up to the next queued frame. */
  #skipHole(): void {
    this.#clearTimer();
    while (!this.#pending.has(this.#next!)) {
      this.#stats.concealed++;
      this.#next!++;
      this.#emit(new Uint8Array(this.#frameSamples).fill(MULAW_SILENCE));
    }
  }

  #onWaitExpired(): void {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    this.#releasedAt = performance.now();
    this.#skipHole();
    this.#drain();
  }

  /** The sender restarted: hand over what is queued, in order, and start again from the next packet. */
  #resync(): void {
    this.#stats.resyncs++;
    this.reset(this.#releasedAt);
  }

  #flushPending(): void {
    this.#clearTimer();
    const keys = [...this.#pending.keys()].sort((a, b) => a - b);
    const frames = keys.map((k) => this.#pending.get(k)!);
    this.#pending.clear();
    for (const frame of frames) this.#emit(frame);
  }

  #emit(frame: Uint8Array): void {
    this.#stats.released++;
    this.#onFrame(frame, this.#releasedAt);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
