import { ConfigError, GoBackError, HangupError } from '../../errors.js';
import type { VoiceCallContext } from '../voice-call-context.js';
import { playOutput, stopOutput, synthesize } from './output.js';
import { UtteranceListener } from './utterance-listener.js';

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

/** Rejects with GoBackError when `*` is pressed inside a menu callback (if enabled). */
export function watchGoBack(ctx: VoiceCallContext): { promise: Promise<never>; stop: () => void } {
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

export function requireStt(ctx: VoiceCallContext): NonNullable<VoiceCallContext['stt']> {
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
