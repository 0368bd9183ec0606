import { samplesToMs } from './audio-frame.js';

/** Thresholds and timings of a {@link SpeechDetector}. */
export interface SpeechDetectorOptions {
  /**
   * Level (dBFS, frame RMS) a frame must exceed to count as speech while in silence. Default −40.
   * With `adaptive`, the bar is raised to `noise floor + marginDb` on a noisy line.
   */
  startThresholdDb?: number;
  /**
   * Level a frame must stay above to keep counting as speech once speech started; lower than the
   * start threshold (hysteresis) so soft syllables do not end an utterance. Default −47.
   */
  stopThresholdDb?: number;
  /** Speech must last this long (ms) before speech-start fires: clicks and pops are ignored. Default 100. */
  speechStartMs?: number;
  /** Silence must last this long (ms) before speech-end fires. Default 700. */
  speechEndMs?: number;
  /** Audio kept from before speech-start in the utterance, in ms. Default 200. */
  preRollMs?: number;
  /** Trailing silence kept at the end of the utterance, in ms. Default 200. */
  postRollMs?: number;
  /** An utterance this long (ms) ends even without silence. Default 30 000. */
  maxUtteranceMs?: number;
  /**
   * Track the background level (the quietest 100 ms block of the last 2 s) and raise both thresholds
   * above it, so steady line noise or a fan never counts as speech. Default true.
   */
  adaptive?: boolean;
  /** How far above the noise floor speech must be, in dB, when `adaptive`. Default 12. */
  marginDb?: number;
}

/** Speech began; `atMs` is the stream time (ms of audio pushed) where it began, pre-roll excluded. */
export interface SpeechStartEvent {
  type: 'speech-start';
  atMs: number;
}

/** Speech ended, with the utterance's audio (pre-roll included, trailing silence trimmed). */
export interface SpeechEndEvent {
  type: 'speech-end';
  atMs: number;
  /** The utterance, 8 kHz PCM. */
  audio: Int16Array;
  /** Duration of `audio`, in ms. */
  durationMs: number;
  /** Why it ended: enough silence, the length limit, or {@link SpeechDetector.flush}. */
  reason: 'silence' | 'max-length' | 'flush';
}

export type SpeechEvent = SpeechStartEvent | SpeechEndEvent;

/** dBFS of a frame's RMS level; −Infinity for digital silence. */
export function frameLevelDb(frame: Int16Array): number {
  if (frame.length === 0) return Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < frame.length; i++) sum += frame[i]! * frame[i]!;
  const rms = Math.sqrt(sum / frame.length);
  return rms === 0 ? Number.NEGATIVE_INFINITY : 20 * Math.log10(rms / 32768);
}

/** The quietest a noise floor estimate may be: below this, a line counts as clean. */
const NOISE_FLOOR_MIN_DB = -90;
/** Frames per block of the noise floor estimate (100 ms). */
const BLOCK_FRAMES = 5;
/** Blocks the noise floor looks back over (2 s): longer than the gaps between words. */
const WINDOW_BLOCKS = 20;

function powerToDb(meanSquare: number): number {
  return meanSquare === 0 ? Number.NEGATIVE_INFINITY : 10 * Math.log10(meanSquare / (32768 * 32768));
}

/**
 * An energy-based voice activity detector over 20 ms frames of 8 kHz PCM, with hysteresis: a start
 * threshold to enter speech, a lower one to stay in it, a minimum speech duration before
 * `speech-start` and a silence duration before `speech-end`. Used for barge-in (speech-start) and
 * for end-pointing speech recognition (speech-end carries the utterance).
 *
 * It is deliberately simple (no spectral features): telephone audio that reaches it has been
 * through the caller's own noise suppression, and its job is timing, not recognition.
 */
export class SpeechDetector {
  readonly #startDb: number;
  readonly #stopDb: number;
  readonly #startMs: number;
  readonly #endMs: number;
  readonly #preRollMs: number;
  readonly #postRollMs: number;
  readonly #maxMs: number;
  readonly #adaptive: boolean;
  readonly #marginDb: number;
  #inSpeech = false;
  /** Stream time: ms of audio pushed so far. */
  #nowMs = 0;
  /** Recent frames while in silence (pre-roll plus a candidate speech run). */
  #recent: { frame: Int16Array; ms: number }[] = [];
  #recentMs = 0;
  /** Length of the current run of loud frames (silence state) or quiet frames (speech state), in ms. */
  #runMs = 0;
  #utterance: Int16Array[] = [];
  #utteranceMs = 0;
  /** Frames of the current quiet run in speech, kept apart so trailing silence can be trimmed. */
  #quietTail: { frame: Int16Array; ms: number }[] = [];
  /** Mean power of the last WINDOW_BLOCKS complete 100 ms blocks, in dBFS. */
  #blocks: number[] = [];
  #blockPower = 0;
  #blockFrames = 0;
  #noiseFloorDb = NOISE_FLOOR_MIN_DB;

  constructor(options: SpeechDetectorOptions = {}) {
    this.#startDb = options.startThresholdDb ?? -40;
    this.#stopDb = Math.min(options.stopThresholdDb ?? -47, this.#startDb);
    this.#startMs = options.speechStartMs ?? 100;
    this.#endMs = options.speechEndMs ?? 700;
    this.#preRollMs = options.preRollMs ?? 200;
    this.#postRollMs = options.postRollMs ?? 200;
    this.#maxMs = options.maxUtteranceMs ?? 30_000;
    this.#adaptive = options.adaptive ?? true;
    this.#marginDb = options.marginDb ?? 12;
  }

  /** Whether the detector is inside an utterance. */
  get speaking(): boolean {
    return this.#inSpeech;
  }

  /** The current background level estimate, in dBFS. */
  get noiseFloorDb(): number {
    return this.#noiseFloorDb;
  }

  /** Feeds one frame (normally 160 samples); returns the events it caused, in order. */
  push(frame: Int16Array): SpeechEvent[] {
    const ms = samplesToMs(frame.length);
    this.#nowMs += ms;
    const level = frameLevelDb(frame);
    if (this.#adaptive) this.#trackNoise(frame);
    return this.#inSpeech ? this.#pushInSpeech(frame, ms, level) : this.#pushInSilence(frame, ms, level);
  }

  /** Ends an utterance in progress (e.g. the call ended); returns its speech-end, if any. */
  flush(): SpeechEvent[] {
    if (!this.#inSpeech) return [];
    return [this.#finish('flush')];
  }

  /** Forgets everything (state, buffers, noise floor), as after a prompt that must not count. */
  reset(): void {
    this.#inSpeech = false;
    this.#recent = [];
    this.#recentMs = 0;
    this.#runMs = 0;
    this.#utterance = [];
    this.#utteranceMs = 0;
    this.#quietTail = [];
    this.#blocks = [];
    this.#blockPower = 0;
    this.#blockFrames = 0;
    this.#noiseFloorDb = NOISE_FLOOR_MIN_DB;
  }

  #startThreshold(): number {
    return this.#adaptive ? Math.max(this.#startDb, this.#noiseFloorDb + this.#marginDb) : this.#startDb;
  }

  #stopThreshold(): number {
    // Keeps the configured hysteresis gap above a raised floor.
    return this.#adaptive
      ? Math.max(this.#stopDb, this.#noiseFloorDb + this.#marginDb - (this.#startDb - this.#stopDb))
      : this.#stopDb;
  }

  #pushInSilence(frame: Int16Array, ms: number, level: number): SpeechEvent[] {
    this.#recent.push({ frame, ms });
    this.#recentMs += ms;
    if (level > this.#startThreshold()) this.#runMs += ms;
    else this.#runMs = 0;
    // Keep the pre-roll plus the loud run that may become speech.
    while (this.#recent.length > 0 && this.#recentMs - this.#recent[0]!.ms >= this.#preRollMs + this.#runMs) {
      this.#recentMs -= this.#recent.shift()!.ms;
    }
    if (this.#runMs < this.#startMs) return [];
    this.#inSpeech = true;
    const atMs = this.#nowMs - this.#runMs;
    this.#utterance = this.#recent.map((r) => r.frame);
    this.#utteranceMs = this.#recentMs;
    this.#recent = [];
    this.#recentMs = 0;
    this.#runMs = 0;
    return [{ type: 'speech-start', atMs }];
  }

  #pushInSpeech(frame: Int16Array, ms: number, level: number): SpeechEvent[] {
    if (level > this.#stopThreshold()) {
      // Speech continues: the quiet frames were a pause inside the utterance.
      for (const q of this.#quietTail) this.#append(q.frame, q.ms);
      this.#quietTail = [];
      this.#runMs = 0;
      this.#append(frame, ms);
    } else {
      this.#quietTail.push({ frame, ms });
      this.#runMs += ms;
      if (this.#runMs >= this.#endMs) return [this.#finish('silence')];
    }
    if (this.#utteranceMs + this.#runMs >= this.#maxMs) return [this.#finish('max-length')];
    return [];
  }

  #append(frame: Int16Array, ms: number): void {
    this.#utterance.push(frame);
    this.#utteranceMs += ms;
  }

  #finish(reason: SpeechEndEvent['reason']): SpeechEndEvent {
    // Keep a little of the trailing silence, as recognisers expect a soft ending.
    let kept = 0;
    for (const q of this.#quietTail) {
      if (kept >= this.#postRollMs) break;
      this.#append(q.frame, q.ms);
      kept += q.ms;
    }
    const length = this.#utterance.reduce((n, f) => n + f.length, 0);
    const audio = new Int16Array(length);
    let offset = 0;
    for (const f of this.#utterance) {
      audio.set(f, offset);
      offset += f.length;
    }
    const event: SpeechEndEvent = {
      type: 'speech-end',
      atMs: this.#nowMs,
      audio,
      durationMs: samplesToMs(length),
      reason,
    };
    this.#inSpeech = false;
    this.#utterance = [];
    this.#utteranceMs = 0;
    this.#quietTail = [];
    this.#runMs = 0;
    return event;
  }

  /**
   * Minimum statistics: the floor is the quietest 100 ms block of the last 2 s, the block in
   * progress included (so noise present from the very first frame is already the floor). Speech
   * has pauses between words, so a talker does not lift the floor; steady noise does.
   */
  #trackNoise(frame: Int16Array): void {
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += frame[i]! * frame[i]!;
    this.#blockPower += frame.length > 0 ? sum / frame.length : 0;
    this.#blockFrames++;
    const current = powerToDb(this.#blockPower / this.#blockFrames);
    if (this.#blockFrames === BLOCK_FRAMES) {
      this.#blocks.push(current);
      if (this.#blocks.length > WINDOW_BLOCKS) this.#blocks.shift();
      this.#blockPower = 0;
      this.#blockFrames = 0;
    }
    this.#noiseFloorDb = Math.max(NOISE_FLOOR_MIN_DB, Math.min(current, ...this.#blocks));
  }
}
