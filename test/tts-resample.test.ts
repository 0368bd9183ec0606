import { describe, expect, it } from 'vitest';
import { resamplePcm16 } from '../src/tts/resample.js';
import { measureUtf8Bytes, splitText } from '../src/tts/split-text.js';
import { concatPcm, encodeWav, isWav, parseWav, pcm16leToInt16, WavFormatError } from '../src/tts/wav.js';
import { rms, sine, zeroCrossingHz } from './support/fake-openai.js';

/** The middle of a buffer, away from the zero-padded edges. */
function middle(samples: Int16Array, margin = 200): Int16Array {
  return samples.subarray(margin, samples.length - margin);
}

describe('resamplePcm16', () => {
  it('keeps a 440 Hz tone at 440 Hz and its level from 24 kHz to 8 kHz', () => {
    const input = sine(440, 24_000, 24_000);
    const out = resamplePcm16(input, 24_000, 8000);
    expect(out.length).toBe(8000);
    expect(Math.abs(zeroCrossingHz(middle(out), 8000) - 440)).toBeLessThan(2);
    expect(rms(middle(out)) / rms(input)).toBeGreaterThan(0.98);
    expect(rms(middle(out)) / rms(input)).toBeLessThan(1.02);
  });

  it('keeps a 3 kHz tone (top of the telephone band) within 1 dB', () => {
    const input = sine(3000, 24_000, 24_000);
    const out = resamplePcm16(input, 24_000, 8000);
    const gainDb = 20 * Math.log10(rms(middle(out)) / rms(input));
    expect(Math.abs(gainDb)).toBeLessThan(1);
    expect(zeroCrossingHz(middle(out), 8000)).toBeCloseTo(3000, -1);
  });

  it('attenuates 6 kHz (which would alias to 2 kHz) by more than 40 dB from 24 kHz to 8 kHz', () => {
    // A phase offset so the 8 kHz sampling instants do not fall on the tone's zeros.
    const input = sine(6000, 24_000, 24_000, 16384, 0.7);
    const out = resamplePcm16(input, 24_000, 8000);
    expect(rms(middle(out)) / rms(input)).toBeLessThan(0.01);

    // The same signal decimated naively (every third sample) keeps nearly all its energy as a 2 kHz alias:
    // this is what the test above would catch.
    const naive = new Int16Array(8000).map((_, i) => input[i * 3]!);
    expect(rms(naive) / rms(input)).toBeGreaterThan(0.5);
    expect(zeroCrossingHz(naive, 8000)).toBeCloseTo(2000, -1);
  });

  it('attenuates 6 kHz and keeps 440 Hz from 16 kHz to 8 kHz', () => {
    const input = sine(6000, 16_000, 16_000, 16384, 0.7);
    const high = resamplePcm16(input, 16_000, 8000);
    expect(high.length).toBe(8000);
    expect(rms(middle(high)) / rms(input)).toBeLessThan(0.01);
    // Just above Nyquist (4.4 kHz would fold onto 3.6 kHz) is attenuated too.
    const near = sine(4400, 16_000, 16_000, 16384, 0.7);
    expect(rms(middle(resamplePcm16(near, 16_000, 8000))) / rms(near)).toBeLessThan(0.01);
    const low = resamplePcm16(sine(440, 16_000, 16_000), 16_000, 8000);
    expect(Math.abs(zeroCrossingHz(middle(low), 8000) - 440)).toBeLessThan(2);
  });

  it('handles non-integer ratios (44.1 kHz → 8 kHz) and upsampling (8 kHz → 24 kHz)', () => {
    const down = resamplePcm16(sine(440, 44_100, 44_100), 44_100, 8000);
    expect(down.length).toBe(8000);
    expect(Math.abs(zeroCrossingHz(middle(down), 8000) - 440)).toBeLessThan(2);
    const up = resamplePcm16(sine(440, 8000, 8000), 8000, 24_000);
    expect(up.length).toBe(24_000);
    expect(Math.abs(zeroCrossingHz(middle(up, 600), 24_000) - 440)).toBeLessThan(2);
    expect(rms(middle(up, 600)) / rms(sine(440, 8000, 8000))).toBeGreaterThan(0.98);
  });

  it('keeps a constant signal constant, clamps, and copies when rates are equal', () => {
    const dc = resamplePcm16(new Int16Array(3000).fill(1000), 24_000, 8000);
    for (const s of middle(dc, 50)) expect(Math.abs(s - 1000)).toBeLessThanOrEqual(1);
    const full = resamplePcm16(new Int16Array(3000).fill(32767), 24_000, 8000);
    expect(Math.max(...full)).toBe(32767);
    const same = new Int16Array([1, 2, 3]);
    const copy = resamplePcm16(same, 8000, 8000);
    expect(copy).toEqual(same);
    expect(copy).not.toBe(same);
  });

  it('rejects rates that are not positive integers', () => {
    expect(() => resamplePcm16(new Int16Array(4), 0, 8000)).toThrow(RangeError);
    expect(() => resamplePcm16(new Int16Array(4), 24_000, 8000.5)).toThrow(RangeError);
  });
});

describe('WAV helpers', () => {
  it('round-trips 16-bit PCM through encodeWav/parseWav', () => {
    const pcm = new Int16Array([0, 1, -1, 32767, -32768, 1234]);
    const wav = encodeWav(pcm, 8000);
    expect(wav.length).toBe(44 + 12);
    const parsed = parseWav(wav);
    expect(parsed).toMatchObject({
      format: 1,
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 16,
      truncated: false,
    });
    expect(pcm16leToInt16(parsed.data)).toEqual(pcm);
  });

  it('walks chunks: skips LIST and odd-sized chunks, flags truncation', () => {
    const fmt = encodeWav(new Int16Array(0), 16_000).subarray(12, 36); // "fmt " chunk of a 16 kHz WAV
    const odd = Buffer.concat([
      Buffer.from('junk'),
      Buffer.from([3, 0, 0, 0]),
      Buffer.from([9, 9, 9]),
      Buffer.alloc(1),
    ]);
    const data = Buffer.concat([Buffer.from('data'), Buffer.from([4, 0, 0, 0]), Buffer.from([1, 0, 2, 0])]);
    const body = Buffer.concat([Buffer.from('WAVE'), fmt, odd, data]);
    const header = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4)]);
    header.writeUInt32LE(body.length, 4);
    const wav = Buffer.concat([header, body]);
    const parsed = parseWav(wav);
    expect(parsed.sampleRate).toBe(16_000);
    expect(parsed.chunks.map((c) => c.id)).toEqual(['fmt ', 'junk', 'data']);
    expect(pcm16leToInt16(parsed.data)).toEqual(new Int16Array([1, 2]));

    const cut = parseWav(wav.subarray(0, wav.length - 2));
    expect(cut.truncated).toBe(true);
    expect(cut.data.length).toBe(2);
  });

  it('rejects what is not a WAV', () => {
    expect(isWav(Buffer.from('hello world!'))).toBe(false);
    expect(() => parseWav(Buffer.from('hello world!'))).toThrow(WavFormatError);
    expect(() => parseWav(encodeWav(new Int16Array(2), 8000).subarray(0, 36))).toThrow(/data/);
  });

  it('reads samples at odd byte offsets and concatenates', () => {
    const bytes = Buffer.from([0xff, 0x01, 0x00, 0xff, 0xff]);
    expect(pcm16leToInt16(bytes.subarray(1))).toEqual(new Int16Array([1, -1]));
    expect(concatPcm([new Int16Array([1]), new Int16Array([2, 3])])).toEqual(new Int16Array([1, 2, 3]));
  });
});

describe('splitText', () => {
  it('returns short text whole and blank text as nothing', () => {
    expect(splitText('  Hello there.  ', 100)).toEqual(['Hello there.']);
    expect(splitText('   ', 100)).toEqual([]);
  });

  it('cuts at sentence ends, then words, then inside a word, never losing text', () => {
    const text = 'One two three. Four five six seven eight! Supercalifragilistic nine.';
    const pieces = splitText(text, 20);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(20);
    expect(pieces[0]).toBe('One two three.');
    expect(pieces.join(' ').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
  });

  it('measures UTF-8 bytes when asked', () => {
    const text = 'é'.repeat(10); // 20 bytes
    const pieces = splitText(text, 8, measureUtf8Bytes);
    for (const p of pieces) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(8);
    expect(pieces.join('')).toBe(text);
  });
});
