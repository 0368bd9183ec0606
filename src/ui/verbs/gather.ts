import { GoBackError, InvalidInputError } from '../../errors.js';
import type { VoiceCallContext } from '../voice-call-context.js';
import { playOutput, type VoiceOutput } from './output.js';

/** Options of `gather`; defaults follow Twilio's `<Gather>`. */
export interface GatherOptions {
  /** Stop after this many digits. Default: no limit (finishOnKey or timeout ends it). */
  numDigits?: number;
  /** Seconds to wait for the first digit after the prompt, and between digits. Default 5. */
  timeout?: number;
  /** Seconds to wait between digits once the first is in. Default: `timeout`. */
  interDigitTimeout?: number;
  /** Key that ends input and is not returned. Default `#`; `''` for none. */
  finishOnKey?: string;
  /** Keys accepted as input; others are ignored. Default: all. */
  validDigits?: string;
}

const KEYS = /^[0-9*#A-D]*$/;

/** How long after a complete fixed-length input a finishOnKey press still belongs to it. */
const TERMINATOR_GRACE_MS = 1500;

/**
 * Plays `prompt` (interruptible: the first key stops it and counts) and collects digits until
 * `numDigits`, `finishOnKey` or a timeout. Returns the digits ('' on timeout). Keys pressed
 * before gather was called count, and skip the prompt.
 */
export async function gather(
  ctx: VoiceCallContext,
  prompt: VoiceOutput | undefined,
  options: GatherOptions = {},
): Promise<string> {
  const finishOnKey = options.finishOnKey ?? '#';
  if (finishOnKey.length > 1 || !KEYS.test(finishOnKey))
    throw new InvalidInputError(`finishOnKey must be one key, not ${JSON.stringify(finishOnKey)}`);
  if (options.validDigits !== undefined && !KEYS.test(options.validDigits)) {
    throw new InvalidInputError(
      `validDigits may hold only 0-9, *, #, A-D: ${JSON.stringify(options.validDigits)}`,
    );
  }
  if (options.numDigits !== undefined && !(Number.isInteger(options.numDigits) && options.numDigits > 0)) {
    throw new InvalidInputError(`numDigits must be a positive integer, not ${options.numDigits}`);
  }
  const timeoutMs = (options.timeout ?? 5) * 1000;
  const interDigitMs = (options.interDigitTimeout ?? options.timeout ?? 5) * 1000;
  if (prompt) await playOutput(ctx, prompt, { interruptible: true });
  const goBack = ctx.config.goBackOnStar && ctx.menuDepth > 0;
  let collected = '';
  for (;;) {
    const digit = await ctx.scope.race(ctx.digits.next(collected === '' ? timeoutMs : interDigitMs));
    if (digit === undefined) break;
    if (digit === '*' && goBack) throw new GoBackError();
    if (finishOnKey !== '' && digit === finishOnKey) break;
    if (options.validDigits !== undefined && !options.validDigits.includes(digit)) continue;
    collected += digit;
    if (options.numDigits !== undefined && collected.length >= options.numDigits) {
      if (finishOnKey !== '') ctx.digits.swallowNext(finishOnKey, TERMINATOR_GRACE_MS);
      break;
    }
  }
  return collected;
}
