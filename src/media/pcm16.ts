/**
 * Signed 16-bit PCM buffers as the speech engines and WAV files carry them: little-endian bytes ↔
 * Int16Array samples, and joining the pieces of a split utterance.
 */

/**
 * Little-endian 16-bit PCM bytes → samples (a trailing odd byte is dropped). Works at any byte
 * offset: a DataView, because an Int16Array view would need the bytes 2-aligned and the host
 * little-endian.
 */
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

/** Concatenates PCM buffers (returns the only one as is, without copying). */
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
