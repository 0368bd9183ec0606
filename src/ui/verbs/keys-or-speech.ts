import type { VoiceCallContext } from '../voice-call-context.js';
import { gather } from './gather.js';
import { playOutput, stopOutput, synthesize } from './output.js';
import { requireStt, watchGoBack } from './prompt.js';
import { UtteranceListener } from './utterance-listener.js';

/** Options of {@link keysOrSpeech}. */
export interface KeysOrSpeechOptions {
  /** Keys to collect at most (a gather's numDigits). */
  maxDigits: number;
  /** Ends a key entry early; '' for none. */
  finishOnKey: string;
  /** Seconds to wait for a key or the start of speech after the prompt. Default 5. */
  timeout?: number;
  /** Words the speech-to-text engine should expect (the choices). */
  hints: readonly string[];
  /** Longest answer in seconds. Default 10. */
  maxSpeechSeconds?: number;
}

/**
 * Says `promptText` and takes the answer either way, as Twilio's `<Gather input="dtmf speech">`:
 * keys (returned as digits) or speech (returned as the transcript). A key or the start of speech
 * stops the prompt; whichever comes first is the answer. '' when neither came in time.
 */
export async function keysOrSpeech(
  ctx: VoiceCallContext,
  promptText: string,
  options: KeysOrSpeechOptions,
): Promise<string> {
  const stt = requireStt(ctx);
  ctx.scope.assertActive();
  await ctx.ensureAnswered();
  const audio = await ctx.scope.race(ctx.audio());
  const listener = new UtteranceListener(audio, (options.maxSpeechSeconds ?? 10) * 1000);
  const goBack = watchGoBack(ctx);
  let offKey = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    const keyPressed = new Promise<'key'>((resolve) => {
      if (ctx.digits.size > 0) resolve('key');
      else offKey = ctx.digits.onPush(() => resolve('key'));
    });
    const output = await synthesize(ctx, promptText, {});
    void listener.started.then(() => stopOutput(ctx));
    // A key interrupts the prompt (and stays buffered for the gather below).
    await Promise.race([playOutput(ctx, output, { interruptible: true }), goBack.promise]);
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), (options.timeout ?? 5) * 1000);
    });
    const first = await ctx.scope.race(
      Promise.race([keyPressed, listener.started.then(() => 'speech' as const), timedOut, goBack.promise]),
    );
    if (first === 'timeout') return '';
    if (first === 'key') {
      listener.close();
      const timeout = options.timeout ?? 5;
      return await gather(ctx, undefined, {
        numDigits: options.maxDigits,
        finishOnKey: options.finishOnKey,
        timeout,
      });
    }
    const utterance = await ctx.scope.race(Promise.race([listener.utterance, goBack.promise]));
    const heard = await ctx.scope.race(
      stt.transcribe(utterance, { hints: [...options.hints], signal: ctx.scope.signal }),
    );
    ctx.note({ type: 'heard', text: heard });
    return heard;
  } finally {
    clearTimeout(timer);
    offKey();
    goBack.stop();
    listener.close();
  }
}
