import { type Logger, silentLogger } from '../logger.js';
import { FRAME_SAMPLES } from './audio-frame.js';
import { type PacedStream, Pacer } from './pacer.js';

/** How a play ended: every frame was sent, or it was stopped (stop(), close, hangup). */
export type PlayResult = 'finished' | 'stopped';

/** Where the player's frames go; {@link RtpSession} is one. */
export interface FrameSink {
  /** Sends one frame; `startsTalkspurt` is true for the first frame after a pause. */
  sendFrame(pcm: Int16Array, startsTalkspurt: boolean): boolean;
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
 * A playback fed piece by piece (streaming TTS): frames go out as soon as 160 samples are there.
 * Obtained from {@link AudioPlayer.stream}.
 */
export interface PlaybackStream {
  /**
   * Appends 8 kHz PCM (not copied: do not modify it afterwards). Returns false, and drops the
   * audio, once the stream ended, was stopped or the player closed: a writer of a stopped
   * generation cannot refill the queue.
   */
  write(pcm: Int16Array): boolean;
  /** No more audio: the stream finishes once what was written has been sent. */
  end(): void;
  /** Settles when the last frame was sent ('finished') or the stream was stopped. Never rejects. */
  readonly done: Promise<PlayResult>;
}

/** Options of {@link AudioPlayer}. */
export interface AudioPlayerOptions {
  sink: FrameSink;
  /** The clock. Default {@link Pacer.shared}. */
  pacer?: Pacer;
  logger?: Logger;
}

/** Counters of an {@link AudioPlayer}. */
export interface AudioPlayerStats {
  framesSent: number;
  finished: number;
  stopped: number;
}

/** One play or stream in the queue. */
interface QueuedPlayback {
  generation: number;
  chunks: Int16Array[];
  /** Offset into chunks[0]. */
  offset: number;
  /** Samples written and not yet sent. */
  available: number;
  ended: boolean;
  started: boolean;
  requestedAt: number;
  settle: (result: PlayResult) => void;
}

/**
 * The outbound audio of one call. `play()` queues 8 kHz PCM; the shared {@link Pacer} takes one
 * 160-sample frame per 20 ms tick and hands it to the sink (the call's RTP session). Plays queued
 * back to back form one continuous talkspurt.
 *
 * `stop()` bumps a generation counter: at the next tick every queued or half-sent play of an
 * older generation is dropped and resolves 'stopped' (no frame of it is sent after `stop()`), and
 * their streams refuse further writes. A play started after `stop()` belongs to the new
 * generation and plays normally.
 */
export class AudioPlayer implements PacedStream {
  readonly #sink: FrameSink;
  readonly #pacer: Pacer;
  readonly #logger: Logger;
  readonly #queue: QueuedPlayback[] = [];
  readonly #stopWaiters: (() => void)[] = [];
  readonly #firstPacketListeners = new Set<(info: FirstPacketInfo) => void>();
  #generation = 0;
  /** A frame went out on the previous tick: the next one continues the talkspurt. */
  #continuing = false;
  #closed = false;
  readonly #stats: AudioPlayerStats = { framesSent: 0, finished: 0, stopped: 0 };

  constructor(options: AudioPlayerOptions) {
    this.#sink = options.sink;
    this.#pacer = options.pacer ?? Pacer.shared;
    this.#logger = options.logger ?? silentLogger;
  }

  /** The current generation; {@link stop} increments it. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether anything is queued or playing. */
  get playing(): boolean {
    return this.#queue.length > 0;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** A copy of the counters. */
  get stats(): AudioPlayerStats {
    return { ...this.#stats };
  }

  /**
   * Queues 8 kHz mono PCM (not copied: do not modify it afterwards). Resolves 'finished' once its
   * last frame was sent, 'stopped' if {@link stop} or {@link close} came first. Never rejects.
   */
  play(pcm: Int16Array): Promise<PlayResult> {
    const stream = this.stream();
    stream.write(pcm);
    stream.end();
    return stream.done;
  }

  /** Opens a playback that is fed by {@link PlaybackStream.write} (e.g. TTS audio as it arrives). */
  stream(): PlaybackStream {
    let settle!: (result: PlayResult) => void;
    const done = new Promise<PlayResult>((resolve) => {
      settle = resolve;
    });
    const playback: QueuedPlayback = {
      generation: this.#generation,
      chunks: [],
      offset: 0,
      available: 0,
      ended: false,
      started: false,
      requestedAt: performance.now(),
      settle: (result) => {
        this.#stats[result === 'finished' ? 'finished' : 'stopped']++;
        settle(result);
      },
    };
    if (this.#closed) playback.settle('stopped');
    else this.#queue.push(playback);
    const accepts = (): boolean =>
      !this.#closed && !playback.ended && playback.generation === this.#generation;
    return {
      done,
      write: (pcm) => {
        if (!accepts()) return false;
        if (pcm.length > 0) {
          playback.chunks.push(pcm);
          playback.available += pcm.length;
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
    if (this.#queue.length === 0) return Promise.resolve();
    const stopped = new Promise<void>((resolve) => this.#stopWaiters.push(resolve));
    this.#schedule();
    return stopped;
  }

  /** Stops everything at once (plays resolve 'stopped') and leaves the pacer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pacer.remove(this);
    for (const playback of this.#queue.splice(0)) playback.settle('stopped');
    for (const resolve of this.#stopWaiters.splice(0)) resolve();
  }

  /** Reports the latency of each play's first frame; returns a function that removes the listener. */
  onFirstPacket(listener: (info: FirstPacketInfo) => void): () => void {
    this.#firstPacketListeners.add(listener);
    return () => {
      this.#firstPacketListeners.delete(listener);
    };
  }

  /** @internal Called by the pacer once per tick. */
  onTick(): void {
    if (this.#closed) return;
    this.#dropStoppedGeneration();
    this.#settleDrained();
    const sent = this.#sendOneFrame();
    this.#continuing = sent;
    this.#settleDrained();
    if (!this.#hasWork()) {
      this.#pacer.remove(this);
      this.#continuing = false;
    }
  }

  /** Registers with the pacer when a frame (or a stop) is waiting; settles finished empty plays. */
  #schedule(): void {
    if (this.#closed) return;
    this.#settleDrained();
    if (this.#hasWork()) this.#pacer.add(this);
  }

  /** True when the next tick has something to do. */
  #hasWork(): boolean {
    if (this.#stopWaiters.length > 0) return true;
    const head = this.#queue[0];
    if (!head) return false;
    return head.generation !== this.#generation || head.available >= FRAME_SAMPLES || head.ended;
  }

  #dropStoppedGeneration(): void {
    if (this.#queue.some((p) => p.generation !== this.#generation)) {
      const keep = this.#queue.filter((p) => p.generation === this.#generation);
      const dropped = this.#queue.filter((p) => p.generation !== this.#generation);
      this.#queue.splice(0, this.#queue.length, ...keep);
      for (const playback of dropped) playback.settle('stopped');
    }
    for (const resolve of this.#stopWaiters.splice(0)) resolve();
  }

  /** Head plays whose audio has all been sent and that will get no more: 'finished'. */
  #settleDrained(): void {
    let head = this.#queue[0];
    while (head?.ended && head.available === 0 && head.generation === this.#generation) {
      this.#queue.shift();
      head.settle('finished');
      head = this.#queue[0];
    }
  }

  /**
   * Sends the next frame of the head play, if one is ready. A frame the sink cannot send (no peer
   * yet) is still consumed: audio plays in real time whether or not anyone listens.
   */
  #sendOneFrame(): boolean {
    const head = this.#queue[0];
    if (!head) return false;
    if (head.available < FRAME_SAMPLES && !(head.ended && head.available > 0)) return false;
    const frame = takeFrame(head);
    const startsTalkspurt = !this.#continuing;
    if (!this.#sink.sendFrame(frame, startsTalkspurt)) return true;
    this.#stats.framesSent++;
    if (!head.started) {
      head.started = true;
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

/**
 * Removes the next 160 samples from a playback: a view into its chunk when they lie in one chunk,
 * a copy otherwise; the last, short frame of an ended playback is padded with silence.
 */
function takeFrame(playback: QueuedPlayback): Int16Array {
  const first = playback.chunks[0]!;
  if (first.length - playback.offset >= FRAME_SAMPLES) {
    const view = first.subarray(playback.offset, playback.offset + FRAME_SAMPLES);
    playback.offset += FRAME_SAMPLES;
    playback.available -= FRAME_SAMPLES;
    if (playback.offset === first.length) {
      playback.chunks.shift();
      playback.offset = 0;
    }
    return view;
  }
  const frame = new Int16Array(FRAME_SAMPLES);
  let filled = 0;
  while (filled < FRAME_SAMPLES && playback.chunks.length > 0) {
    const chunk = playback.chunks[0]!;
    const n = Math.min(FRAME_SAMPLES - filled, chunk.length - playback.offset);
    frame.set(chunk.subarray(playback.offset, playback.offset + n), filled);
    filled += n;
    playback.offset += n;
    if (playback.offset === chunk.length) {
      playback.chunks.shift();
      playback.offset = 0;
    }
  }
  playback.available -= filled;
  return frame;
}
