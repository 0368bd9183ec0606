/**
 * The one audio format of the media layer: 8 kHz signed 16-bit mono PCM, carried in 20 ms frames
 * of 160 samples, which is what Asterisk's externalMedia `ulaw` leg sends and expects (one RTP
 * packet of 160 µ-law bytes every 20 ms).
 */

/** Sample rate of every PCM buffer the media layer takes or gives, in Hz. */
export const SAMPLE_RATE = 8000;
/** Duration of one frame (one RTP packet), in ms. */
export const FRAME_MS = 20;
/** Samples in one 20 ms frame at 8 kHz. */
export const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;

/** Duration of `samples` 8 kHz samples, in ms. */
export function samplesToMs(samples: number): number {
  return (samples * 1000) / SAMPLE_RATE;
}

/** Number of 8 kHz samples in `ms` milliseconds (rounded). */
export function msToSamples(ms: number): number {
  return Math.round((ms * SAMPLE_RATE) / 1000);
}
