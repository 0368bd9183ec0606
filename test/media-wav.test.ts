import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.js';
import { linearToAlaw, linearToMulaw } from '../src/media/g711.js';
import { pcm16leToInt16 } from '../src/media/pcm16.js';
import { tone } from '../src/media/tone.js';
import { decodeWav, encodeWav, isWav, readWav, readWavInfo } from '../src/media/wav.js';

/** A WAV file with any format fields, and extra chunks before `data`. */
function wav(opts: {
  tag?: number;
  channels?: number;
  rate: number;
  bits: number;
  data: Buffer;
  extraChunks?: { id: string; data: Buffer }[];
}): Buffer {
  const channels = opts.channels ?? 1;
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(opts.tag ?? 1, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(opts.rate, 4);
  fmt.writeUInt32LE((opts.rate * channels * opts.bits) / 8, 8);
  fmt.writeUInt16LE((channels * opts.bits) / 8, 12);
  fmt.writeUInt16LE(opts.bits, 14);
  const chunk = (id: string, data: Buffer) => {
    const header = Buffer.alloc(8);
    header.write(id, 0, 'ascii');
    header.writeUInt32LE(data.length, 4);
    return Buffer.concat([header, data, Buffer.alloc(data.length % 2)]);
  };
  const body = Buffer.concat([
    Buffer.from('WAVE'),
    chunk('fmt ', fmt),
    ...(opts.extraChunks ?? []).map((c) => chunk(c.id, c.data)),
    chunk('data', opts.data),
  ]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'ascii');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

/** A sine at `hz` sampled at `rate`, as 16-bit little-endian bytes, repeated on `channels`. */
function sineBytes(hz: number, rate: number, ms: number, channels = 1, amplitude = 16000): Buffer {
  const n = (rate * ms) / 1000;
  const out = Buffer.alloc(n * 2 * channels);
  for (let i = 0; i < n; i++) {
    const v = Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * amplitude);
    for (let c = 0; c < channels; c++) out.writeInt16LE(v, (i * channels + c) * 2);
  }
  return out;
}

/** Frequency from zero crossings (good enough for one clean tone). */
function frequency(pcm: Int16Array): number {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 !== pcm[i]! < 0) crossings++;
  return crossings / 2 / (pcm.length / 8000);
}

function rms(pcm: Int16Array): number {
  return Math.sqrt(pcm.reduce((s, v) => s + v * v, 0) / pcm.length);
}

describe('decodeWav and readWavInfo', () => {
  it('round-trips 8 kHz mono PCM16 exactly', () => {
    const pcm = tone(700, 250);
    const file = encodeWav(pcm);
    expect(file.length).toBe(44 + pcm.length * 2);
    expect(readWavInfo(file)).toEqual({
      encoding: 'pcm',
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 16,
      frames: pcm.length,
    });
    expect(decodeWav(file)).toEqual(pcm);
  });

  it('downmixes stereo and resamples 16, 24 and 48 kHz to 8 kHz, keeping the tone', () => {
    for (const rate of [16000, 24000, 48000]) {
      const pcm = decodeWav(wav({ channels: 2, rate, bits: 16, data: sineBytes(1000, rate, 500, 2) }));
      expect(pcm.length).toBe(4000);
      expect(frequency(pcm.subarray(200, 3800))).toBeCloseTo(1000, -1);
      // Amplitude kept (sine RMS = 16000/√2 ≈ 11314).
      expect(rms(pcm.subarray(200, 3800))).toBeGreaterThan(10500);
    }
  });

  it('filters what would alias: a 6 kHz tone at 48 kHz does not become 2 kHz at 8 kHz', () => {
    const pcm = decodeWav(wav({ rate: 48000, bits: 16, data: sineBytes(6000, 48000, 500) }));
    expect(rms(pcm.subarray(200, 3800))).toBeLessThan(200);
  });

  it('decodes G.711 µ-law and A-law WAVs', () => {
    const source = tone(500, 100);
    const ulaw = Buffer.from(Array.from(source, linearToMulaw));
    const alaw = Buffer.from(Array.from(source, linearToAlaw));
    const fromU = decodeWav(wav({ tag: 7, rate: 8000, bits: 8, data: ulaw }));
    const fromA = decodeWav(wav({ tag: 6, rate: 8000, bits: 8, data: alaw }));
    for (const decoded of [fromU, fromA]) {
      expect(decoded.length).toBe(source.length);
      for (let i = 0; i < source.length; i++) expect(Math.abs(decoded[i]! - source[i]!)).toBeLessThan(1100);
    }
  });

  it('walks odd-sized chunks before data and tolerates a truncated data chunk', () => {
    const data = sineBytes(400, 8000, 100);
    const file = wav({ rate: 8000, bits: 16, data, extraChunks: [{ id: 'LIST', data: Buffer.from('odd') }] });
    expect(decodeWav(file).length).toBe(800);
    expect(decodeWav(file.subarray(0, file.length - 101)).length).toBe(749);
  });

  it('throws InvalidInputError with the reason', () => {
    const reason = (bytes: Buffer) => {
      try {
        decodeWav(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidInputError);
        return (error as Error).message;
      }
      throw new Error('decodeWav accepted it');
    };
    expect(reason(Buffer.from('not a wav at all'))).toMatch(/no RIFF\/WAVE header/);
    expect(reason(wav({ tag: 85, rate: 8000, bits: 16, data: Buffer.alloc(4) }))).toMatch(/format tag 85/);
    expect(reason(wav({ rate: 8000, bits: 12, data: Buffer.alloc(4) }))).toMatch(/12 bits/);
    const noData = wav({ rate: 8000, bits: 16, data: Buffer.alloc(0) }).subarray(0, 36);
    expect(reason(noData)).toMatch(/no data chunk/);
  });
});

describe('readWav (chunk view) and encodeWav', () => {
  it('round-trips 16-bit PCM through encodeWav/readWav', () => {
    const pcm = new Int16Array([0, 1, -1, 32767, -32768, 1234]);
    const wav = encodeWav(pcm, 8000);
    expect(wav.length).toBe(44 + 12);
    const parsed = readWav(wav);
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
    const parsed = readWav(wav);
    expect(parsed.sampleRate).toBe(16_000);
    expect(parsed.chunks.map((c) => c.id)).toEqual(['fmt ', 'junk', 'data']);
    expect(pcm16leToInt16(parsed.data)).toEqual(new Int16Array([1, 2]));

    const cut = readWav(wav.subarray(0, wav.length - 2));
    expect(cut.truncated).toBe(true);
    expect(cut.data.length).toBe(2);
  });

  it('rejects what is not a WAV', () => {
    expect(isWav(Buffer.from('hello world!'))).toBe(false);
    expect(() => readWav(Buffer.from('hello world!'))).toThrow(InvalidInputError);
    expect(() => readWav(encodeWav(new Int16Array(2), 8000).subarray(0, 36))).toThrow(/data/);
  });

  it('reads a streamed data chunk (size 0) to the end, in any chunk order, and keeps chunks after data', () => {
    const fmt = encodeWav(new Int16Array(0)).subarray(12, 36);
    const data = Buffer.concat([Buffer.from('data'), Buffer.alloc(4), Buffer.from([5, 0, 6, 0])]);
    const streamed = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVE'), data]);
    // fmt after data: some writers do it; the walk finds both wherever they are.
    const late = readWav(
      Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVE'), fmt, data]),
    );
    expect(pcm16leToInt16(late.data)).toEqual(new Int16Array([5, 6]));
    expect(late.truncated).toBe(false);
    expect(() => readWav(streamed)).toThrow(/no fmt chunk/);

    const sum = { id: 'asum', data: Buffer.from('abc') };
    const tagged = readWav(encodeWav(new Int16Array([7]), 8000, [sum]));
    expect(tagged.chunks.map((c) => c.id)).toEqual(['fmt ', 'data', 'asum']);
    expect(tagged.chunks[2]!.data).toEqual(sum.data);
    expect(decodeWav(encodeWav(new Int16Array([7]), 8000, [sum]))).toEqual(new Int16Array([7]));
  });

  it('reports unsupported formats from readWavInfo, not readWav', () => {
    // WAVE_FORMAT_EXTENSIBLE with a 16-byte fmt chunk: too short to hold its sub-format.
    const bytes = wav({ tag: 0xfffe, rate: 8000, bits: 16, data: Buffer.alloc(4) });
    expect(readWav(bytes).format).toBe(0xfffe);
    expect(() => readWavInfo(bytes)).toThrow(/WAVE_FORMAT_EXTENSIBLE without a sub-format/);
    expect(isWav(bytes)).toBe(true);
  });
});
