import { performance } from 'node:perf_hooks';
import { type Logger, silentLogger } from '../logger.js';
import { FRAME_SAMPLES } from './audio-frame.js';
import { MULAW_SILENCE } from './g711.js';
import { type PacedStream, Pacer } from './pacer.js';

/** How a play ended: every frame was sent, or it was stopped (stop(), close, hangup). */
export type PlayResult = 'finished' | 'stopped';

/** The samples of a playback: 16-bit PCM, or µ-law bytes (one byte per sample); 8 kHz mono either way. */
export type PlaybackSamples = Int16Array | Uint8Array;

/** Where the player's frames go; {@link RtpSession} is one. */
export interface FrameSink {
  /** Sends one PCM frame; `startsTalkspurt` is true for the first frame after a pause. */
  sendFrame(pcm: Int16Array, startsTalkspurt: boolean): boolean;
  /** Sends one frame already in µ-law, as it is (no encoding); same `startsTalkspurt` rule. */
  sendPayload(ulaw: Uint8Array, startsTalkspurt: boolean): boolean;
  /**
   * Sends the µ-law frame (160 bytes) at `offset` in `source`, as sendPayload would send that view
   * of it, without making the view (see RtpSession.sendPayloadAt).
   */
  sendPayloadAt(source: Uint8Array, offset: number, startsTalkspurt: boolean): boolean;
  /** Reads what the next send reads first (see PacedStream.warm). */
  warm(): number;
  /**
   * Optional: the player has nothing more to send for now (its queue ran dry, or it closed), so the
   * sink may let go of what it kept for the frames in a row (RtpSession its view of the last
   * source buffer, which would otherwise keep a finished prompt's memory alive).
   */
  idle?(): void;
}

/** What {@link AudioPlayer.onFirstPacket} reports for each play: its start-up latency. */
export interface FirstPacketInfo {
  /** When play() (or stream()) was called, on the performance.now() clock. */
  requestedAt: number;
  /** When its first frame was handed to the socket. */
  sentAt: number;
  /** `sentAt − requestedAt`, in ms. */
  latencyMs: number;
}

/**
 * A playback fed piece by piece (streaming TTS, a realtime model's audio deltas): frames go out as
 * soon as 160 samples are there. Obtained from {@link AudioPlayer.stream} (PCM, `Int16Array`) or
 * {@link AudioPlayer.streamUlaw} (µ-law, `Uint8Array`).
 */
export interface PlaybackStream<T extends PlaybackSamples = Int16Array> {
  /**
   * Appends 8 kHz samples (not copied: do not modify them afterwards). Returns false, and drops the
   * audio, once the stream ended, was stopped or the player closed: a writer of a stopped
   * generation cannot refill the queue.
   */
  write(samples: T): boolean;
  /** No more audio: the stream finishes once what was written has been sent. */
  end(): void;
  /** Settles when the last frame was sent ('finished') or the stream was stopped. Never rejects. */
  readonly done: Promise<PlayResult>;
  /**
   * Samples of this playback handed to the sink so far (the padding of a short last frame not
   * counted; a frame the sink refused, e.g. before the peer is known, counts: it had its time
   * slot). It stops growing the moment {@link AudioPlayer.stop} is called, so right after stop()
   * it is exactly what went out: `sentSamples / 8` ms (e.g. a realtime model's `audio_end_ms`).
   */
  readonly sentSamples: number;
}

/** Options of {@link AudioPlayer}. */
export interface AudioPlayerOptions {
  sink: FrameSink;
  /** The clock. Default {@link Pacer.shared}. */
  pacer?: Pacer;
  logger?: Logger;
  /**
   * Called at the start of every tick of this player, before anything is sent (the media worker
   * checks there whether the main thread asked for a stop, and calls {@link AudioPlayer.stop}).
   */
  beforeTick?: () => void;
  /**
   * Called each time a frame of a playback is taken for the sink, with the playback's tag (see
   * {@link AudioPlayer.stream}) and its new `sentSamples` (the media worker publishes it to the
   * main thread).
   */
  onFrameTaken?: (tag: unknown, sentSamples: number) => void;
  /** Called with a playback's tag when its first frame was handed to the sink (see {@link AudioPlayer.onFirstPacket}). */
  onFirstFrameSent?: (tag: unknown, sentAt: number) => void;
}

/** Counters of an {@link AudioPlayer}. */
export interface AudioPlayerStats {
  framesSent: number;
  finished: number;
  stopped: number;
}

/** How the frames of one encoding are padded and sent. */
interface Encoding<T extends PlaybackSamples> {
  /** A silent frame of FRAME_SAMPLES samples, to pad the last frame of a playback. */
  silentFrame(): T;
  send(sink: FrameSink, frame: T, startsTalkspurt: boolean): boolean;
  /** Sends the whole frame at `offset` in `chunk`. */
  sendAt(sink: FrameSink, chunk: T, offset: number, startsTalkspurt: boolean): boolean;
}

const PCM: Encoding<Int16Array> = {
  silentFrame: () => new Int16Array(FRAME_SAMPLES),
  send: (sink, frame, startsTalkspurt) => sink.sendFrame(frame, startsTalkspurt),
  sendAt: (sink, chunk, offset, startsTalkspurt) =>
    sink.sendFrame(chunk.subarray(offset, offset + FRAME_SAMPLES), startsTalkspurt),
};

const ULAW: Encoding<Uint8Array> = {
  silentFrame: () => new Uint8Array(FRAME_SAMPLES).fill(MULAW_SILENCE),
  send: (sink, frame, startsTalkspurt) => sink.sendPayload(frame, startsTalkspurt),
  sendAt: (sink, chunk, offset, startsTalkspurt) => sink.sendPayloadAt(chunk, offset, startsTalkspurt),
};

/** One play or stream in the queue; its chunks are all in its encoding. */
interface QueuedPlayback<T extends PlaybackSamples = PlaybackSamples> {
  encoding: Encoding<T>;
  tag: unknown;
  generation: number;
  /** The chunk being sent, if any: a field rather than `chunks[0]` (see AudioPlayer.#head). */
  chunk: T | undefined;
  /** The chunks written after it. */
  more: T[];
  /** Offset into `chunk`. */
  offset: number;
  /** Samples written and not yet sent. */
  available: number;
  /** Samples taken for the sink so far (padding excluded). */
  sentSamples: number;
  ended: boolean;
  started: boolean;
  requestedAt: number;
  settle: (result: PlayResult) => void;
}

/**
 * The shortest time between two frames of one player when one of them leaves off the clock (the
 * first frame sent at once, see {@link AudioPlayer}): half a frame, so the far end never receives
 * two frames of a call back to back.
 */
const MIN_FRAME_GAP_MS = 10;

/**
 * The outbound audio of one call. `play()` / `stream()` queue 8 kHz PCM, `playUlaw()` /
 * `streamUlaw()` 8 kHz µ-law (sent as it is, no encoding: a realtime model speaking
 * `audio/pcmu` goes to the wire untouched). The shared {@link Pacer} takes one 160-sample frame
 * per 20 ms tick and hands it to the sink (the call's RTP session). Plays queued back to back,
 * whatever their encoding, form one continuous talkspurt.
 *
 * **The first frame goes out at once.** On the shared clock a play that starts while other calls
 * keep the pacer running would wait up to 20 ms for the next tick: latency a conversational agent
 * cannot spare. So when a playback's first frame becomes ready (160 samples written, or a shorter
 * playback ended) while this player is idle — not on the clock (no talkspurt continuing), nothing
 * queued in front of it, and its last frame at least {@link MIN_FRAME_GAP_MS} (10 ms) ago — that
 * frame is sent synchronously from the write()/end()/play() call; the rest follows on the shared
 * pacer. A tick due less than 10 ms after the player's last frame sends nothing for this player
 * (the talkspurt carries on at the next tick), so the gap after the immediate frame is 10–30 ms
 * and two frames of one call are never closer than 10 ms (the pacer's catch-up after an event-loop
 * stall aside): the far end's jitter buffer sees at worst a frame 10 ms early or late, never a
 * burst. The pacer stays one timer for all calls.
 *
 * `stop()` bumps a generation counter: at the next tick every queued or half-sent play of an
 * older generation is dropped and resolves 'stopped' (no frame of it is sent after `stop()`), and
 * their streams refuse further writes. A play started after `stop()` belongs to the new
 * generation and plays normally (on the clock while the stopped plays are still queued).
 */
export class AudioPlayer implements PacedStream {
  readonly #sink: FrameSink;
  readonly #pacer: Pacer;
  readonly #logger: Logger;
  readonly #beforeTick: (() => void) | undefined;
  readonly #onFrameTaken: ((tag: unknown, sentSamples: number) => void) | undefined;
  readonly #onFirstFrameSent: ((tag: unknown, sentAt: number) => void) | undefined;
  /**
   * The play at the head of the queue, the one sending; the ones after it in #rest. A field of its
   * own because each tick reads it: through an array it cost two more cache misses per call and
   * tick at 500 calls (the array and its store; perf annotate of the media worker).
   */
  #head: QueuedPlayback | undefined;
  #rest: QueuedPlayback[] = [];
  /** Callers of stop() waiting for the next tick; allocated when one waits (see #hasWork). */
  #stopWaiters: (() => void)[] | undefined;
  readonly #firstPacketListeners = new Set<(info: FirstPacketInfo) => void>();
  #generation = 0;
  /** A frame went out on the previous tick (or at once): the next one continues the talkspurt. */
  #continuing = false;
  /**
   * When this player's last frame was taken for the sink, on the pacer's clock: for a frame sent
   * on a tick, when that tick started (read once for all the tick's streams, a fraction of a
   * millisecond before the frame left).
   */
  #lastFrameAt = Number.NEGATIVE_INFINITY;
  /**
   * Ticks due before this time send no frame of this player (set when it joins the clock, cleared
   * by the first tick past it). Undefined, not -Infinity, when there is none: every tick reads it,
   * and undefined is told without loading the heap number a time lives in.
   */
  #holdUntil: number | undefined;
  #closed = false;
  /** A field of its own, not in #stats: it changes with every frame (see RtpSession's sent count). */
  #framesSent = 0;
  readonly #stats = { finished: 0, stopped: 0 };

  constructor(options: AudioPlayerOptions) {
    this.#sink = options.sink;
    this.#pacer = options.pacer ?? Pacer.shared;
    this.#logger = options.logger ?? silentLogger;
    this.#beforeTick = options.beforeTick;
    this.#onFrameTaken = options.onFrameTaken;
    this.#onFirstFrameSent = options.onFirstFrameSent;
  }

  /** The current generation; {@link stop} increments it. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether anything is queued or playing. */
  get playing(): boolean {
    return this.#head !== undefined;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** A copy of the counters. */
  get stats(): AudioPlayerStats {
    return { framesSent: this.#framesSent, ...this.#stats };
  }

  /**
   * Queues 8 kHz mono PCM (not copied: do not modify it afterwards). Resolves 'finished' once its
   * last frame was sent, 'stopped' if {@link stop} or {@link close} came first. Never rejects.
   */
  play(pcm: Int16Array): Promise<PlayResult> {
    return playAll(this.stream(), pcm);
  }

  /** Like {@link play}, for 8 kHz µ-law bytes, sent as they are (the last frame padded with 0xFF). */
  playUlaw(ulaw: Uint8Array): Promise<PlayResult> {
    return playAll(this.streamUlaw(), ulaw);
  }

  /**
   * Opens a PCM playback fed by {@link PlaybackStream.write} (e.g. TTS audio as it arrives).
   * `tag` is handed back to the `onFrameTaken` option.
   */
  stream(tag?: unknown): PlaybackStream<Int16Array> {
    return this.#open(PCM, tag);
  }

  /** Opens a µ-law playback fed by {@link PlaybackStream.write} (e.g. a realtime model's audio/pcmu deltas). */
  streamUlaw(tag?: unknown): PlaybackStream<Uint8Array> {
    return this.#open(ULAW, tag);
  }

  #open<T extends PlaybackSamples>(encoding: Encoding<T>, tag: unknown): PlaybackStream<T> {
    let settle!: (result: PlayResult) => void;
    const done = new Promise<PlayResult>((resolve) => {
      settle = resolve;
    });
    const playback: QueuedPlayback<T> = {
      encoding,
      tag,
      generation: this.#generation,
      chunk: undefined,
      more: [],
      offset: 0,
      available: 0,
      sentSamples: 0,
      ended: false,
      started: false,
      requestedAt: performance.now(),
      settle: (result) => {
        this.#stats[result === 'finished' ? 'finished' : 'stopped']++;
        settle(result);
      },
    };
    if (this.#closed) playback.settle('stopped');
    else if (this.#head === undefined) this.#head = playback;
    else this.#rest.push(playback);
    const accepts = (): boolean =>
      !this.#closed && !playback.ended && playback.generation === this.#generation;
    return {
      done,
      get sentSamples() {
        return playback.sentSamples;
      },
      write: (samples) => {
        if (!accepts()) return false;
        if (samples.length > 0) {
          if (playback.chunk === undefined) playback.chunk = samples;
          else playback.more.push(samples);
          playback.available += samples.length;
          this.#schedule();
        }
        return true;
      },
      end: () => {
        if (!accepts()) return;
        playback.ended = true;
        this.#schedule();
      },
    };
  }

  /**
   * Stops every queued and playing audio. Takes effect at the next 20 ms tick (no frame of the
   * stopped plays is sent after this call); the returned promise resolves then.
   */
  stop(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#generation++;
    if (this.#head === undefined) return Promise.resolve();
    const stopped = new Promise<void>((resolve) => {
      this.#stopWaiters ??= [];
      this.#stopWaiters.push(resolve);
    });
    this.#schedule();
    return stopped;
  }

  /** Stops everything at once (plays resolve 'stopped') and leaves the pacer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pacer.remove(this);
    for (const playback of this.#takeQueue()) playback.settle('stopped');
    this.#releaseStopWaiters();
    this.#sink.idle?.();
  }

  /** Reports the latency of each play's first frame; returns a function that removes the listener. */
  onFirstPacket(listener: (info: FirstPacketInfo) => void): () => void {
    this.#firstPacketListeners.add(listener);
    return () => {
      this.#firstPacketListeners.delete(listener);
    };
  }

  /**
   * @internal See PacedStream.warm. Reads a field in each cache line of this object and of the
   * head play that onTick reads (this object spans three lines, a play two), the chunk and the sink.
   */
  warm(): number {
    if (this.#closed) return 0;
    const head = this.#head;
    if (head === undefined) return 0;
    const chunk = head.chunk;
    const ahead = chunk === undefined || head.ended ? 0 : chunk.length - head.offset;
    return ahead + (head.started ? 1 : 0) + this.#sink.warm();
  }

  /** @internal Called by the pacer once per tick. */
  onTick(_tick: number, dueAt: number, now: number): void {
    if (this.#closed) return;
    this.#beforeTick?.();
    this.#dropStoppedGeneration();
    this.#settleDrained();
    // A tick too close after the last frame (one sent at once) sends nothing: the talkspurt, if
    // any, carries on at the next tick.
    const hold = this.#holdUntil;
    if (hold === undefined || dueAt >= hold) {
      if (hold !== undefined) this.#holdUntil = undefined;
      this.#continuing = this.#sendHeadFrame(now);
    }
    this.#settleDrained();
    if (!this.#hasWork()) {
      this.#pacer.remove(this);
      this.#continuing = false;
      this.#sink.idle?.();
    }
  }

  /**
   * After a write, an end or a stop: settles finished empty plays, sends the first frame of an
   * idle player at once, and joins the clock when a frame (or a stop) is waiting.
   */
  #schedule(): void {
    if (this.#closed) return;
    this.#settleDrained();
    this.#sendFirstFrameAtOnce();
    if (this.#hasWork() && !this.#pacer.has(this)) {
      // Coming back to the clock: its next tick may be due any moment (tick 0 of an idle pacer is
      // due at once), so ticks due within MIN_FRAME_GAP_MS of the last frame are passed over.
      this.#holdUntil = this.#lastFrameAt + MIN_FRAME_GAP_MS;
      this.#pacer.add(this);
    }
  }

  /** The immediate first frame (see the class comment): sent when the player is idle. */
  #sendFirstFrameAtOnce(): void {
    const head = this.#head;
    if (!head || head.sentSamples > 0 || head.generation !== this.#generation || !hasFrame(head)) return;
    if (this.#continuing || this.#pacer.has(this)) return;
    const now = this.#pacer.now();
    if (now - this.#lastFrameAt < MIN_FRAME_GAP_MS) return;
    this.#sendHeadFrame(now);
    this.#settleDrained();
    // With more frames ready the pacer takes over and they continue this talkspurt.
    this.#continuing = this.#hasWork();
    if (!this.#continuing) this.#sink.idle?.();
  }

  /** True when the next tick has something to do. */
  #hasWork(): boolean {
    // A field read, not an array's length: this runs on every tick of every call.
    if (this.#stopWaiters !== undefined) return true;
    const head = this.#head;
    if (!head) return false;
    return head.generation !== this.#generation || hasFrame(head);
  }

  #dropStoppedGeneration(): void {
    // Plays are queued in generation order, so a stopped one, if any, is at the head: this runs on
    // every tick of every call and must not scan or allocate when nothing was stopped.
    const head = this.#head;
    if (head !== undefined && head.generation !== this.#generation) {
      const queue = this.#takeQueue();
      const keep = queue.filter((p) => p.generation === this.#generation);
      this.#head = keep.shift();
      this.#rest = keep;
      for (const playback of queue) if (playback.generation !== this.#generation) playback.settle('stopped');
    }
    this.#releaseStopWaiters();
  }

  /** Empties the queue; returns what it held, head first. */
  #takeQueue(): QueuedPlayback[] {
    const head = this.#head;
    if (head === undefined) return [];
    const queue = [head, ...this.#rest];
    this.#head = undefined;
    this.#rest = [];
    return queue;
  }

  #releaseStopWaiters(): void {
    const waiters = this.#stopWaiters;
    if (waiters === undefined) return;
    this.#stopWaiters = undefined;
    for (const resolve of waiters) resolve();
  }

  /** Head plays whose audio has all been sent and that will get no more: 'finished'. */
  #settleDrained(): void {
    let head = this.#head;
    while (head?.ended && head.available === 0 && head.generation === this.#generation) {
      this.#head = this.#rest.shift();
      head.settle('finished');
      head = this.#head;
    }
  }

  /**
   * Sends the next frame of the head play, if one is ready; returns whether a frame was taken. A
   * frame the sink cannot send (no peer yet) is still consumed: audio plays in real time whether
   * or not anyone listens.
   */
  #sendHeadFrame(now: number): boolean {
    const head = this.#head;
    if (!head || !hasFrame(head)) return false;
    const startsTalkspurt = !this.#continuing;
    const chunk = head.chunk!;
    const offset = head.offset;
    const whole = chunk.length - offset >= FRAME_SAMPLES;
    // A frame that lies in one chunk goes out from the chunk itself (no view, no allocation per
    // frame); one that spans chunks, or the short last one, is copied into a frame of its own.
    const frame = whole ? undefined : takeSplitFrame(head);
    if (whole) skipWholeFrame(head);
    this.#onFrameTaken?.(head.tag, head.sentSamples);
    this.#lastFrameAt = now;
    const sent =
      frame === undefined
        ? head.encoding.sendAt(this.#sink, chunk, offset, startsTalkspurt)
        : head.encoding.send(this.#sink, frame, startsTalkspurt);
    if (!sent) return true;
    this.#framesSent++;
    if (!head.started) {
      head.started = true;
      this.#onFirstFrameSent?.(head.tag, performance.now());
      this.#reportFirstPacket(head.requestedAt);
    }
    return true;
  }

  #reportFirstPacket(requestedAt: number): void {
    if (this.#firstPacketListeners.size === 0) return;
    const sentAt = performance.now();
    const info: FirstPacketInfo = { requestedAt, sentAt, latencyMs: sentAt - requestedAt };
    for (const listener of this.#firstPacketListeners) {
      try {
        listener(info);
      } catch (error) {
        this.#logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'onFirstPacket threw',
        );
      }
    }
  }
}

/** Writes all of `samples` to a new stream and ends it. */
function playAll<T extends PlaybackSamples>(stream: PlaybackStream<T>, samples: T): Promise<PlayResult> {
  stream.write(samples);
  stream.end();
  return stream.done;
}

/** Whether a frame can be taken: 160 samples, or the rest of an ended playback. */
function hasFrame(playback: QueuedPlayback): boolean {
  return playback.available >= FRAME_SAMPLES || (playback.ended && playback.available > 0);
}

/** Counts the next 160 samples of a playback, which lie in its current chunk, as taken. */
function skipWholeFrame(playback: QueuedPlayback): void {
  playback.offset += FRAME_SAMPLES;
  playback.available -= FRAME_SAMPLES;
  playback.sentSamples += FRAME_SAMPLES;
  if (playback.offset === playback.chunk!.length) nextChunk(playback);
}

/**
 * Removes the next frame of a playback whose current chunk holds less than 160 samples: copied
 * from the chunks it spans (and counted in its `sentSamples`); the last, short frame of an ended
 * playback is padded with silence of its encoding.
 */
function takeSplitFrame<T extends PlaybackSamples>(playback: QueuedPlayback<T>): T {
  const frame = playback.encoding.silentFrame();
  let filled = 0;
  let chunk = playback.chunk;
  while (filled < FRAME_SAMPLES && chunk !== undefined) {
    const n = Math.min(FRAME_SAMPLES - filled, chunk.length - playback.offset);
    frame.set(chunk.subarray(playback.offset, playback.offset + n), filled);
    filled += n;
    playback.offset += n;
    if (playback.offset === chunk.length) chunk = nextChunk(playback);
  }
  playback.available -= filled;
  playback.sentSamples += filled;
  return frame;
}

/** Moves a playback on to its next chunk, when the current one is used up; returns it. */
function nextChunk<T extends PlaybackSamples>(playback: QueuedPlayback<T>): T | undefined {
  playback.chunk = playback.more.length > 0 ? playback.more.shift() : undefined;
  playback.offset = 0;
  return playback.chunk;
}
