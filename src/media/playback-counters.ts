/**
 * The samples sent so far of each playback a media worker plays, in shared memory: the worker
 * stores a playback's count with every frame, the main thread reads it whenever
 * `PlaybackStream.sentSamples` is asked (a realtime model's `audio_end_ms` at barge-in).
 *
 * Why one table of slots rather than a SharedArrayBuffer per playback: the store comes with every
 * frame of every call, and at 500 calls a playback's own buffer (with its typed array and the tag
 * pointing at it) was three cache misses per frame (perf annotate of the media worker). Here a
 * frame's store goes to a table the worker touches for every call, 16 playbacks to a cache line.
 *
 * The main thread owns the slots: it takes one per playback and gives it back when the worker has
 * reported the playback done (after which the worker never writes to it again). The table grows
 * by chunks of {@link COUNTER_CHUNK_SLOTS}; a new chunk is sent to the worker ahead of the play
 * that uses it (see MediaCommand 'counters').
 */

/** Slots per chunk of the table: a slot's chunk is `slot >> COUNTER_CHUNK_SHIFT`. */
export const COUNTER_CHUNK_SHIFT = 10;
export const COUNTER_CHUNK_SLOTS = 1 << COUNTER_CHUNK_SHIFT;
const SLOT_MASK = COUNTER_CHUNK_SLOTS - 1;

/** The main thread's side: hands out slots and reads them. */
export class PlaybackCounters {
  readonly #chunks: Int32Array[] = [];
  /** Released slots, reused last in first out (the most recently used cache lines first). */
  readonly #free: number[] = [];
  #inUse = 0;

  /**
   * Takes a slot, set to 0. `chunk` is the shared memory of a chunk this allocation added: the
   * worker must have it before it gets a play that uses the slot.
   */
  allocate(): { slot: number; chunk: SharedArrayBuffer | undefined } {
    let slot = this.#free.pop();
    let chunk: SharedArrayBuffer | undefined;
    if (slot === undefined) {
      const total = this.#chunks.length * COUNTER_CHUNK_SLOTS;
      chunk = new SharedArrayBuffer(COUNTER_CHUNK_SLOTS * 4);
      this.#chunks.push(new Int32Array(chunk));
      // Handed out lowest first, so a burst of new calls gets neighbouring slots.
      for (let s = total + COUNTER_CHUNK_SLOTS - 1; s > total; s--) this.#free.push(s);
      slot = total;
    }
    this.#inUse++;
    Atomics.store(this.#chunks[slot >> COUNTER_CHUNK_SHIFT]!, slot & SLOT_MASK, 0);
    return { slot, chunk };
  }

  /** The samples the worker last stored in `slot`. */
  read(slot: number): number {
    return Atomics.load(this.#chunks[slot >> COUNTER_CHUNK_SHIFT]!, slot & SLOT_MASK);
  }

  /** Gives a slot back: only once the worker has reported its playback done. */
  release(slot: number): void {
    this.#inUse--;
    this.#free.push(slot);
  }

  /** Slots taken and not given back (tests check that none leak). */
  get inUse(): number {
    return this.#inUse;
  }
}

/** The worker's side: the chunks it was sent, and the store of a frame. */
export class PlaybackCounterTable {
  readonly #chunks: Int32Array[] = [];

  /** Adds the next chunk (chunks arrive in the order they were made). */
  add(chunk: SharedArrayBuffer): void {
    this.#chunks.push(new Int32Array(chunk));
  }

  /**
   * Stores a playback's samples sent. A plain store, not Atomics.store, which V8 compiles to a
   * call: it comes with every frame, and an aligned Int32Array element is written whole.
   */
  store(slot: number, samples: number): void {
    this.#chunks[slot >> COUNTER_CHUNK_SHIFT]![slot & SLOT_MASK] = samples;
  }
}
