/**
 * What a call or a text conversation did, as it happens: the lines of its live transcript. The
 * `activity` event of {@link VoiceUI} and {@link TextUI} carries them (the web console shows them);
 * the caller's own keys and texts, and what a realtime agent does, have events of their own
 * (`dtmf`, `text`/`message`, `agent`).
 */
export type Activity =
  /** A verb started (`say`, `gather`, `prompt`, `menu`…); nested verbs report too. */
  | { type: 'verb'; verb: string }
  /** The call was answered (its state is now `up`). */
  | { type: 'answered' }
  /** The app spoke `text` (text to speech), or sent it as a text in a conversation. */
  | { type: 'said'; text: string }
  /** The app played media to the caller: an Asterisk URI, or `audio` for PCM/WAV it streamed. */
  | { type: 'played'; media: string }
  /** A gather returned these keys ('' when the caller pressed nothing). */
  | { type: 'keys'; digits: string }
  /** The speech-to-text engine recognised what the caller said ('' for nothing). */
  | { type: 'heard'; text: string }
  /** A recording of the caller finished. */
  | { type: 'recorded'; name: string; seconds: number }
  /** The app sent an in-call text to the caller. */
  | { type: 'sentText'; text: string };
