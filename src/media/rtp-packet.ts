import { InvalidInputError } from '../errors.js';

/** One RTP packet (RFC 3550). */
export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Contributing sources; empty for everything Asterisk sends. */
  csrc: readonly number[];
  /** The header extension, when the X bit is set. */
  extension?: { profile: number; data: Buffer };
  payload: Buffer;
}

const RTP_VERSION = 2;

/** Encodes a packet: 12-byte header, CSRC list, optional extension, payload (no padding). */
export function encodeRtp(packet: RtpPacket): Buffer {
  const csrcCount = packet.csrc.length;
  if (csrcCount > 15) throw new InvalidInputError('RTP allows at most 15 CSRC entries');
  const ext = packet.extension;
  if (ext && ext.data.length % 4 !== 0)
    throw new InvalidInputError('RTP header extension must be a multiple of 4 bytes');
  const extLength = ext ? 4 + ext.data.length : 0;
  const header = 12 + csrcCount * 4 + extLength;
  const out = Buffer.allocUnsafe(header + packet.payload.length);
  out[0] = (RTP_VERSION << 6) | (ext ? 0x10 : 0) | csrcCount;
  out[1] = (packet.marker ? 0x80 : 0) | (packet.payloadType & 0x7f);
  out.writeUInt16BE(packet.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(packet.timestamp >>> 0, 4);
  out.writeUInt32BE(packet.ssrc >>> 0, 8);
  let offset = 12;
  for (const c of packet.csrc) {
    out.writeUInt32BE(c >>> 0, offset);
    offset += 4;
  }
  if (ext) {
    out.writeUInt16BE(ext.profile & 0xffff, offset);
    out.writeUInt16BE(ext.data.length / 4, offset + 2);
    ext.data.copy(out, offset + 4);
    offset += extLength;
  }
  packet.payload.copy(out, offset);
  return out;
}

/** The size of an RTP header with no CSRC and no extension. */
export const RTP_HEADER_BYTES = 12;

/**
 * Writes bytes 1 to 11 of a 12-byte header in place (byte 0, the version, is the packet's own):
 * marker, payload type, sequence number, timestamp and SSRC, the last three modulo 2^16, 2^32 and
 * 2^32, so either sign will do.
 */
export function stampRtpHeader(
  packet: Uint8Array,
  payloadType: number,
  marker: boolean,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
): void {
  // Byte stores keep the low 8 bits of each value: no range checks, no intermediate numbers.
  packet[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  packet[2] = sequenceNumber >> 8;
  packet[3] = sequenceNumber;
  packet[4] = timestamp >>> 24;
  packet[5] = timestamp >>> 16;
  packet[6] = timestamp >>> 8;
  packet[7] = timestamp;
  packet[8] = ssrc >>> 24;
  packet[9] = ssrc >>> 16;
  packet[10] = ssrc >>> 8;
  packet[11] = ssrc;
}

/**
 * The common case of {@link encodeRtp}, for the send path: a 12-byte header (no CSRC, no
 * extension) and the payload, with no intermediate objects.
 */
export function encodeRtpFrame(
  payloadType: number,
  marker: boolean,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
  payload: Uint8Array,
): Buffer {
  const out = Buffer.allocUnsafe(12 + payload.length);
  out[0] = RTP_VERSION << 6;
  out[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  out.writeUInt16BE(sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(timestamp >>> 0, 4);
  out.writeUInt32BE(ssrc >>> 0, 8);
  out.set(payload, 12);
  return out;
}

/** The CSRC list of nearly every packet (Asterisk sends none): one shared empty array, not one per packet. */
const NO_CSRC: readonly number[] = Object.freeze([]);

/**
 * Decodes a datagram. Returns `undefined` for anything that is not a well-formed RTP packet
 * (wrong version, truncated header, bad padding): a UDP socket receives whatever anyone sends.
 */
export function decodeRtp(datagram: Buffer): RtpPacket | undefined {
  if (datagram.length < 12 || datagram[0]! >> 6 !== RTP_VERSION) return undefined;
  const padding = (datagram[0]! & 0x20) !== 0;
  const hasExtension = (datagram[0]! & 0x10) !== 0;
  const csrcCount = datagram[0]! & 0x0f;
  let offset = 12 + csrcCount * 4;
  if (datagram.length < offset) return undefined;
  let csrc: readonly number[] = NO_CSRC;
  if (csrcCount > 0) {
    const list: number[] = [];
    for (let i = 0; i < csrcCount; i++) list.push(datagram.readUInt32BE(12 + i * 4));
    csrc = list;
  }
  let extension: RtpPacket['extension'];
  if (hasExtension) {
    if (datagram.length < offset + 4) return undefined;
    const profile = datagram.readUInt16BE(offset);
    const words = datagram.readUInt16BE(offset + 2);
    if (datagram.length < offset + 4 + words * 4) return undefined;
    extension = { profile, data: datagram.subarray(offset + 4, offset + 4 + words * 4) };
    offset += 4 + words * 4;
  }
  let end = datagram.length;
  if (padding) {
    const padCount = datagram[datagram.length - 1]!;
    if (padCount === 0 || offset + padCount > datagram.length) return undefined;
    end -= padCount;
  }
  const packet: RtpPacket = {
    payloadType: datagram[1]! & 0x7f,
    marker: (datagram[1]! & 0x80) !== 0,
    sequenceNumber: datagram.readUInt16BE(2),
    timestamp: datagram.readUInt32BE(4),
    ssrc: datagram.readUInt32BE(8),
    csrc,
    payload: datagram.subarray(offset, end),
  };
  if (extension) packet.extension = extension;
  return packet;
}

/** RTP payload type of G.711 µ-law (PCMU). */
export const PT_PCMU = 0;
/** RTP payload type of G.711 A-law (PCMA). */
export const PT_PCMA = 8;
