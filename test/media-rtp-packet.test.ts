import { describe, expect, it } from 'vitest';
import { decodeRtp, encodeRtp, type RtpPacket, stampRtpHeader } from '../src/media/rtp-packet.js';

describe('RTP packet coding', () => {
  const payload = Buffer.from([1, 2, 3, 4, 5]);
  const wire = (fields: Partial<RtpPacket>) =>
    encodeRtp({
      payloadType: 0,
      marker: false,
      sequenceNumber: 1,
      timestamp: 0,
      ssrc: 1,
      csrc: [],
      payload,
      ...fields,
    });

  it('round-trips CSRC entries and a header extension', () => {
    const header = {
      marker: true,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 0xdeadbeef,
      csrc: [7, 0xffffffff],
    };
    const packet = decodeRtp(
      wire({ ...header, extension: { profile: 0xbede, data: Buffer.from([9, 9, 9, 9]) } }),
    )!;
    expect(packet).toMatchObject({ payloadType: 0, ...header });
    expect([...packet.extension!.data]).toEqual([9, 9, 9, 9]);
    expect([...packet.payload]).toEqual([...payload]);
  });

  it('a packet without CSRC decodes with an empty list, each packet independent of the others', () => {
    const [a, b] = [decodeRtp(wire({ sequenceNumber: 1 }))!, decodeRtp(wire({ sequenceNumber: 2 }))!];
    expect(a.csrc).toEqual([]);
    expect([a.sequenceNumber, b.sequenceNumber]).toEqual([1, 2]);
    // The empty list is shared, so nobody may add to it.
    expect(() => (a.csrc as number[]).push(5)).toThrow(TypeError);
    expect(b.csrc).toEqual([]);
  });

  it('refuses a header shorter than its CSRC count says', () => {
    expect(decodeRtp(wire({ csrc: [1, 2] }).subarray(0, 16))).toBeUndefined();
  });

  it('stampRtpHeader rewrites a packet in place; timestamp and SSRC above 2^31 may come signed', () => {
    const packet = encodeRtp({
      payloadType: 8,
      marker: true,
      sequenceNumber: 0xffff,
      timestamp: 0xffffffff,
      ssrc: 0xffffffff,
      csrc: [],
      payload: Buffer.alloc(160, 0x55),
    });
    stampRtpHeader(packet, 0, false, 0x1234, 0xdeadbeef | 0, 0x80000001 | 0);
    expect(decodeRtp(packet)).toMatchObject({
      payloadType: 0,
      marker: false,
      sequenceNumber: 0x1234,
      timestamp: 0xdeadbeef,
      ssrc: 0x80000001,
      payload: Buffer.alloc(160, 0x55),
    });
    stampRtpHeader(packet, 0, true, 7, 160, 1);
    expect(decodeRtp(packet)).toMatchObject({ marker: true, sequenceNumber: 7, timestamp: 160, ssrc: 1 });
  });
});
