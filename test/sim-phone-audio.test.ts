import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMulaw } from '../src/media/g711.js';
import { Simulator } from '../src/sandbox/simulator.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await Simulator.start({ timeScale: 0.05 });
  sim.addExtension('asteramisk-call', '4100', 1, 'Answer', '');
  sim.addExtension('asteramisk-call', '4100', 2, 'Wait', '30');
});

afterAll(async () => {
  await sim?.close();
});

describe('SimPhone heard audio', () => {
  it('keeps every byte heard, in order, across its storage chunks, for heard(), heardMs and waitForAudio', async () => {
    const phone = await sim.call({ from: 'alice', to: '4100' });
    // 5 s of frames (the phone keeps audio in 2 s chunks), plus a short odd frame between them,
    // each frame with its own byte pattern so that a lost, doubled or misplaced one shows.
    const frames: Buffer[] = [];
    for (let i = 0; i < 250; i++) {
      const size = i === 99 ? 37 : 160;
      frames.push(Buffer.from(Array.from({ length: size }, (_, j) => (i * 7 + j) & 0xff)));
    }
    const total = frames.reduce((n, f) => n + f.length, 0);
    const heardFourSeconds = phone.waitForAudio(4000);
    let resolvedEarly = false;
    void heardFourSeconds.then(() => {
      resolvedEarly = phone.heardMs < 4000;
    });
    for (const frame of frames) phone.deliver(frame);
    await heardFourSeconds;
    expect(resolvedEarly).toBe(false);
    expect(phone.heardMs).toBe(total / 8);
    const expected = decodeMulaw(Buffer.concat(frames));
    expect(phone.heard().audio).toEqual(expected);
    // Frames delivered later land after the first ones.
    const more = Buffer.alloc(160, 0x7e);
    phone.deliver(more);
    expect(phone.heard().audio.subarray(total)).toEqual(decodeMulaw(more));
    await phone.hangup();
  });
});
