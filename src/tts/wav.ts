/**
 * RIFF/WAVE helpers for the speech layer: parse a WAV by walking its chunks (never assuming a
 * 44-byte header), build a 16-bit mono WAV, and convert between little-endian PCM bytes and
 * Int16Array samples.
 */

/** WAVE format tags this library understands. */
export const WAV_FORMAT = { PCM: 1, ALAW: 6, MULAW: 7, EXTENSIBLE: 0xfffe } as const;

/** One RIFF chunk: its four-character id and its payload (without the 8-byte chunk header). */
export interface RiffChunk {
  id: string;
  data: Buffer;
}

/** What {@link parseWav} found. */
export interface ParsedWav {
  /** The WAVE format tag (1 = PCM, 7 = µ-law…); for WAVE_FORMAT_EXTENSIBLE, the sub-format's tag. */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** The `data` chunk payload, cut to the bytes actually present. */
  data: Buffer;
  /** True when the `data` chunk claimed more bytes than the file holds (a truncated file or a stream). */
  truncated: boolean;
  /** Every chunk in file order (payloads cut to what is present). */
  chunks: RiffChunk[];
}

/** Thrown by {@link parseWav} for a buffer that is not a usable WAV. */
export class WavFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavFormatError';
  }
}

/** True when `bytes` starts like a RIFF/WAVE file. */
export function isWav(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WAVE';
}

/**
 * Parses a RIFF/WAVE buffer by walking its chunks (`fmt `, `LIST`, `fact`, `data`, padding bytes of
 * odd-sized chunks…). Sizes of 0 or 0xFFFFFFFF on the `data` chunk (streamed WAVs) mean "to the end".
 *
 * @throws {WavFormatError} when there is no RIFF/WAVE signature, no `fmt ` chunk or no `data` chunk.
 */
export function parseWav(bytes: Uint8Array): ParsedWav {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isWav(buf)) throw new WavFormatError('not a RIFF/WAVE buffer');
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
    offset = start + size + (size % 2); // chunks are word-aligned
  }
  if (fmt === undefined || fmt.length < 16) throw new WavFormatError('WAV has no valid "fmt " chunk');
  if (data === undefined) throw new WavFormatError('WAV has no "data" chunk');
  let format = fmt.readUInt16LE(0);
  // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
  if (format === WAV_FORMAT.EXTENSIBLE && fmt.length >= 26) format = fmt.readUInt16LE(24);
  return {
    format,
    channels: fmt.readUInt16LE(2),
    sampleRate: fmt.readUInt32LE(4),
    bitsPerSample: fmt.readUInt16LE(14),
    data,
    truncated,
    chunks,
  };
}

/**
 * A canonical 16-bit PCM mono WAV of `samples` at `sampleRate`, optionally followed by extra RIFF
 * chunks (after `data`, where players ignore them).
 */
export function encodeWav(samples: Int16Array, sampleRate: number, extraChunks: RiffChunk[] = []): Buffer {
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

/** Little-endian 16-bit PCM bytes → samples (a trailing odd byte is dropped). Works at any byte offset. */
export function pcm16leToInt16(bytes: Uint8Array): Int16Array {
  const count = Math.floor(bytes.byteLength / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2);
  const out = new Int16Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** Samples → little-endian 16-bit PCM bytes. */
export function int16ToPcm16le(samples: Int16Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

/** Concatenates PCM buffers (returns the only one as is). */
export function concatPcm(parts: readonly Int16Array[]): Int16Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
