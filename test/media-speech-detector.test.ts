import { describe, expect, it } from 'vitest';
import { concatPcm } from '../src/media/pcm16.js';
import {
  frameLevelDb,
  SpeechDetector,
  type SpeechEndEvent,
  type SpeechEvent,
} from '../src/media/speech-detector.js';
import { tone } from '../src/media/tone.js';

/** Cuts PCM into 160-sample frames. */
function frames(pcm: Int16Array): Int16Array[] {
  const out: Int16Array[] = [];
  for (let i = 0; i < pcm.length; i += 160) out.push(pcm.subarray(i, i + 160));
  return out;
}

const silence = (ms: number) => new Int16Array(ms * 8);

/** White noise at roughly `db` dBFS RMS (deterministic). */
function noise(ms: number, db: number): Int16Array {
  const amplitude = 32768 * 10 ** (db / 20) * Math.sqrt(3);
  let seed = 7;
  return Int16Array.from({ length: ms * 8 }, () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return Math.round((seed / 0x7fffffff - 0.5) * 2 * amplitude);
  });
}

function run(detector: SpeechDetector, pcm: Int16Array): SpeechEvent[] {
  return frames(pcm).flatMap((f) => detector.push(f));
}

describe('SpeechDetector', () => {
  it('finds one utterance in silence + tone + silence, with pre-roll and trimmed tail', () => {
    const detector = new SpeechDetector();
    const events = run(
      detector,
      concatPcm([silence(500), tone(300, 1000, { amplitude: 0.3 }), silence(1000)]),
    );
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
    const [start, end] = events as [SpeechEvent, SpeechEndEvent];
    expect(start.atMs).toBeGreaterThanOrEqual(480);
    expect(start.atMs).toBeLessThanOrEqual(520);
    // speech-end after 700 ms of silence following the tone's end at 1500 ms.
    expect(end.atMs).toBeGreaterThanOrEqual(2180);
    expect(end.atMs).toBeLessThanOrEqual(2240);
    expect(end.reason).toBe('silence');
    // 200 ms pre-roll + 1000 ms tone + 200 ms post-roll.
    expect(end.durationMs).toBeGreaterThanOrEqual(1360);
    expect(end.durationMs).toBeLessThanOrEqual(1440);
    expect(end.audio.length).toBe(end.durationMs * 8);
    expect(detector.speaking).toBe(false);
  });

  it('ignores a click shorter than speechStartMs', () => {
    const detector = new SpeechDetector({ speechStartMs: 100 });
    expect(run(detector, concatPcm([silence(200), tone(1000, 40, { fadeMs: 0 }), silence(1000)]))).toEqual(
      [],
    );
  });

  it('does not split an utterance at a pause shorter than speechEndMs (hysteresis on level too)', () => {
    const detector = new SpeechDetector({ speechEndMs: 700 });
    const loud = tone(300, 400, { amplitude: 0.3 });
    // A soft stretch between the thresholds (about −44 dBFS): below start, above stop.
    const soft = tone(300, 200, { amplitude: 0.009 });
    expect(frameLevelDb(soft.subarray(400, 560))).toBeGreaterThan(-47);
    expect(frameLevelDb(soft.subarray(400, 560))).toBeLessThan(-40);
    const events = run(detector, concatPcm([silence(300), loud, soft, silence(400), loud, silence(900)]));
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
  });

  it('stays quiet on steady background noise, and hears speech above it', () => {
    const detector = new SpeechDetector();
    // Noise from the very first frame: it is the floor at once, never a false speech-start.
    expect(run(detector, noise(3000, -35))).toEqual([]);
    expect(detector.noiseFloorDb).toBeGreaterThan(-38);
    expect(detector.noiseFloorDb).toBeLessThan(-32);
    const events = run(detector, concatPcm([tone(300, 600, { amplitude: 0.3 }), noise(1000, -35)]));
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'speech-end']);
  });

  it('without adaptation, the same noise is taken for speech (the floor is what prevents it)', () => {
    const detector = new SpeechDetector({ adaptive: false });
    expect(run(detector, noise(1000, -35)).map((e) => e.type)).toEqual(['speech-start']);
  });

  it('ends an over-long utterance at maxUtteranceMs, and flush() ends one in progress', () => {
    const detector = new SpeechDetector({ maxUtteranceMs: 1000 });
    const long = run(detector, concatPcm([silence(300), tone(300, 1500, { amplitude: 0.3 })]));
    expect(long.map((e) => e.type)).toEqual(['speech-start', 'speech-end', 'speech-start']);
    expect((long[1] as SpeechEndEvent).reason).toBe('max-length');
    const flushed = detector.flush();
    expect(flushed.map((e) => e.type)).toEqual(['speech-end']);
    expect((flushed[0] as SpeechEndEvent).reason).toBe('flush');
    expect(detector.flush()).toEqual([]);
  });
});
