/**
 * Outbound RTP packets of one thread, reused round robin, for sends on connected sockets.
 *
 * Why: a fresh packet per send (Buffer.allocUnsafe) is a Buffer object plus an eighth of a kilobyte
 * of Buffer's pool, memory outside V8's heap that its collector accounts for: at 500 calls, 25 000
 * a second, and the media worker's GC threads ran major collections for it. A buffer of each
 * call's own, rewritten every 20 ms, was no better: it is out of the cache by then (three cache
 * misses per packet; measured slower). A ring of a few dozen packets shared by all calls is in
 * the cache whenever it comes round again.
 *
 * Reuse is safe because a send on a connected UDP socket completes within `socket.send()`: dgram
 * calls libuv's try-send at once and the kernel copies the datagram. Only when the kernel's buffer
 * is full does libuv queue the send, keeping the packet by reference; the caller then hands the
 * packet over with {@link PacketRing.keepLast} and the ring takes a new one in its place. Only
 * sends on connected sockets use the ring: an unconnected send goes through the socket's address
 * lookup first, which for a socket with dgram's default lookup answers a tick later.
 */
export class PacketRing {
  readonly #packets: Buffer[];
  /** Each packet's payload as 32-bit words (see takeWith); a packet replaced by keepLast gets its own. */
  readonly #payloadWords: Int32Array[];
  readonly #size: number;
  readonly #headerBytes: number;
  #next = 0;

  /**
   * `count` packets of `size` bytes (header and payload), each with the RTP version set; the
   * payload starts at `headerBytes` (default 12, the RTP header without CSRCs).
   */
  constructor(count: number, size: number, headerBytes = 12) {
    if (headerBytes % 4 !== 0 || size % 4 !== 0 || headerBytes > size)
      throw new RangeError(
        `a packet ring needs a header and a size in whole 32-bit words (got ${headerBytes}, ${size})`,
      );
    this.#size = size;
    this.#headerBytes = headerBytes;
    // One block of memory: the packets sent one after the other are neighbours.
    const block = newPacket(count * size);
    this.#packets = Array.from({ length: count }, (_, i) => {
      const packet = block.subarray(i * size, (i + 1) * size);
      packet[0] = 0x80;
      return packet;
    });
    this.#payloadWords = this.#packets.map((packet) => this.#wordsOf(packet));
  }

  /** The size of every packet of the ring. */
  get packetSize(): number {
    return this.#size;
  }

  /** The next packet to fill; its bytes are those of the packet sent `count` sends ago. */
  take(): Buffer {
    const packet = this.#packets[this.#next]!;
    this.#next = this.#next + 1 === this.#packets.length ? 0 : this.#next + 1;
    return packet;
  }

  /**
   * The next packet, its payload copied from `source`, starting at `offset` (the payload's size of
   * bytes; the caller checks they are there). No view of the source is made: where the bytes start
   * on a 32-bit boundary (a prompt in its own buffer, frames 160 bytes apart) they are copied word
   * by word from `sourceWords`, the caller's view of the whole of `source.buffer` as 32-bit words
   * (see {@link wordsOf}), else through a view. Why: a view per frame was the library's own
   * allocation per packet (dgram's send() allocates the rest, as for any sender), and the word copy
   * takes 31 ns against 75–105 ns for a view and TypedArray.set (2 million copies, Node 20).
   */
  takeWith(source: Uint8Array, offset: number, sourceWords: Int32Array<ArrayBufferLike>): Buffer {
    const index = this.#next;
    const packet = this.take();
    const words = this.#payloadWords[index]!;
    const start = source.byteOffset + offset;
    const from = start >> 2;
    if ((start & 3) === 0 && from + words.length <= sourceWords.length) {
      for (let i = 0; i < words.length; i++) words[i] = sourceWords[from + i]!;
    } else {
      packet.set(source.subarray(offset, offset + this.#size - this.#headerBytes), this.#headerBytes);
    }
    return packet;
  }

  /** The packet last taken is still referenced (its send was queued): the ring replaces it. */
  keepLast(): void {
    const last = this.#next === 0 ? this.#packets.length - 1 : this.#next - 1;
    const packet = newPacket(this.#size);
    this.#packets[last] = packet;
    this.#payloadWords[last] = this.#wordsOf(packet);
  }

  #wordsOf(packet: Buffer): Int32Array {
    // Buffer.alloc gives each block its own ArrayBuffer at offset 0, and every packet starts a
    // whole number of words into it: the payload is word aligned.
    return new Int32Array(
      packet.buffer,
      packet.byteOffset + this.#headerBytes,
      (this.#size - this.#headerBytes) / 4,
    );
  }
}

/** Zeroed memory of its own (not a slice of Buffer's pool), the RTP version set. */
function newPacket(size: number): Buffer {
  const packet = Buffer.alloc(size);
  packet[0] = 0x80;
  return packet;
}

/**
 * The whole of `buffer` as 32-bit words (its last 0–3 bytes left out), for {@link PacketRing.takeWith}.
 * A sender keeps it as long as it sends from that buffer: making it per frame would be an
 * allocation per packet.
 */
export function wordsOf(buffer: ArrayBufferLike): Int32Array<ArrayBufferLike> {
  return new Int32Array(buffer, 0, buffer.byteLength >> 2);
}
