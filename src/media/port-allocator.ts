import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { ConfigError, ResourceExhaustedError } from '../errors.js';

/** Options of {@link PortAllocator}. */
export interface PortAllocatorOptions {
  /** Lowest port of the range (config `rtpPortMin`, env `RTP_PORT_MIN`). */
  min: number;
  /** Highest port of the range, inclusive (config `rtpPortMax`, env `RTP_PORT_MAX`). */
  max: number;
}

/** A UDP socket bound on a port of the range. Closing the socket gives the port back. */
export interface AllocatedPort {
  readonly port: number;
  readonly address: string;
  /** The bound socket; the port returns to the allocator when it closes. */
  readonly socket: Socket;
}

/**
 * Hands out UDP ports of the RTP range, one bound socket per call. A port counts as free only once
 * a bind on it succeeded: a port another process (or another allocator) holds is skipped, not
 * assumed free. Ports are tried round-robin from after the last one handed out, so a port just
 * released is reused last and stray packets of the previous call are unlikely to reach the next one.
 */
export class PortAllocator {
  readonly min: number;
  readonly max: number;
  /** Ports handed out (socket open) or being bound right now. */
  readonly #taken = new Set<number>();
  #next: number;

  /** @throws {ConfigError} when the range is not 1 ≤ min ≤ max ≤ 65535. */
  constructor(options: PortAllocatorOptions) {
    const { min, max } = options;
    if (!Number.isInteger(min) || min < 1 || min > 65535)
      throw new ConfigError('rtpPortMin', `RTP port range start ${min} must be an integer from 1 to 65535`);
    if (!Number.isInteger(max) || max < min || max > 65535)
      throw new ConfigError(
        'rtpPortMax',
        `RTP port range end ${max} must be an integer from ${min} to 65535`,
      );
    this.min = min;
    this.max = max;
    this.#next = min;
  }

  /** Number of ports in the range. */
  get capacity(): number {
    return this.max - this.min + 1;
  }

  /** Number of ports currently handed out by this allocator. */
  get inUse(): number {
    return this.#taken.size;
  }

  /** Whether this allocator currently holds `port`. */
  holds(port: number): boolean {
    return this.#taken.has(port);
  }

  /**
   * Binds a UDP socket on `address` (e.g. `127.0.0.1`, `0.0.0.0`, `::`) at the next free port.
   *
   * @throws {ResourceExhaustedError} when every port of the range is taken.
   * @throws {ConfigError} when `address` cannot be bound at all (not a local address).
   */
  async allocate(address: string): Promise<AllocatedPort> {
    for (let tried = 0; tried < this.capacity; tried++) {
      const port = this.#next;
      this.#next = port >= this.max ? this.min : port + 1;
      if (this.#taken.has(port)) continue;
      // Reserved before the asynchronous bind, so two concurrent allocations never race for one port.
      this.#taken.add(port);
      let socket: Socket;
      try {
        socket = await bindUdp(address, port);
      } catch (error) {
        this.#taken.delete(port);
        const code = (error as NodeJS.ErrnoException).code;
        // In use by someone else (or not ours to take): try the next one.
        if (code === 'EADDRINUSE' || code === 'EACCES') continue;
        throw new ConfigError(
          'rtpBindAddress',
          `Cannot bind RTP sockets on ${address}: ${(error as Error).message}. ` +
            'Set RTP_BIND_ADDRESS to an address of this host (or 0.0.0.0).',
          { cause: error },
        );
      }
      socket.once('close', () => this.#taken.delete(port));
      return { port, address, socket };
    }
    throw new ResourceExhaustedError(
      `no free RTP port in ${this.min}-${this.max}; raise RTP_PORT_MAX or lower MAX_CONCURRENT_CALLS`,
    );
  }
}

/** Binds a new UDP socket exclusively (no sharing with cluster workers) and resolves once bound. */
function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({
      type: isIPv6(address) ? 'udp6' : 'udp4',
      reuseAddr: false,
      lookup: ipLookup,
    });
    const onError = (error: Error): void => {
      try {
        socket.close();
      } catch {
        // A socket whose bind failed may already count as closed.
      }
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** The last IP literal {@link ipLookup} answered, and its family. */
let lastLiteral: string | undefined;
let lastFamily = 0;

/**
 * dgram's address lookup for each send(): an IP literal (RTP always goes to one) is answered at
 * once, a name goes to dns.lookup. Node's default defers even an IP literal to the next tick, so
 * a pacer tick that sends 500 frames queued 500 callbacks and the datagrams left only after the
 * tick; answered synchronously, each send() hands its datagram to the kernel right away.
 */
function ipLookup(
  hostname: string,
  options: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  // Every packet of every call asks for the same peer: isIP's regular expressions ran once per
  // packet before this one-entry memo.
  if (hostname === lastLiteral) {
    callback(null, hostname, lastFamily);
    return;
  }
  const family = isIP(hostname);
  if (family !== 0) {
    lastLiteral = hostname;
    lastFamily = family;
    callback(null, hostname, family);
    return;
  }
  dnsLookup(hostname, options as never, callback as never);
}
