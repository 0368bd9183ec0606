import type { AgentMedia } from '../agent/voice-agent.js';
import type { AriClient } from '../asterisk/ari-client.js';
import type { PlaybackFinishedEvent, RecordingFinishedEvent } from '../asterisk/ari-events.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { RtpSessionStats } from '../media/rtp-session.js';
import type { SttEngine } from '../stt/stt-engine.js';
import type { Activity } from './call-activity.js';
import type { CallScope } from './call-scope.js';
import type { DigitBuffer } from './digit-buffer.js';
import type { KeyedWaiters } from './keyed-waiters.js';

/**
 * What a call's media path offers the UI: audio out, audio in, and the bridge it lives in. It is
 * also the agent's {@link AgentMedia}: µ-law in and out, untouched.
 */
export interface CallAudio extends AgentMedia {
  /** Plays 8 kHz PCM to the caller; 'stopped' when {@link stop} cut it short. */
  play(pcm: Int16Array): Promise<'finished' | 'stopped'>;
  /** Like {@link play}, for 8 kHz µ-law sent as it is (not modified, so it may be shared). */
  playUlaw(ulaw: Uint8Array): Promise<'finished' | 'stopped'>;
  /** Stops what is playing at the next 20 ms frame (no frame of it goes out after this call). */
  stop(): Promise<void>;
  /** Receives the caller's audio in 20 ms frames; returns the unsubscribe function. */
  onAudio(listener: (pcm: Int16Array) => void): () => void;
  /** The mixing bridge holding the caller and the media leg. */
  readonly bridgeId: string;
  /** The externalMedia channel. */
  readonly externalChannelId: string;
  /** RTP counters of the media leg (read once, when the call's media closes, for metrics). */
  readonly stats?: RtpSessionStats;
  close(): Promise<void>;
}

/** Text to speech as the UI uses it: text in, 8 kHz PCM (or µ-law, when offered) out (cached). */
export interface Speaker {
  speak(
    text: string,
    options: { voice?: string; language?: string; signal?: AbortSignal },
  ): Promise<Int16Array>;
  /**
   * The same audio as 8 kHz µ-law, what the call's PCMU leg sends, so that a cached prompt is not
   * encoded again on every playback. The array may be shared with other calls: read-only. When
   * absent, the UI uses {@link speak}.
   */
  speakUlaw?(
    text: string,
    options: { voice?: string; language?: string; signal?: AbortSignal },
  ): Promise<Uint8Array>;
}

/**
 * Everything the voice verbs (say, play, gather, prompt, record…) share about one call. Built by
 * the VoiceUI; the verbs are small functions over it.
 */
export interface VoiceCallContext {
  readonly ari: AriClient;
  readonly channelId: string;
  readonly config: Config;
  readonly scope: CallScope;
  readonly digits: DigitBuffer;
  readonly logger: Logger;
  readonly playbacks: KeyedWaiters<PlaybackFinishedEvent>;
  readonly recordings: KeyedWaiters<RecordingFinishedEvent>;
  readonly speaker: Speaker | undefined;
  readonly stt: SttEngine | undefined;
  /** Nesting depth of menu callbacks (for `*` back navigation). */
  menuDepth: number;
  /** Opens the media path on first use. */
  audio(): Promise<CallAudio>;
  /** The media path if it is open, without opening it. */
  openAudio(): CallAudio | undefined;
  /** Answers the call if it is not answered yet. */
  ensureAnswered(): Promise<void>;
  /**
   * Runs an ARI request about this call: rejects with HangupError when the call ends meanwhile or
   * Asterisk says the channel is gone (the caller hung up between two requests).
   */
  request<T>(request: Promise<T>): Promise<T>;
  /** ARI playbacks running on the call, so stopSpeaking can stop them. */
  readonly activePlaybacks: Set<string>;
  /** Reports a line of the call's live transcript (the VoiceUI's `activity` event). */
  note(activity: Activity): void;
}
