import { randomUUID } from 'node:crypto';
import { ConfigError, InvalidInputError } from '../../errors.js';
import type { VoiceCallContext } from '../voice-call-context.js';

/**
 * What can be played to a caller: Asterisk media URIs, or audio rendered by the library, as 8 kHz
 * PCM (files and arrays from the app) or as 8 kHz µ-law (cached speech, sent as it is; read-only,
 * it may be shared with other calls).
 */
export type VoiceOutput =
  | { kind: 'uris'; uris: string[] }
  | { kind: 'pcm'; pcm: Int16Array }
  | { kind: 'ulaw'; ulaw: Uint8Array };

/** How an output ended. */
export type OutputResult = 'finished' | 'interrupted';

/** Media URI schemes Asterisk 22 plays; anything else is accepted by ARI but never finishes. */
const SCHEMES = new Set(['sound', 'recording', 'number', 'digits', 'characters', 'tone']);

/** A playback still running after this long is abandoned: Asterisk never finishes some (see README). */
const PLAYBACK_SAFETY_TIMEOUT_MS = 60 * 60 * 1000;

/** Checks media URIs before they reach Asterisk (which would accept a bad one and never finish it). */
export function validateMediaUris(uris: readonly string[]): void {
  for (const uri of uris) {
    const scheme = uri.slice(0, Math.max(0, uri.indexOf(':')));
    if (!SCHEMES.has(scheme) || uri.length === scheme.length + 1) {
      throw new InvalidInputError(
        `Cannot play ${JSON.stringify(uri)}: use sound:, recording:, number:, digits:, characters: or tone:`,
      );
    }
    if (/[,\r\n]/.test(uri))
      throw new InvalidInputError(`A media URI cannot contain a comma or line break: ${JSON.stringify(uri)}`);
  }
}

/**
 * Plays `output` to the caller and resolves when it has been played, or interrupted. When
 * `interruptible`, a key press stops it at once (and stays buffered as input); a key typed ahead
 * before it started means it is not played at all.
 */
export async function playOutput(
  ctx: VoiceCallContext,
  output: VoiceOutput,
  options: { interruptible: boolean },
): Promise<OutputResult> {
  ctx.scope.assertActive();
  await ctx.ensureAnswered();
  if (options.interruptible && ctx.digits.size > 0) return 'interrupted';
  let interrupted = false;
  let stop = (): void => {};
  const unsubscribe = options.interruptible
    ? ctx.digits.onPush(() => {
        interrupted = true;
        stop();
      })
    : () => {};
  try {
    if (output.kind !== 'uris') {
      const audio = await ctx.scope.race(ctx.audio());
      if (interrupted) return 'interrupted';
      stop = () => audio.stop();
      const result = await ctx.scope.race(
        output.kind === 'pcm' ? audio.play(output.pcm) : audio.playUlaw(output.ulaw),
      );
      return interrupted || result === 'stopped' ? 'interrupted' : 'finished';
    }
    validateMediaUris(output.uris);
    const playbackId = randomUUID();
    const finished = ctx.playbacks.wait(playbackId, PLAYBACK_SAFETY_TIMEOUT_MS, 'PlaybackFinished');
    finished.catch(() => {});
    ctx.activePlaybacks.add(playbackId);
    stop = () => {
      ctx.ari.playbacks.stop(playbackId).catch(() => {});
    };
    try {
      await ctx.request(ctx.ari.channels.play(ctx.channelId, output.uris, { playbackId }));
      if (interrupted) stop();
      await ctx.scope.race(finished);
      return interrupted ? 'interrupted' : 'finished';
    } finally {
      ctx.activePlaybacks.delete(playbackId);
      ctx.playbacks.forget(playbackId);
    }
  } finally {
    unsubscribe();
  }
}

/** Renders `text` with the configured TTS engine (cached), as µ-law when the speaker offers it. */
export async function synthesize(
  ctx: VoiceCallContext,
  text: string,
  options: { voice?: string; language?: string },
): Promise<VoiceOutput> {
  if (!ctx.speaker) {
    throw new ConfigError(
      'tts',
      'No text-to-speech engine is configured: install espeak-ng for local speech, or set OPENAI_API_KEY or ' +
        'GOOGLE_APPLICATION_CREDENTIALS, or pass `tts` to Server.create.',
    );
  }
  ctx.note({ type: 'said', text });
  // The engine's own default voice comes from SYSTEM_VOICE; only an explicit voice is passed.
  const speakOptions = {
    ...(options.voice ? { voice: options.voice } : {}),
    ...(options.language ? { language: options.language } : {}),
    signal: ctx.scope.signal,
  };
  // The leg is PCMU: µ-law encoded once by the cache spares an encoding per frame on every playback.
  if (ctx.speaker.speakUlaw) {
    const ulaw = await ctx.scope.race(ctx.speaker.speakUlaw(text, speakOptions));
    return { kind: 'ulaw', ulaw };
  }
  const pcm = await ctx.scope.race(ctx.speaker.speak(text, speakOptions));
  return { kind: 'pcm', pcm };
}

/** Stops everything being said or played on the call, at the next frame. */
export function stopOutput(ctx: VoiceCallContext): void {
  ctx.openAudio()?.stop();
  for (const id of ctx.activePlaybacks) ctx.ari.playbacks.stop(id).catch(() => {});
}
