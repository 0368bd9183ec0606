/**
 * The naive sender of the RTP benches (the anchor of bench/rtp-pacing.ts and
 * bench/rtp-send-cost.ts): one PCMU packet per stream, encoded once, whose sequence number and
 * timestamp are rewritten in place before each send.
 */

import { encodeRtp } from '../../src/media/rtp-packet.js';

/** One pre-encoded PCMU packet per stream, stream `i` with SSRC `i + 1`, all with `payload`. */
export function preEncodedPackets(streams: number, payload: Buffer): Buffer[] {
  return Array.from({ length: streams }, (_, i) =>
    encodeRtp({
      payloadType: 0,
      marker: false,
      sequenceNumber: 0,
      timestamp: 0,
      ssrc: i + 1,
      csrc: [],
      payload,
    }),
  );
}

/** Makes `packet` frame number `frame` of its stream: sequence number and timestamp, in place. */
export function stampFrame(packet: Buffer, frame: number): void {
  packet.writeUInt16BE(frame & 0xffff, 2);
  packet.writeUInt32BE((frame * 160) >>> 0, 4);
}
