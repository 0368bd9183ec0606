import { describe, expect, it } from 'vitest';
import { PacketRing } from '../src/media/packet-ring.js';

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
});
