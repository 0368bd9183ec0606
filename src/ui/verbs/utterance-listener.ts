import { FRAME_SAMPLES } from '../../media/audio-frame.js';
import { SpeechDetector } from '../../media/speech-detector.js';
import type { CallAudio } from '../voice-call-context.js';

const SILENT_FRAME = new Int16Array(FRAME_SAMPLES);
/** No caller audio for this long counts as silence (Asterisk sends nothing while a 2-party bridge is quiet). */
const GAP_MS = 60;
/** 100 ms of silence: one block of the detector's noise-floor estimate. */
const PRIMING_FRAMES = 5;

/**
 * Listens to the caller's audio for one utterance: `started` settles on speech start, `utterance`
 * on speech end. RTP gaps are filled with silence, so an utterance also ends when the phone
 * simply stops sending.
 */
export class UtteranceListener {
  readonly started: Promise<void>;
  readonly utterance: Promise<Int16Array>;
  hasStarted = false;
  private resolveStarted!: () => void;
  private resolveUtterance!: (pcm: Int16Array) => void;
  private readonly detector: SpeechDetector;
  private readonly unsubscribe: () => void;
  private readonly gapTimer: NodeJS.Timeout;
  private lastFrameAt = performance.now();

  constructor(audio: CallAudio, maxSpeechMs: number) {
    this.detector = new SpeechDetector({ maxUtteranceMs: maxSpeechMs });
    // Until the caller sends audio, the line is silent: say so, so that speech starting at once is
    // measured against silence rather than becoming the detector's idea of background noise.
    for (let i = 0; i < PRIMING_FRAMES; i++) this.detector.push(SILENT_FRAME);
    this.started = new Promise((resolve) => {
      this.resolveStarted = resolve;
    });
    this.utterance = new Promise((resolve) => {
      this.resolveUtterance = resolve;
    });
    this.unsubscribe = audio.onAudio((pcm) => {
      this.lastFrameAt = performance.now();
      this.feed(pcm);
    });
    this.gapTimer = setInterval(() => {
      const now = performance.now();
      while (now - this.lastFrameAt >= GAP_MS) {
        this.lastFrameAt += 20;
        this.feed(SILENT_FRAME);
      }
    }, 20);
  }

  private feed(pcm: Int16Array): void {
    for (const event of this.detector.push(pcm)) {
      if (event.type === 'speech-start') {
        this.hasStarted = true;
        this.resolveStarted();
      } else this.resolveUtterance(event.audio);
    }
  }

  close(): void {
    clearInterval(this.gapTimer);
    this.unsubscribe();
  }
}
