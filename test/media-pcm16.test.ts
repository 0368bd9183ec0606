import { describe, expect, it } from 'vitest';
import { concatPcm, int16ToPcm16le, pcm16leToInt16 } from '../src/media/pcm16.js';

describe('16-bit PCM buffers', () => {
  it('reads samples at odd byte offsets and concatenates', () => {
    const bytes = Buffer.from([0xff, 0x01, 0x00, 0xff, 0xff]);
    expect(pcm16leToInt16(bytes.subarray(1))).toEqual(new Int16Array([1, -1]));
    expect(concatPcm([new Int16Array([1]), new Int16Array([2, 3])])).toEqual(new Int16Array([1, 2, 3]));
  });

  it('writes little-endian bytes that read back the same', () => {
    const samples = new Int16Array([0, 1, -1, 32767, -32768]);
    const bytes = int16ToPcm16le(samples);
    expect([...bytes.subarray(0, 6)]).toEqual([0, 0, 1, 0, 0xff, 0xff]);
    expect(pcm16leToInt16(bytes)).toEqual(samples);
  });
});
