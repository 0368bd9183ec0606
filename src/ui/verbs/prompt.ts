import { ConfigError, GoBackError, HangupError } from '../../errors.js';
import { FRAME_SAMPLES } from '../../media/audio-frame.js';
import { SpeechDetector } from '../../media/speech-detector.js';
import type { CallAudio, VoiceCallContext } from '../voice-call-context.js';
import { playOutput, stopOutput, synthesize } from './output.js';

/** Options of `prompt`. */
export interface PromptOptions {
  /** Words or phrases the speech-to-text engine should expect (names, product codes…). */
  hints?: string[];
  /** Seconds to wait for the caller to start speaking after the question. Default 5. */
  timeout?: number;
  /** Language of the answer, e.g. `en`. */
  language?: string;
  /** Longest answer in seconds. Default 30. */
  maxSpeechSeconds?: number;
}

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
class UtteranceListener {
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

/** Rejects with GoBackError when `*` is pressed inside a menu callback (if enabled). */
function watchGoBack(ctx: VoiceCallContext): { promise: Promise<never>; stop: () => void } {
  let stop = (): void => {};
  const promise = new Promise<never>((_resolve, reject) => {
    if (!(ctx.config.goBackOnStar && ctx.menuDepth > 0)) return;
    stop = ctx.digits.onPush((digit) => {
      if (digit !== '*') return;
      ctx.digits.clear();
      stopOutput(ctx);
      reject(new GoBackError());
    });
  });
  promise.catch(() => {});
  return { promise, stop: () => stop() };
}

function requireStt(ctx: VoiceCallContext): NonNullable<VoiceCallContext['stt']> {
  if (!ctx.stt) {
    throw new ConfigError(
      'stt',
      'prompt() and inputStream() need a speech-to-text engine: pass `stt` to Server.create (e.g. "openai" with OPENAI_API_KEY).',
    );
  }
  return ctx.stt;
}

/**
 * Asks `question` and returns the caller's spoken answer as text ('' if they said nothing within
 * the timeout). Speech during the question stops it (barge-in) and counts as the answer.
 */
export async function prompt(
  ctx: VoiceCallContext,
  question: string,
  options: PromptOptions = {},
): Promise<string> {
  const stt = requireStt(ctx);
  ctx.scope.assertActive();
  await ctx.ensureAnswered();
  const audio = await ctx.scope.race(ctx.audio());
  const listener = new UtteranceListener(audio, (options.maxSpeechSeconds ?? 30) * 1000);
  const goBack = watchGoBack(ctx);
  try {
    const output = await synthesize(ctx, question, {});
    // Barge-in: the caller starting to speak stops the question.
    void listener.started.then(() => stopOutput(ctx));
    await Promise.race([playOutput(ctx, output, { interruptible: false }), goBack.promise]);
    if (!listener.hasStarted) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), (options.timeout ?? 5) * 1000);
      });
      const first = await ctx.scope.race(
        Promise.race([listener.started.then(() => 'speech' as const), timedOut, goBack.promise]),
      );
      clearTimeout(timer);
      if (first === 'timeout') return '';
    }
    const utterance = await ctx.scope.race(Promise.race([listener.utterance, goBack.promise]));
    const heard = await ctx.scope.race(
      stt.transcribe(utterance, {
        ...(options.language ? { language: options.language } : {}),
        ...(options.hints ? { hints: options.hints } : {}),
        signal: ctx.scope.signal,
      }),
    );
    ctx.note({ type: 'heard', text: heard });
    return heard;
  } finally {
    goBack.stop();
    listener.close();
  }
}

/**
 * Transcripts of everything the caller says, one per utterance, until the call ends (then the
 * iteration simply stops).
 */
export async function* transcripts(
  ctx: VoiceCallContext,
  options: { language?: string; hints?: string[] } = {},
): AsyncGenerator<string, void, undefined> {
  const stt = requireStt(ctx);
  try {
    await ctx.ensureAnswered();
    const audio = await ctx.scope.race(ctx.audio());
    for (;;) {
      const listener = new UtteranceListener(audio, 30_000);
      let utterance: Int16Array;
      try {
        utterance = await ctx.scope.race(listener.utterance);
      } finally {
        listener.close();
      }
      const text = await ctx.scope.race(
        stt.transcribe(utterance, {
          ...(options.language ? { language: options.language } : {}),
          ...(options.hints ? { hints: options.hints } : {}),
          signal: ctx.scope.signal,
        }),
      );
      if (text.trim()) {
        ctx.note({ type: 'heard', text });
        yield text;
      }
    }
  } catch (error) {
    if (error instanceof HangupError) return;
    throw error;
  }
}
