/**
 * Whether a µ-law frame is speech, as the simulated PBX's TALK_DETECT and recordings (silence
 * detection) judge it.
 */

/** Mean absolute amplitude of a µ-law frame above which it counts as talking (TALK_DETECT's default). */
const TALK_THRESHOLD = 256;

/** Mean absolute amplitude of a µ-law frame, cheaply: distance of each byte from silence. */
function frameEnergy(frame: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < frame.length; i++) {
    const u = ~frame[i]! & 0x7f; // strip sign: 0 is loudest negative-free magnitude index
    sum += (u >> 4) * 600 + (u & 0x0f) * 20;
  }
  return frame.length ? sum / frame.length : 0;
}

/** True when the frame's energy is above TALK_DETECT's default threshold. */
export function isTalkingFrame(frame: Uint8Array): boolean {
  return frameEnergy(frame) > TALK_THRESHOLD;
}
