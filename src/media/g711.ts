/**
 * G.711 µ-law and A-law codecs (ITU-T G.711), sample by sample. Asterisk's externalMedia `ulaw`
 * leg carries 8 kHz µ-law; the library works in signed 16-bit PCM, or passes µ-law through
 * untouched where the consumer speaks it too (RtpSession.onPayload, AudioPlayer.streamUlaw).
 */

const MULAW_BIAS = 0x84;
const MULAW_CLIP = 32635;

/** Encodes one signed 16-bit sample to a µ-law byte. */
export function linearToMulaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > MULAW_CLIP) s = MULAW_CLIP;
  s += MULAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one µ-law byte to a signed 16-bit sample. */
export function mulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
  return sign ? -magnitude : magnitude;
}

/** Encodes one signed 16-bit sample to an A-law byte. */
export function linearToAlaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s >= 0 ? 0x80 : 0;
  if (!sign) s = -s - 1;
  if (s > 32767) s = 32767;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = exponent === 0 ? (s >> 4) & 0x0f : (s >> (exponent + 3)) & 0x0f;
  return ((sign | (exponent << 4) | mantissa) ^ 0x55) & 0xff;
}

/** Decodes one A-law byte to a signed 16-bit sample. */
export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const sign = a & 0x80;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  let magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  if (magnitude > 32767) magnitude = 32767;
  return sign ? magnitude : -magnitude;
}

// Decoding is a table lookup: 256 entries each, built once.
const MULAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => mulawToLinear(i));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => alawToLinear(i));

/** µ-law bytes → 16-bit PCM samples. */
export function decodeMulaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = MULAW_TABLE[bytes[i]!]!;
  return out;
}

// Encoding is a table lookup too: 64 Ki entries (one per 16-bit sample), built on first use.
let mulawOfSample: Uint8Array | undefined;

function mulawTable(): Uint8Array {
  if (!mulawOfSample) {
    mulawOfSample = new Uint8Array(65536);
    for (let i = 0; i < 65536; i++) mulawOfSample[i] = linearToMulaw((i << 16) >> 16);
  }
  return mulawOfSample;
}

/** 16-bit PCM samples → µ-law bytes. */
export function encodeMulaw(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length);
  const table = mulawTable();
  for (let i = 0; i < samples.length; i++) out[i] = table[samples[i]! & 0xffff]!;
  return out;
}

/** A-law bytes → 16-bit PCM samples. */
export function decodeAlaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ALAW_TABLE[bytes[i]!]!;
  return out;
}

/** 16-bit PCM samples → A-law bytes. */
export function encodeAlaw(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = linearToAlaw(samples[i]!);
  return out;
}

/** The µ-law byte of a zero sample: what concealment and padding of µ-law frames are filled with. */
export const MULAW_SILENCE = 0xff;

// A-law → µ-law without going through the caller: one table, built once from the two codecs.
const ALAW_TO_MULAW = Uint8Array.from({ length: 256 }, (_, i) => linearToMulaw(alawToLinear(i)));

/** A-law bytes → µ-law bytes (a table lookup per byte), so a PCMA stream can be handled as PCMU. */
export function alawToMulaw(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ALAW_TO_MULAW[bytes[i]!]!;
  return out;
}
