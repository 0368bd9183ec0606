import { describe, expect, it } from 'vitest';
import { JitterBuffer } from '../src/media/jitter-buffer.js';

/** A µ-law frame whose bytes all carry `id`, so the output order can be read back. */
function frame(id: number): Uint8Array {
  return new Uint8Array(160).fill(id);
}

/** What a concealed frame carries: µ-law silence. */
const SILENCE = 0xff;

function collector(depth = 3, maxWaitMs?: number) {
  const out: number[] = [];
  let waiter: { count: number; resolve: () => void } | undefined;
  const buffer = new JitterBuffer({
    depth,
    ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
    onFrame: (ulaw) => {
      out.push(ulaw[0]!);
      if (waiter && out.length >= waiter.count) waiter.resolve();
    },
  });
  const waitFor = (count: number): Promise<void> =>
    out.length >= count ? Promise.resolve() : new Promise((resolve) => (waiter = { count, resolve }));
  return { buffer, out, waitFor };
}

describe('JitterBuffer', () => {
  it('releases in-order frames at once', () => {
    const { buffer, out } = collector();
    expect(buffer.push(100, frame(1))).toBe('released');
    expect(buffer.push(101, frame(2))).toBe('released');
    expect(out).toEqual([1, 2]);
    expect(buffer.pendingCount).toBe(0);
  });

  it('puts out-of-order frames back in sequence order', () => {
    const { buffer, out } = collector();
    buffer.push(10, frame(10));
    expect(buffer.push(12, frame(12))).toBe('queued');
    expect(out).toEqual([10]);
    expect(buffer.push(11, frame(11))).toBe('released');
    buffer.push(14, frame(14));
    buffer.push(13, frame(13));
    expect(out).toEqual([10, 11, 12, 13, 14]);
    expect(buffer.stats.reordered).toBe(2);
    expect(buffer.stats.concealed).toBe(0);
  });

  it('follows the sequence number across the wrap from 65535 to 0', () => {
    const { buffer, out } = collector();
    buffer.push(65534, frame(1));
    buffer.push(0, frame(3));
    buffer.push(65535, frame(2));
    buffer.push(1, frame(4));
    buffer.push(2, frame(5));
    expect(out).toEqual([1, 2, 3, 4, 5]);
    expect(buffer.stats).toMatchObject({ late: 0, duplicates: 0, resyncs: 0, concealed: 0 });
  });

  it('drops duplicates, whether still queued or already released', () => {
    const { buffer, out } = collector();
    buffer.push(5, frame(5));
    buffer.push(7, frame(7));
    expect(buffer.push(7, frame(70))).toBe('duplicate');
    buffer.push(6, frame(6));
    expect(buffer.push(5, frame(50))).toBe('duplicate');
    expect(out).toEqual([5, 6, 7]);
    expect(buffer.stats.duplicates).toBe(2);
  });

  it('gives a hole up as silence once `depth` frames wait behind it, and drops it when it comes late', () => {
    const { buffer, out } = collector(3);
    buffer.push(1, frame(1));
    buffer.push(3, frame(3));
    buffer.push(4, frame(4));
    expect(out).toEqual([1]);
    buffer.push(5, frame(5));
    expect(out).toEqual([1, SILENCE, 3, 4, 5]);
    expect(buffer.push(2, frame(2))).toBe('late');
    expect(buffer.stats).toMatchObject({ concealed: 1, late: 1 });
  });

  it('gives a hole up after maxWaitMs when the stream pauses behind it', async () => {
    const { buffer, out, waitFor } = collector(3, 30);
    buffer.push(1, frame(1));
    buffer.push(3, frame(3));
    expect(out).toEqual([1]);
    await waitFor(3);
    expect(out).toEqual([1, SILENCE, 3]);
    buffer.close();
  });

  it('keeps the payloads it is given, and conceals with whole frames of µ-law silence', () => {
    const frames: Uint8Array[] = [];
    const buffer = new JitterBuffer({ depth: 1, onFrame: (ulaw) => frames.push(ulaw) });
    const a = frame(1);
    const c = frame(3);
    buffer.push(1, a);
    buffer.push(3, c);
    expect(frames.length).toBe(3);
    expect(frames[0]).toBe(a);
    expect(frames[2]).toBe(c);
    expect(frames[1]!.length).toBe(160);
    expect(frames[1]!.every((byte) => byte === SILENCE)).toBe(true);
  });

  it('reports, for each released frame, the arrival time of the packet that released it', () => {
    const released: [number, number][] = [];
    const buffer = new JitterBuffer({ onFrame: (ulaw, arrivedAt) => released.push([ulaw[0]!, arrivedAt]) });
    buffer.push(1, frame(1), 100);
    buffer.push(3, frame(3), 120);
    buffer.push(2, frame(2), 135); // releases 2 and the queued 3
    buffer.push(4, frame(4), 150);
    expect(released).toEqual([
      [1, 100],
      [2, 135],
      [3, 135],
      [4, 150],
    ]);
  });

  it('never inserts silence while the sender is merely quiet', () => {
    const { buffer, out } = collector();
    buffer.push(1, frame(1));
    buffer.push(2, frame(2));
    // A long pause (no packets), then the next number: nothing was missing.
    buffer.push(3, frame(3));
    expect(out).toEqual([1, 2, 3]);
    expect(buffer.stats.concealed).toBe(0);
  });

  it('treats a huge jump as a sender restart, not as thousands of lost frames', () => {
    const { buffer, out } = collector();
    buffer.push(1, frame(1));
    buffer.push(30000, frame(2));
    buffer.push(30001, frame(3));
    expect(out).toEqual([1, 2, 3]);
    expect(buffer.stats).toMatchObject({ resyncs: 1, concealed: 0 });
  });
});
