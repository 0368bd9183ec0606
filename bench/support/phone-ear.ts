import type { SimPhone } from '../../src/sandbox/sim-phone.js';
import { delay } from './bench-util.js';

/**
 * When audio frames reach a simulated phone: the first and last arrival, and a waiter for the
 * next one. Bench-only instrumentation: it wraps the phone's audio sink (`deliver`, which the PBX
 * calls synchronously for each 20 ms frame coming out of the call's bridge, i.e. as the RTP packet
 * from the app is read off the externalMedia leg's socket).
 */
export class Ear {
  frames = 0;
  firstFrameAt = 0;
  lastFrameAt = 0;
  private next?: (at: number) => void;

  constructor(phone: SimPhone) {
    const deliver = phone.deliver.bind(phone);
    phone.deliver = (frame: Buffer) => {
      const at = performance.now();
      if (this.frames++ === 0) this.firstFrameAt = at;
      this.lastFrameAt = at;
      const next = this.next;
      this.next = undefined;
      next?.(at);
      deliver(frame);
    };
  }

  /** Resolves with the arrival time (performance.now()) of the next frame. */
  nextFrame(): Promise<number> {
    return new Promise((resolve) => {
      this.next = resolve;
    });
  }

  /**
   * Resolves true once a frame came after the first `afterFrames` frames and then nothing for
   * `quietMs` (what was being said has ended); false at `deadline` (performance.now() time).
   */
  async quiet(afterFrames: number, quietMs: number, deadline: number): Promise<boolean> {
    while (performance.now() < deadline) {
      const since = performance.now() - this.lastFrameAt;
      if (this.frames > afterFrames && since >= quietMs) return true;
      await delay(this.frames > afterFrames ? quietMs - since : 20);
    }
    return false;
  }
}
