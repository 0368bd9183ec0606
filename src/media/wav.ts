import { InvalidInputError } from '../errors.js';
import { SAMPLE_RATE } from './audio-frame.js';
import { alawToLinear, mulawToLinear } from './g711.js';
import { int16ToPcm16le } from './pcm16.js';
import { resample } from './resample.js';

/**
 * RIFF/WAVE files, at two levels:
 * - {@link readWav}: the chunk view (format fields, the `data` payload, every chunk in file order),
 *   for callers that judge the format themselves or need their own chunks (the TTS cache's `asum`
 *   checksum, Google's LINEAR16 answers).
 * - {@link decodeWav} (and {@link readWavInfo}): any common WAV to the media layer's 8 kHz mono PCM.
 *
 * {@link encodeWav} writes the canonical 16-bit mono file, optionally with extra chunks.
 */

/** WAVE format tags this library understands. */
export const WAV_FORMAT = { PCM: 1, FLOAT: 3, ALAW: 6, MULAW: 7, EXTENSIBLE: 0xfffe } as const;

/** How the samples of a WAV file are encoded. */
export type WavEncoding = 'pcm' | 'float' | 'mulaw' | 'alaw';

/** One RIFF chunk: its four-character id and its payload (without the 8-byte chunk header). */
export interface RiffChunk {
  id: string;
  data: Buffer;
}

/** The chunk view of a WAV file, as {@link readWav} finds it (format fields not checked). */
export interface WavFile {
  /** The WAVE format tag (1 = PCM, 7 = µ-law…); for WAVE_FORMAT_EXTENSIBLE, the sub-format's tag. */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Bytes per sample frame (all channels), as the `fmt ` chunk states it. */
  blockAlign: number;
  /** The `data` chunk payload, cut to the bytes actually present. */
  data: Buffer;
  /** True when a chunk claimed more bytes than the file holds (a truncated file). */
  truncated: boolean;
  /** Every chunk in file order (payloads cut to what is present). */
  chunks: RiffChunk[];
}

/** The format of a WAV file that {@link decodeWav} can decode, as {@link readWavInfo} reads it. */
export interface WavInfo {
  encoding: WavEncoding;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Whole sample frames present in the file (a truncated data chunk counts what is there). */
  frames: number;
}

function fail(reason: string): never {
  throw new InvalidInputError(`Invalid WAV: ${reason}`);
}

/** True when `bytes` starts like a RIFF/WAVE file. */
export function isWav(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WAVE';
}

/**
 * Reads a RIFF/WAVE buffer by walking its chunks (`fmt `, `LIST`, `fact`, `data`, padding bytes of
 * odd-sized chunks…), never assuming a 44-byte header. The first `fmt ` and the first `data` count.
 * A `data` size of 0 or 0xFFFFFFFF (a streamed WAV, written before its length was known) means "to
 * the end"; a chunk claiming more than the file holds is cut to what is there and flags `truncated`.
 * The format fields are reported, not judged: see {@link readWavInfo} for that.
 *
 * @throws {InvalidInputError} when there is no RIFF/WAVE signature, no `fmt ` chunk of at least 16
 *   bytes or no `data` chunk.
 */
export function readWav(bytes: Uint8Array): WavFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isWav(buf)) fail('no RIFF/WAVE header');
  const chunks: RiffChunk[] = [];
  let fmt: Buffer | undefined;
  let data: Buffer | undefined;
  let truncated = false;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    let size = buf.readUInt32LE(offset + 4);
    const start = offset + 8;
    const available = buf.length - start;
    if (id === 'data' && (size === 0 || size === 0xffffffff)) size = available;
    if (size > available) {
      truncated = true;
      size = available;
    }
    const payload = buf.subarray(start, start + size);
    chunks.push({ id, data: payload });
    if (id === 'fmt ' && fmt === undefined) fmt = payload;
    if (id === 'data' && data === undefined) data = payload;
    offset = start + size + (size % 2); // chunks are padded to an even length
  }
  if (fmt === undefined) fail('no fmt chunk');
  if (fmt.length < 16) fail('fmt chunk shorter than 16 bytes');
  if (data === undefined) fail('no data chunk');
  let format = fmt.readUInt16LE(0);
  // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
  if (format === WAV_FORMAT.EXTENSIBLE && fmt.length >= 26) format = fmt.readUInt16LE(24);
  return {
    format,
    channels: fmt.readUInt16LE(2),
    sampleRate: fmt.readUInt32LE(4),
    blockAlign: fmt.readUInt16LE(12),
    bitsPerSample: fmt.readUInt16LE(14),
    data,
    truncated,
    chunks,
  };
}

function encodingOf(tag: number, bits: number): WavEncoding {
  switch (tag) {
    case WAV_FORMAT.PCM:
      if (![8, 16, 24, 32].includes(bits)) fail(`PCM with ${bits} bits per sample is not supported`);
      return 'pcm';
    case WAV_FORMAT.FLOAT:
      if (bits !== 32) fail(`float samples of ${bits} bits are not supported (only 32)`);
      return 'float';
    case WAV_FORMAT.MULAW:
    case WAV_FORMAT.ALAW:
      if (bits !== 8) fail(`G.711 with ${bits} bits per sample (expected 8)`);
      return tag === WAV_FORMAT.MULAW ? 'mulaw' : 'alaw';
    case WAV_FORMAT.EXTENSIBLE:
      // readWav leaves the tag as is when the fmt chunk is too short to hold the sub-format.
      return fail('WAVE_FORMAT_EXTENSIBLE without a sub-format');
    default:
      return fail(`format tag ${tag} is not supported (PCM, float, µ-law and A-law are)`);
  }
}

/** Judges the format fields of `wav`: what {@link decodeWav} can decode, or why not. */
function infoOf(wav: WavFile): WavInfo {
  const { channels, sampleRate, bitsPerSample, blockAlign } = wav;
  if (channels < 1) fail('zero channels');
  if (sampleRate < 1000 || sampleRate > 384000) fail(`sample rate ${sampleRate} Hz is out of range`);
  const encoding = encodingOf(wav.format, bitsPerSample);
  if (blockAlign !== channels * (bitsPerSample / 8))
    fail(`block align ${blockAlign} does not match ${channels} channels of ${bitsPerSample} bits`);
  return { encoding, channels, sampleRate, bitsPerSample, frames: Math.floor(wav.data.length / blockAlign) };
}

/**
 * Reads the format of a WAV file without decoding it.
 *
 * @throws {InvalidInputError} saying why the buffer is not a WAV that {@link decodeWav} can decode.
 */
export function readWavInfo(bytes: Uint8Array): WavInfo {
  return infoOf(readWav(bytes));
}

/** Reads sample `index` (interleaved) as a value on the 16-bit scale. */
function sampleReader(data: Buffer, info: WavInfo): (index: number) => number {
  switch (info.encoding) {
    case 'mulaw':
      return (i) => mulawToLinear(data[i]!);
    case 'alaw':
      return (i) => alawToLinear(data[i]!);
    case 'float':
      return (i) => data.readFloatLE(i * 4) * 32768;
    case 'pcm':
      switch (info.bitsPerSample) {
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
 * rates are resampled with an anti-aliasing filter. A truncated data chunk gives what is there.
 *
 * @throws {InvalidInputError} saying why the buffer is not a usable WAV.
 */
export function decodeWav(bytes: Uint8Array): Int16Array {
  const wav = readWav(bytes);
  const info = infoOf(wav);
  const read = sampleReader(wav.data, info);
  // Downmix and resample in float: the average of channels is not on the 16-bit grid, and rounding
  // before the filter would add quantisation noise for nothing.
  const mono = new Float32Array(info.frames);
  for (let f = 0; f < info.frames; f++) {
    let sum = 0;
    for (let c = 0; c < info.channels; c++) sum += read(f * info.channels + c);
    mono[f] = sum / info.channels;
  }
  const at8k = info.sampleRate === SAMPLE_RATE ? mono : resample(mono, info.sampleRate, SAMPLE_RATE);
  const out = new Int16Array(at8k.length);
  for (let i = 0; i < at8k.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(at8k[i]!)));
  return out;
}

/**
 * A canonical 16-bit PCM mono WAV (44-byte header) of `samples` at `sampleRate` (default 8 kHz),
 * optionally followed by extra RIFF chunks: after `data`, where players ignore them.
 */
export function encodeWav(
  samples: Int16Array,
  sampleRate: number = SAMPLE_RATE,
  extraChunks: readonly RiffChunk[] = [],
): Buffer {
  const dataBytes = samples.length * 2;
  const extraBytes = extraChunks.reduce((n, c) => n + 8 + c.data.length + (c.data.length % 2), 0);
  const out = Buffer.alloc(44 + dataBytes + extraBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes + extraBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(WAV_FORMAT.PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  int16ToPcm16le(samples).copy(out, 44);
  let offset = 44 + dataBytes;
  for (const chunk of extraChunks) {
    out.write(chunk.id.padEnd(4, ' ').slice(0, 4), offset, 'ascii');
    out.writeUInt32LE(chunk.data.length, offset + 4);
    chunk.data.copy(out, offset + 8);
    offset += 8 + chunk.data.length + (chunk.data.length % 2);
  }
  return out;
}
