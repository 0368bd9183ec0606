/** One frame kept by a {@link FrameRing}. */
interface Kept {
  bytes: Uint8Array;
  length: number;
  arrivedAt: number;
  releasedAt: number;
}

/**
 * The last `capacity` frames of a stream, copied into buffers allocated once per slot: the media
 * worker keeps each leg's last 100 ms of caller audio while nobody listens (so a listener that
 * starts a moment later loses nothing), which is every inbound packet of a call that plays prompts
 * and takes keys. A copy and an object per packet was garbage at 50 packets a second per call.
 */
export class FrameRing {
  readonly #capacity: number;
  readonly #slots: Kept[] = [];
  /** Index of the slot the next push writes. */
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, Math.floor(capacity));
  }

  /** Frames kept now. */
  get size(): number {
    return this.#size;
  }

  /** Keeps a copy of `frame`, dropping the oldest when full. */
  push(frame: Uint8Array, arrivedAt: number, releasedAt: number): void {
    let slot = this.#slots[this.#next];
    if (!slot) {
      slot = { bytes: new Uint8Array(Math.max(160, frame.length)), length: 0, arrivedAt: 0, releasedAt: 0 };
      this.#slots[this.#next] = slot;
    } else if (slot.bytes.length < frame.length) {
      slot.bytes = new Uint8Array(frame.length);
    }
    slot.bytes.set(frame);
    slot.length = frame.length;
    slot.arrivedAt = arrivedAt;
    slot.releasedAt = releasedAt;
    this.#next = (this.#next + 1) % this.#capacity;
    if (this.#size < this.#capacity) this.#size++;
  }

  /**
   * Calls `fn` with each kept frame, oldest first. The bytes are a view of the ring's buffer,
   * valid until the next push: copy them to keep them.
   */
  forEach(fn: (frame: Uint8Array, arrivedAt: number, releasedAt: number) => void): void {
    const first = (this.#next - this.#size + this.#capacity) % this.#capacity;
    for (let i = 0; i < this.#size; i++) {
      const slot = this.#slots[(first + i) % this.#capacity]!;
      fn(slot.bytes.subarray(0, slot.length), slot.arrivedAt, slot.releasedAt);
    }
  }

  /** Forgets every frame (the buffers stay for the next pushes). */
  clear(): void {
    this.#size = 0;
    this.#next = 0;
  }
}
