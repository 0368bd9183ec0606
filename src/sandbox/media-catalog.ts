/**
 * How long the simulator plays each media URI, measured on a real Asterisk 22 with the core
 * English sounds (sound:hello-world 1402 ms, sound:beep 422 ms, digits:7 817 ms, …).
 */

/** What playing a media URI does. */
export type MediaOutcome =
  /** Plays for `ms`, then finishes `done`. */
  | { kind: 'plays'; ms: number }
  /** Plays until stopped (tones). */
  | { kind: 'endless' }
  /** The file does not exist: Started and Finished(`failed`) at once. */
  | { kind: 'missing' }
  /** Asterisk logs an error and never finishes the playback (unsupported scheme, missing recording). */
  | { kind: 'stuck' };

/** Durations of the sound files the simulator "has", in ms. Extend with `Simulator` option `sounds`. */
export const DEFAULT_SOUNDS: Record<string, number> = {
  'hello-world': 1402,
  beep: 422,
  'demo-congrats': 9780,
  'vm-goodbye': 810,
  'vm-intro': 2950,
  'auth-thankyou': 850,
  'tt-monkeys': 11400,
  'tt-weasels': 6140,
  'silence/1': 1000,
  'silence/2': 2000,
  'silence/5': 5000,
  'conf-onlyperson': 2300,
  'pbx-invalid': 1650,
  'please-try-again': 1100,
  'agent-pass': 1100,
};

const DIGIT_MS = 830;
const CHARACTER_MS = 675;

function numberMs(n: string): number {
  // "forty two" ≈ 2 words; Asterisk says each group as words.
  const value = Math.abs(Number.parseInt(n, 10));
  if (!Number.isFinite(value)) return 0;
  const words = value === 0 ? 1 : String(value).length + (value >= 20 && value % 10 !== 0 ? 0 : -1);
  return 845 * Math.max(1, words);
}

/**
 * What playing `uri` does, given the sounds and stored recordings (with their durations in ms)
 * the simulator holds.
 */
export function mediaOutcome(
  uri: string,
  sounds: Readonly<Record<string, number>>,
  recordingMs: (name: string) => number | undefined,
): MediaOutcome {
  const colon = uri.indexOf(':');
  const scheme = colon < 0 ? '' : uri.slice(0, colon);
  const rest = colon < 0 ? uri : uri.slice(colon + 1);
  switch (scheme) {
    case 'sound': {
      const ms = sounds[rest];
      return ms === undefined ? { kind: 'missing' } : { kind: 'plays', ms };
    }
    case 'digits':
      return { kind: 'plays', ms: Math.max(1, rest.replace(/[^0-9*#a-dA-D]/g, '').length) * DIGIT_MS };
    case 'characters':
      return { kind: 'plays', ms: Math.max(1, rest.length) * CHARACTER_MS };
    case 'number':
      return { kind: 'plays', ms: numberMs(rest) };
    case 'tone':
      return { kind: 'endless' };
    case 'recording': {
      const ms = recordingMs(rest);
      return ms === undefined ? { kind: 'stuck' } : { kind: 'plays', ms: ms + 40 };
    }
    default:
      return { kind: 'stuck' };
  }
}
