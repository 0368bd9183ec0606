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
  readonly #size: number;
  #next = 0;

  /** `count` packets of `size` bytes (header and payload), each with the RTP version set. */
  constructor(count: number, size: number) {
    this.#size = size;
    // One block of memory: the packets sent one after the other are neighbours.
    const block = newPacket(count * size);
    this.#packets = Array.from({ length: count }, (_, i) => {
      const packet = block.subarray(i * size, (i + 1) * size);
      packet[0] = 0x80;
      return packet;
    });
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

  /** The packet last taken is still referenced (its send was queued): the ring replaces it. */
  keepLast(): void {
    const last = this.#next === 0 ? this.#packets.length - 1 : this.#next - 1;
    this.#packets[last] = newPacket(this.#size);
  }
}

/** Zeroed memory of its own (not a slice of Buffer's pool), the RTP version set. */
function newPacket(size: number): Buffer {
  const packet = Buffer.alloc(size);
  packet[0] = 0x80;
  return packet;
}
