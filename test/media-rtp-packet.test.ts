import { describe, expect, it } from 'vitest';
import { decodeRtp, encodeRtp } from '../src/media/rtp-packet.js';

describe('RTP packet coding', () => {
  const payload = Buffer.from([1, 2, 3, 4, 5]);

  it('round-trips CSRC entries and a header extension', () => {
    const wire = encodeRtp({
      payloadType: 0,
      marker: true,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 0xdeadbeef,
      csrc: [7, 0xffffffff],
      extension: { profile: 0xbede, data: Buffer.from([9, 9, 9, 9]) },
      payload,
    });
    const packet = decodeRtp(wire)!;
    expect(packet).toMatchObject({
      payloadType: 0,
      marker: true,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 0xdeadbeef,
      csrc: [7, 0xffffffff],
    });
    expect([...packet.extension!.data]).toEqual([9, 9, 9, 9]);
    expect([...packet.payload]).toEqual([...payload]);
  });

  it('a packet without CSRC decodes with an empty list, each packet independent of the others', () => {
    const plain = (seq: number) =>
      decodeRtp(
        encodeRtp({
          payloadType: 0,
          marker: false,
          sequenceNumber: seq,
          timestamp: 0,
          ssrc: 1,
          csrc: [],
          payload,
        }),
      )!;
    const [a, b] = [plain(1), plain(2)];
    expect(a.csrc).toEqual([]);
    expect([a.sequenceNumber, b.sequenceNumber]).toEqual([1, 2]);
    // The empty list is shared, so nobody may add to it.
    expect(() => (a.csrc as number[]).push(5)).toThrow(TypeError);
    expect(b.csrc).toEqual([]);
  });

  it('refuses a header shorter than its CSRC count says', () => {
    const wire = encodeRtp({
      payloadType: 0,
      marker: false,
      sequenceNumber: 1,
      timestamp: 0,
      ssrc: 1,
      csrc: [1, 2],
      payload,
    });
    expect(decodeRtp(wire.subarray(0, 16))).toBeUndefined();
  });
});
