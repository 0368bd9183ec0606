import { randomUUID } from 'node:crypto';
import { AsteramiskError, HangupError, InvalidInputError } from '../../errors.js';
import type { VoiceCallContext } from '../voice-call-context.js';

/** Options of `record`. */
export interface RecordOptions {
  /** Longest recording in seconds. Default 3600. */
  maxLength?: number;
  /** Seconds of silence that end the recording; 0 for none. Default 5. */
  timeout?: number;
  /** Key(s) that end the recording: `'any'` (default), `'#'`, `'*'` or `''` for none. */
  finishOnKey?: 'any' | '#' | '*' | '';
  /** Play a beep first. Default true. */
  playBeep?: boolean;
  /** File format Asterisk writes. Default `wav`. */
  format?: 'wav' | 'gsm' | 'ulaw' | 'alaw' | 'sln';
  /** Recording name (letters, digits, `-`, `_`). Default: a random one. */
  name?: string;
}

/** A finished recording, stored by Asterisk. */
export interface Recording {
  name: string;
  format: string;
  /** Whole seconds, as Asterisk reports them. */
  durationSeconds: number;
  /** The key that ended it, if one did. */
  digit: string | undefined;
  /** The file's bytes (a WAV for `wav`). */
  data(): Promise<Buffer>;
  /** Deletes it from Asterisk. */
  delete(): Promise<void>;
}

/**
 * Thrown by `record` when the caller hangs up while recording. The recording up to the hangup is
 * kept by Asterisk and available as {@link recording}: hanging up is how most callers finish a
 * voicemail.
 */
export class RecordingHangupError extends HangupError {
  constructor(readonly recording: Recording) {
    super('The caller hung up while recording; the partial recording is in error.recording');
  }
}

/**
 * Records the caller through an ARI live recording. While it records, the caller leaves the media
 * bridge and rejoins it afterwards: Asterisk 22 accepts recording a bridged channel (201) and
 * then fails it (RecordingFailed, "Cannot record channel while in bridge").
 *
 * @throws {AsteramiskError} code `RECORDING_FAILED` when Asterisk fails the recording.
 * @throws {RecordingHangupError} when the caller hangs up while recording.
 */
export async function record(ctx: VoiceCallContext, options: RecordOptions = {}): Promise<Recording> {
  ctx.scope.assertActive();
  const name = options.name ?? `asteramisk-${randomUUID()}`;
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new InvalidInputError(
      `Recording name ${JSON.stringify(name)} may only hold letters, digits, - and _`,
    );
  const format = options.format ?? 'wav';
  const finishOnKey = options.finishOnKey ?? 'any';
  await ctx.ensureAnswered();
  const audio = ctx.openAudio();
  if (audio) {
    audio.stop();
    await ctx.request(ctx.ari.bridges.removeChannel(audio.bridgeId, ctx.channelId));
  }
  let lastDigit: string | undefined;
  const stopDigits = ctx.digits.onPush((d) => {
    lastDigit = d;
  });
  const finished = ctx.recordings.wait(name, undefined, 'RecordingFinished');
  finished.catch(() => {});
  const make = (durationSeconds: number): Recording => ({
    name,
    format,
    durationSeconds,
    digit: finishOnKey === '' ? undefined : lastDigit,
    data: () => ctx.ari.recordings.getStoredFile(name),
    delete: () => ctx.ari.recordings.deleteStored(name),
  });
  try {
    await ctx.request(
      ctx.ari.channels.record(ctx.channelId, {
        name,
        format,
        maxDurationSeconds: options.maxLength ?? 3600,
        maxSilenceSeconds: options.timeout ?? 5,
        beep: options.playBeep ?? true,
        terminateOn: finishOnKey === '' ? 'none' : finishOnKey,
        ifExists: 'fail',
      }),
    );
    const event = await ctx.scope.race(finished);
    if (event.recording.state === 'failed') {
      // Asterisk accepts a recording it cannot make (201) and then fails it, e.g. "Cannot record
      // channel while in bridge": nothing was recorded.
      throw new AsteramiskError(
        `Asterisk could not record the call: ${event.recording.cause ?? 'no reason given'}`,
        { code: 'RECORDING_FAILED' },
      );
    }
    // The terminating key is input for this recording, not for a later gather.
    if (lastDigit !== undefined) ctx.digits.clear();
    return make(event.recording.duration ?? 0);
  } catch (error) {
    if (error instanceof HangupError) throw new RecordingHangupError(make(0));
    throw error;
  } finally {
    stopDigits();
    ctx.recordings.forget(name);
    if (audio && !ctx.scope.ended)
      await ctx.ari.bridges.addChannel(audio.bridgeId, ctx.channelId).catch(() => {});
  }
}
