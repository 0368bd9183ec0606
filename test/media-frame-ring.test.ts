import { describe, expect, it } from 'vitest';
import { FrameRing } from '../src/media/frame-ring.js';

const frame = (fill: number, length = 160) => new Uint8Array(length).fill(fill);

function contents(ring: FrameRing): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  ring.forEach((bytes, arrivedAt, releasedAt) => {
    out.push([bytes[0]!, bytes.length, arrivedAt, releasedAt]);
  });
  return out;
}

describe('FrameRing', () => {
  it('keeps the last frames, oldest first, across the wrap', () => {
    const ring = new FrameRing(3);
    expect(contents(ring)).toEqual([]);
    for (let i = 1; i <= 5; i++) ring.push(frame(i), i * 20, i * 20 + 1);
    expect(ring.size).toBe(3);
    expect(contents(ring)).toEqual([
      [3, 160, 60, 61],
      [4, 160, 80, 81],
      [5, 160, 100, 101],
    ]);
  });

  it('keeps copies: the pushed array may be reused by its owner', () => {
    const ring = new FrameRing(2);
    const reused = frame(7);
    ring.push(reused, 0, 0);
    reused.fill(9);
    ring.push(reused, 20, 20);
    expect(contents(ring).map(([first]) => first)).toEqual([7, 9]);
  });

  it('takes a frame longer than 20 ms, and a shorter one after it, with their own lengths', () => {
    const ring = new FrameRing(1);
    ring.push(frame(1, 320), 0, 0);
    expect(contents(ring)).toEqual([[1, 320, 0, 0]]);
    ring.push(frame(2, 80), 20, 20);
    expect(contents(ring)).toEqual([[2, 80, 20, 20]]);
  });

  it('clear() forgets every frame; pushes after it start a new history', () => {
    const ring = new FrameRing(3);
    for (let i = 1; i <= 4; i++) ring.push(frame(i), i, i);
    ring.clear();
    expect(ring.size).toBe(0);
    expect(contents(ring)).toEqual([]);
    ring.push(frame(8), 8, 8);
    expect(contents(ring)).toEqual([[8, 160, 8, 8]]);
  });
});
