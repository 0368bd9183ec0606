import { describe, expect, it } from 'vitest';
import { PacketRing, wordsOf } from '../src/media/packet-ring.js';

describe('PacketRing', () => {
  it('hands its packets out round robin, each of the size asked, with the RTP version set', () => {
    const ring = new PacketRing(3, 172);
    const [a, b, c] = [ring.take(), ring.take(), ring.take()];
    expect(new Set([a, b, c]).size).toBe(3);
    for (const packet of [a, b, c]) {
      expect(packet.length).toBe(172);
      expect(packet[0]).toBe(0x80);
    }
    expect(ring.take()).toBe(a);
    expect(ring.take()).toBe(b);
    expect(ring.packetSize).toBe(172);
  });

  it('keepLast(): the packet last taken is never handed out again (a send queued it), a new one takes its place', () => {
    const ring = new PacketRing(2, 172);
    const a = ring.take();
    const b = ring.take();
    ring.keepLast();
    b.fill(0x55);
    expect(ring.take()).toBe(a);
    const replacement = ring.take();
    expect(replacement).not.toBe(b);
    expect(replacement.length).toBe(172);
    expect(replacement[0]).toBe(0x80);
    expect(b.every((byte) => byte === 0x55)).toBe(true);
    // The first of a ring wraps too.
    ring.take();
    ring.keepLast();
    expect(ring.take()).toBe(replacement);
    expect(ring.take()).not.toBe(a);
  });

  it('takeWith(): copies the payload from the source, word by word where aligned, through a view where not', () => {
    const ring = new PacketRing(4, 172, 12);
    const prompt = new Uint8Array(new SharedArrayBuffer(1000)).map((_, i) => (i * 7 + 3) & 0xff);
    // Aligned (a prompt in its own buffer, frames 160 bytes apart), then at an odd offset.
    for (const offset of [0, 160, 480, 3, 161]) {
      const packet = ring.takeWith(prompt, offset, wordsOf(prompt.buffer));
      expect(Array.from(packet.subarray(12))).toEqual(Array.from(prompt.subarray(offset, offset + 160)));
      expect(packet[0]).toBe(0x80);
    }
    // A view that starts inside its buffer, and a second source buffer after the first.
    const other = new Uint8Array(800).map((_, i) => (i * 11 + 5) & 0xff);
    for (const source of [other.subarray(4), other.subarray(2), prompt.subarray(320)]) {
      const packet = ring.takeWith(source, 160, wordsOf(source.buffer));
      expect(Array.from(packet.subarray(12))).toEqual(Array.from(source.subarray(160, 320)));
    }
    // A packet replaced by keepLast() is filled as well.
    ring.keepLast();
    ring.take();
    ring.take();
    ring.take();
    const replaced = ring.takeWith(prompt, 640, wordsOf(prompt.buffer));
    expect(Array.from(replaced.subarray(12))).toEqual(Array.from(prompt.subarray(640, 800)));
  });

  it('refuses sizes that are not whole 32-bit words', () => {
    expect(() => new PacketRing(2, 170, 12)).toThrow(RangeError);
    expect(() => new PacketRing(2, 172, 10)).toThrow(RangeError);
  });
});
