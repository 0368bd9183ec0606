import { InvalidInputError } from '../errors.js';
import { SAMPLE_RATE } from './audio-frame.js';
import { alawToLinear, mulawToLinear } from './g711.js';
import { resample } from './resample.js';

/** How the samples of a WAV file are encoded. */
export type WavEncoding = 'pcm' | 'float' | 'mulaw' | 'alaw';

/** The format chunk of a WAV file, as {@link readWavInfo} reads it. */
export interface WavInfo {
  encoding: WavEncoding;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Whole sample frames present in the file (a truncated data chunk counts what is there). */
  frames: number;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

interface ParsedWav extends WavInfo {
  data: Buffer;
  blockAlign: number;
}

function fail(reason: string): never {
  throw new InvalidInputError(`Invalid WAV: ${reason}`);
}

function encodingOf(tag: number, bits: number): WavEncoding {
  switch (tag) {
    case FORMAT_PCM:
      if (![8, 16, 24, 32].includes(bits)) fail(`PCM with ${bits} bits per sample is not supported`);
      return 'pcm';
    case FORMAT_FLOAT:
      if (bits !== 32) fail(`float samples of ${bits} bits are not supported (only 32)`);
      return 'float';
    case FORMAT_MULAW:
    case FORMAT_ALAW:
      if (bits !== 8) fail(`G.711 with ${bits} bits per sample (expected 8)`);
      return tag === FORMAT_MULAW ? 'mulaw' : 'alaw';
    default:
      return fail(`format tag ${tag} is not supported (PCM, float, µ-law and A-law are)`);
  }
}

/** Walks the RIFF chunks (never assuming a 44-byte header) and reads `fmt ` and `data`. */
function parse(bytes: Uint8Array): ParsedWav {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    fail('no RIFF/WAVE header');
  let fmt: Omit<ParsedWav, 'data' | 'frames'> | undefined;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const start = offset + 8;
    // A streamed WAV may claim more (0xFFFFFFFF) than it holds: take what is there.
    const end = Math.min(buf.length, start + size);
    if (id === 'fmt ') {
      if (end - start < 16) fail('fmt chunk shorter than 16 bytes');
      let tag = buf.readUInt16LE(start);
      const channels = buf.readUInt16LE(start + 2);
      const sampleRate = buf.readUInt32LE(start + 4);
      const blockAlign = buf.readUInt16LE(start + 12);
      const bitsPerSample = buf.readUInt16LE(start + 14);
      if (tag === FORMAT_EXTENSIBLE) {
        if (end - start < 26) fail('WAVE_FORMAT_EXTENSIBLE without a sub-format');
        tag = buf.readUInt16LE(start + 24);
      }
      if (channels < 1) fail('zero channels');
      if (sampleRate < 1000 || sampleRate > 384000) fail(`sample rate ${sampleRate} Hz is out of range`);
      const encoding = encodingOf(tag, bitsPerSample);
      if (blockAlign !== channels * (bitsPerSample / 8))
        fail(`block align ${blockAlign} does not match ${channels} channels of ${bitsPerSample} bits`);
      fmt = { encoding, channels, sampleRate, bitsPerSample, blockAlign };
    } else if (id === 'data') {
      if (!fmt) fail('data chunk before the fmt chunk');
      const data = buf.subarray(start, end);
      return { ...fmt, data, frames: Math.floor(data.length / fmt.blockAlign) };
    }
    offset = start + size + (size % 2); // chunks are padded to an even length
  }
  return fail(fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Reads the format of a WAV file without decoding it. @throws {InvalidInputError} */
export function readWavInfo(bytes: Uint8Array): WavInfo {
  const { encoding, channels, sampleRate, bitsPerSample, frames } = parse(bytes);
  return { encoding, channels, sampleRate, bitsPerSample, frames };
}

/** Reads sample `index` (interleaved) as a value on the 16-bit scale. */
function sampleReader(wav: ParsedWav): (index: number) => number {
  const { data } = wav;
  switch (wav.encoding) {
    case 'mulaw':
      return (i) => mulawToLinear(data[i]!);
    case 'alaw':
      return (i) => alawToLinear(data[i]!);
    case 'float':
      return (i) => data.readFloatLE(i * 4) * 32768;
    case 'pcm':
      switch (wav.bitsPerSample) {
        case 8:
          return (i) => (data[i]! - 128) * 256; // 8-bit WAV is unsigned
        case 16:
          return (i) => data.readInt16LE(i * 2);
        case 24:
          return (i) => data.readIntLE(i * 3, 3) / 256;
        default:
          return (i) => data.readInt32LE(i * 4) / 65536;
      }
  }
}

/**
 * Decodes a WAV file (PCM 8/16/24/32-bit, float32, G.711 µ-law or A-law; any channel count; any
 * sample rate) to the media layer's format: 8 kHz mono 16-bit PCM. Channels are averaged; other
 * rates are resampled with an anti-aliasing filter.
 *
 * @throws {InvalidInputError} saying why the buffer is not a usable WAV.
 */
export function parseWav(bytes: Uint8Array): Int16Array {
  const wav = parse(bytes);
  const read = sampleReader(wav);
  const mono = new Float32Array(wav.frames);
  for (let f = 0; f < wav.frames; f++) {
    let sum = 0;
    for (let c = 0; c < wav.channels; c++) sum += read(f * wav.channels + c);
    mono[f] = sum / wav.channels;
  }
  const at8k = wav.sampleRate === SAMPLE_RATE ? mono : resample(mono, wav.sampleRate, SAMPLE_RATE);
  const out = new Int16Array(at8k.length);
  for (let i = 0; i < at8k.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(at8k[i]!)));
  return out;
}

/** Builds a WAV file of 16-bit mono PCM (44-byte header). Default rate 8 kHz. */
export function writeWav(pcm: Int16Array, sampleRate: number = SAMPLE_RATE): Buffer {
  const dataBytes = pcm.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, 44 + i * 2);
  return out;
}
