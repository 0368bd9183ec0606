import { randomInt } from 'node:crypto';
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { InvalidInputError } from '../errors.js';
import { childLogger, type Logger, silentLogger } from '../logger.js';
import { FRAME_MS, FRAME_SAMPLES } from './audio-frame.js';
import { alawToMulaw, decodeMulaw, encodeMulaw } from './g711.js';
import { JitterBuffer } from './jitter-buffer.js';
import { PacketRing, wordsOf } from './packet-ring.js';
import type { PortAllocator } from './port-allocator.js';
import {
  decodeRtp,
  encodeRtpFrame,
  PT_PCMA,
  PT_PCMU,
  RTP_HEADER_BYTES,
  stampRtpHeader,
} from './rtp-packet.js';

/** Options of {@link RtpSession.open}. */
export interface RtpSessionOptions {
  /** Where the port comes from. */
  allocator: PortAllocator;
  /** Local address to bind (config `rtpBindAddress`). */
  bindAddress: string;
  /** Frames of reordering tolerance of the inbound jitter buffer. Default 3. */
  jitterDepth?: number;
  /** Socket receive buffer in bytes (the OS caps it at net.core.rmem_max). Default: the OS default. */
  recvBufferSize?: number;
  logger?: Logger;
}

/** Counters of an {@link RtpSession}. */
export interface RtpSessionStats {
  /** RTP packets sent. */
  sent: number;
  /** Packets accepted from the remote address and handed to the jitter buffer. */
  received: number;
  /**
   * Datagrams dropped because they did not come from the announced remote address and port, as
   * read by the session: before the remote was known, and while the socket was not connected to it.
   * Once connected (see {@link RtpSession.setRemote}) the kernel drops them, uncounted.
   */
  droppedForeign: number;
  /** Datagrams from the remote that were not valid RTP. */
  malformed: number;
  /**
   * Reports that the peer's port was closed (ICMP port unreachable, heard on the connected socket):
   * the channel behind it hung up, or Asterisk is restarting. The session goes on sending.
   */
  unreachable: number;
  /** RTP packets of a payload type other than PCMU/PCMA (e.g. telephone-event), dropped. */
  unsupportedPayload: number;
  /** RTP packets whose payload is over {@link MAX_RTP_PAYLOAD_BYTES} (no G.711 frame is that long), dropped. */
  oversized: number;
  /**
   * Packets of an SSRC other than the stream's that were dropped: interleaved with the current
   * stream (a stray or spoofed source), or never sequential enough to be a new stream (see
   * {@link SSRC_PROBATION}).
   */
  wrongSsrc: number;
  /** Packets that arrived after their place in the stream had passed (dropped). */
  late: number;
  /** Packets received twice (dropped). */
  duplicates: number;
  /** Packets put back in order. */
  reordered: number;
  /** Silence frames inserted for lost packets. */
  concealed: number;
  /** Times the remote's SSRC changed and the new one was adopted (the jitter buffer restarts each time). */
  ssrcChanges: number;
  /**
   * Released frames decoded to PCM: once per frame while at least one {@link RtpSession.onAudio}
   * listener is registered, never otherwise.
   */
  decodedFrames: number;
}

/**
 * Largest payload accepted: 150 ms of G.711 (1 byte per sample at 8 kHz), the longest packetisation
 * Asterisk allows for µ-law and A-law. Anything longer (a 60 KB datagram) is not audio of this call.
 */
export const MAX_RTP_PAYLOAD_BYTES = 1200;

/**
 * Sequential packets a new SSRC must send, with no packet of the current SSRC in between, before
 * it replaces the current one (RFC 3550 A.1's probation, one packet longer). They are held, not
 * lost: adopted, they go to the jitter buffer in order.
 */
export const SSRC_PROBATION = 3;

/**
 * The least time (ms) over which those packets must have arrived. Asterisk switches SSRC when the
 * source behind the leg changes, and the old stream stops; the new one comes like any stream, a
 * packet every 20 ms, so 3 packets take 40 ms. Packets of another SSRC interleaved with a live
 * stream (a stray or spoofed source), or a burst of them, never qualify. Measured on arrival, so a
 * stall of this process (which bunches arrivals) can only delay a switch, never cause one.
 */
export const SSRC_PROBATION_SPAN_MS = 30;

/** Most packets of a candidate SSRC held in probation (the oldest go first). */
const MAX_HELD_PACKETS = 8;

/**
 * This thread's outbound packets of one 20 ms PCMU frame, for sessions whose socket is connected
 * to the peer (see packet-ring.ts): 64, more than one tick of the pacer sends in a burst.
 */
const sendRing = new PacketRing(64, RTP_HEADER_BYTES + FRAME_SAMPLES, RTP_HEADER_BYTES);

/** How a session sends (see RtpSession.#updateSendMode): not at all (no peer yet, or closed), */
const SEND_NONE = 0;
/** naming the peer in each send (until the socket is connected to it), */
const SEND_ADDRESSED = 1;
/** or on the socket connected to the peer. */
const SEND_CONNECTED = 2;
type SendMode = typeof SEND_NONE | typeof SEND_ADDRESSED | typeof SEND_CONNECTED;

/** A packet of an SSRC in probation, held until it is adopted or given up. */
interface HeldPacket {
  sequence: number;
  ulaw: Uint8Array;
  arrivedAt: number;
}

/** Listener of inbound audio: one 20 ms frame of 8 kHz PCM. */
export type AudioListener = (pcm: Int16Array) => void;

/**
 * Listener of inbound audio as it came on the wire: one 20 ms frame of 8 kHz µ-law (160 bytes),
 * and when the datagram that released it was received (performance.now()).
 */
export type PayloadListener = (ulaw: Uint8Array, arrivedAt: number) => void;

/** True for 0.0.0.0 and :: (an announced address that says "any of mine"). */
function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so an IPv4 peer seen on a dual-stack socket still matches. */
function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * Validates an RTP peer (see {@link RtpSession.setRemote}); returns the address normalised.
 *
 * @throws {InvalidInputError} for an address that is not an IP or a port out of range.
 */
export function checkRemote(address: string, port: number): string {
  const normalised = normaliseAddress(address);
  if (isIP(normalised) === 0) throw new InvalidInputError(`RTP remote address '${address}' is not an IP`);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new InvalidInputError(`RTP remote port '${port}' is not a UDP port`);
  return normalised;
}

/**
 * The RTP side of one call: one UDP socket on a port of the RTP range.
 *
 * Inbound, only datagrams from the address and port set with {@link setRemote} are accepted (the
 * source Asterisk announced in `UNICASTRTP_LOCAL_ADDRESS/PORT`; anyone else who finds the port is
 * ignored and counted), only valid RTP of PCMU/PCMA of at most {@link MAX_RTP_PAYLOAD_BYTES}, and
 * only of the stream's SSRC: another SSRC replaces it only after {@link SSRC_PROBATION} sequential
 * packets over {@link SSRC_PROBATION_SPAN_MS} with none of the current stream between. Everything
 * else is dropped and counted in {@link stats}; none of it reaches the listeners. The µ-law payloads (PCMA ones transcoded to µ-law by table, so the buffer
 * holds one encoding) are put in order by a {@link JitterBuffer}; each released frame goes as it
 * is to the {@link onPayload} listeners (a µ-law consumer such as a realtime model pays no codec
 * work) and, decoded once and shared, to the {@link onAudio} listeners. With no onAudio listener
 * nothing is decoded.
 *
 * Outbound, the session owns the RTP header: a random SSRC and initial sequence number and
 * timestamp (RFC 3550 §5.1), +1 / +160 per 20 ms frame, and on the first packet of a talkspurt
 * the marker bit with the timestamp advanced by the length of the pause before it.
 */
export class RtpSession {
  readonly #socket: Socket;
  readonly #port: number;
  readonly #address: string;
  readonly #logger: Logger;
  readonly #jitter: JitterBuffer;
  readonly #listeners = new Set<AudioListener>();
  readonly #payloadListeners = new Set<PayloadListener>();
  #remote: { address: string; port: number; anyAddress: boolean } | undefined;
  /** The peer the socket is connected to, or being connected to (see #connectTo). */
  #peer: { address: string; port: number; connected: boolean } | undefined;
  /** Whether the "peer unreachable" warning was logged: once per session, not 50 times a second. */
  #warnedUnreachable = false;
  #remoteSsrc: number | undefined;
  /** Another SSRC seen since the current one's last packet, in probation. */
  #candidate: { ssrc: number; packets: HeldPacket[] } | undefined;
  // Outbound state, read and written for every packet. Kept as small integers (V8 stores them in
  // the object itself; a number above 2^31 or a fraction would live in a heap box of its own) and
  // in fields of this object rather than in objects it points to: at 500 calls on the real clock
  // each object a packet touches is a cache miss (perf annotate of the media worker), and the
  // remote, the peer, their address strings and the counters were half of sendPayload's time.
  /** SEND_NONE, SEND_ADDRESSED or SEND_CONNECTED (see #updateSendMode). */
  #sendMode: SendMode = SEND_NONE;
  /** The SSRC as a signed 32-bit integer (see the `ssrc` getter). */
  readonly #ssrcBits = randomInt(1, 0xffffffff) | 0;
  /**
   * `| 0` although randomInt returns an integer: it computes it in floating point, and a field that
   * starts as such a number is kept as a heap box (perf: a cache miss per packet at 500 calls).
   */
  #sequence = randomInt(0, 0x10000) | 0;
  /** The RTP timestamp as a signed 32-bit integer: written to the header as it is, modulo 2^32. */
  #timestamp = randomInt(0, 0x100000000) | 0;
  #sent = 0;
  /**
   * When the current talkspurt's first packet went out (performance.now()), and the packets sent
   * since: the last packet's time is taken on the talkspurt's own 20 ms grid instead of being read
   * and stored with every packet (a clock read, and a heap number of its own that was a cache miss
   * per packet at 500 calls).
   */
  #spurtStartedAt: number | undefined;
  #spurtPackets = 0;
  /**
   * The buffer this session last sent from, and its view as 32-bit words (see PacketRing.takeWith),
   * kept per session: a prompt is sent frame by frame from one buffer, but each call's play reaches
   * the media worker in a message of its own, with a buffer object of its own, so a cache shared by
   * the sessions missed on every packet and made a view per packet. Dropped when the player goes
   * idle (see {@link idle}).
   */
  #sourceBuffer: ArrayBufferLike | undefined;
  #sourceWords: Int32Array<ArrayBufferLike> | undefined;
  #closed = false;
  readonly #closedPromise: Promise<void>;
  readonly #stats = {
    received: 0,
    droppedForeign: 0,
    malformed: 0,
    unreachable: 0,
    unsupportedPayload: 0,
    oversized: 0,
    wrongSsrc: 0,
    ssrcChanges: 0,
    decodedFrames: 0,
  };

  private constructor(socket: Socket, port: number, address: string, options: RtpSessionOptions) {
    this.#socket = socket;
    this.#port = port;
    this.#address = address;
    this.#logger = childLogger(options.logger ?? silentLogger, { component: 'rtp', rtpPort: port });
    this.#jitter = new JitterBuffer({
      onFrame: (ulaw, arrivedAt) => this.#deliver(ulaw, arrivedAt),
      ...(options.jitterDepth === undefined ? {} : { depth: options.jitterDepth }),
    });
    this.#closedPromise = new Promise((resolve) => socket.once('close', resolve));
    socket.on('message', (datagram, rinfo) => this.#onDatagram(datagram, rinfo));
    socket.on('error', (error) => this.#onSocketError(error));
  }

  /**
   * Allocates a port and opens a session on it.
   *
   * @throws {ResourceExhaustedError} when the port range is used up.
   */
  static async open(options: RtpSessionOptions): Promise<RtpSession> {
    const { socket, port, address } = await options.allocator.allocate(options.bindAddress);
    if (options.recvBufferSize !== undefined) {
      try {
        socket.setRecvBufferSize(options.recvBufferSize);
      } catch {
        // Best effort: the OS refuses sizes above its limit on some systems.
      }
    }
    return new RtpSession(socket, port, address, options);
  }

  /** The local UDP port (what `external_host` names). */
  get localPort(): number {
    return this.#port;
  }

  /** The local bind address. */
  get localAddress(): string {
    return this.#address;
  }

  /** The SSRC of the packets this session sends. */
  get ssrc(): number {
    return this.#ssrcBits >>> 0;
  }

  /** Where packets are sent to and accepted from, once set. */
  get remote(): { address: string; port: number } | undefined {
    return this.#remote && { address: this.#remote.address, port: this.#remote.port };
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Resolves once the socket is closed and the port is back in the allocator. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  /** A copy of the counters. */
  get stats(): RtpSessionStats {
    const j = this.#jitter.stats;
    return {
      sent: this.#sent,
      ...this.#stats,
      late: j.late,
      duplicates: j.duplicates,
      reordered: j.reordered,
      concealed: j.concealed,
    };
  }

  /**
   * Sets the peer: Asterisk's `UNICASTRTP_LOCAL_ADDRESS` and `UNICASTRTP_LOCAL_PORT`. From now on
   * packets go there, and only packets from there are accepted. An unspecified address (0.0.0.0,
   * ::) matches the port only and latches on the first source seen.
   *
   * @throws {InvalidInputError} for an address that is not an IP or a port out of range.
   */
  setRemote(address: string, port: number): void {
    const normalised = checkRemote(address, port);
    const anyAddress = isUnspecified(normalised);
    this.#remote = { address: normalised, port, anyAddress };
    if (!anyAddress) this.#connectTo(normalised, port);
    this.#updateSendMode();
  }

  /** How packets go out now: after any change of remote, peer or connection, and on close. */
  #updateSendMode(): void {
    const remote = this.#remote;
    const peer = this.#peer;
    if (this.#closed || !remote || remote.anyAddress) this.#sendMode = SEND_NONE;
    else if (peer?.connected && peer.address === remote.address && peer.port === remote.port)
      this.#sendMode = SEND_CONNECTED;
    else this.#sendMode = SEND_ADDRESSED;
  }

  /**
   * Connects the socket to the peer (a UDP connect: no packet is sent). Why: a connected socket
   * sends without naming the peer, so neither dgram nor the kernel resolves a route per packet
   * (bench/rtp-send-cost.ts: 4.7 → 3.9 µs a packet, as cheap as a naive sender of pre-encoded
   * packets), and the kernel itself drops datagrams of anyone else. Until the connect completes (the next tick), packets go out with the
   * address, as before. A new peer reconnects the socket; a failed connect (say, an IPv6 peer of an
   * IPv4 socket) leaves it unconnected, which changes nothing but the speed.
   */
  #connectTo(address: string, port: number): void {
    const peer = this.#peer;
    if (this.#closed || (peer?.address === address && peer.port === port)) return;
    // One connect at a time: a peer set while connecting is taken up when that connect completes.
    if (peer && !peer.connected) return;
    if (peer?.connected) {
      this.#socket.disconnect();
      this.#peer = undefined;
      this.#updateSendMode();
    }
    const next = { address, port, connected: false };
    this.#peer = next;
    const connected = (error?: Error) => {
      if (this.#peer !== next || this.#closed) return;
      if (error) {
        this.#peer = undefined;
        this.#updateSendMode();
        this.#logger.debug(
          { err: error.message },
          'RTP socket not connected to its peer; sending unconnected',
        );
        return;
      }
      next.connected = true;
      this.#updateSendMode();
      // setRemote called again while this connect ran: follow it.
      const remote = this.#remote;
      if (remote && !remote.anyAddress && (remote.address !== address || remote.port !== port))
        this.#connectTo(remote.address, remote.port);
    };
    try {
      this.#socket.connect(port, address, connected);
    } catch (error) {
      // A socket that stopped running underneath: sends fail the same way, unconnected.
      this.#peer = undefined;
      this.#updateSendMode();
      this.#logger.debug(
        { err: (error as Error).message },
        'RTP socket could not connect; sending unconnected',
      );
    }
  }

  #onSocketError(error: NodeJS.ErrnoException): void {
    // A connected socket hears of ICMP "port unreachable" (Asterisk hung up the channel, or
    // restarts) as an error for each packet that bounced; the call goes on, the next packet may
    // be heard. Counted, and logged once per session.
    if (error.code === 'ECONNREFUSED') {
      this.#stats.unreachable++;
      if (this.#warnedUnreachable) return;
      this.#warnedUnreachable = true;
      this.#logger.warn({ peer: this.remote }, 'RTP peer unreachable (its port is closed); sending on');
      return;
    }
    this.#logger.warn({ err: error.message }, 'RTP socket error');
  }

  /**
   * Adds a listener of inbound audio frames as PCM; returns a function that removes it. All PCM
   * listeners share one decoded array per frame: do not modify it.
   */
  onAudio(listener: AudioListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Adds a listener of inbound audio frames as µ-law (no decoding); returns a function that removes
   * it. The bytes may be a view of the received datagram, shared with other listeners: copy them to
   * modify or keep them beyond the call if that matters.
   */
  onPayload(listener: PayloadListener): () => void {
    this.#payloadListeners.add(listener);
    return () => {
      this.#payloadListeners.delete(listener);
    };
  }

  /**
   * Sends one frame of PCM (normally 160 samples) as a PCMU packet.
   *
   * @param startsTalkspurt true for the first frame after a pause (or the very first): sets the
   *   marker bit and advances the timestamp by the pause, measured on the monotonic clock.
   * @returns false when the session is closed or has no remote yet (nothing was sent).
   */
  sendFrame(pcm: Int16Array, startsTalkspurt: boolean): boolean {
    return this.sendPayload(encodeMulaw(pcm), startsTalkspurt);
  }

  /**
   * @internal Reads what the next {@link sendPayload} reads first (this object's send fields, and
   * through the send queue's count the socket and its native handle), so that a caller about to
   * send on many sessions brings them all into the cache together (see PacedStream.warm). Returns
   * a value only so that the reads are not optimized away.
   */
  warm(): number {
    return this.#sendMode === SEND_CONNECTED ? this.#spurtPackets + this.#socket.getSendQueueCount() : 0;
  }

  /**
   * Like {@link sendFrame}, for a frame already encoded as µ-law (one byte per sample): no codec
   * work (the bytes are copied once, into the packet).
   */
  sendPayload(ulaw: Uint8Array, startsTalkspurt: boolean): boolean {
    return this.#send(ulaw, 0, ulaw.length, startsTalkspurt);
  }

  /**
   * Like {@link sendPayload} for the µ-law frame (160 bytes) that starts at `offset` in `source`,
   * without a view of it: a player sends a cached prompt frame by frame from the prompt itself.
   *
   * @throws RangeError when `source` holds no whole frame at `offset`.
   */
  sendPayloadAt(source: Uint8Array, offset: number, startsTalkspurt: boolean): boolean {
    if (!(offset >= 0 && offset + FRAME_SAMPLES <= source.length))
      throw new RangeError(`no whole frame at offset ${offset} of ${source.length} bytes`);
    return this.#send(source, offset, FRAME_SAMPLES, startsTalkspurt);
  }

  /** Sends `samples` µ-law bytes of `source` from `offset` as the next packet. */
  #send(source: Uint8Array, offset: number, samples: number, startsTalkspurt: boolean): boolean {
    const mode = this.#sendMode;
    if (mode === SEND_NONE) return false;
    const spurtStartedAt = this.#spurtStartedAt;
    if (startsTalkspurt || spurtStartedAt === undefined) {
      const now = performance.now();
      if (spurtStartedAt !== undefined) {
        // After a pause the timestamp moves on by the pause's length too, so the receiver plays
        // the new talkspurt after a matching gap.
        const lastSentAt = spurtStartedAt + (this.#spurtPackets - 1) * FRAME_MS;
        const elapsedFrames = Math.round((now - lastSentAt) / FRAME_MS);
        this.#timestamp = (this.#timestamp + Math.max(1, elapsedFrames) * FRAME_SAMPLES) | 0;
      }
      this.#spurtStartedAt = now;
      this.#spurtPackets = 0;
    } else {
      // Continuous audio advances by exactly one frame.
      this.#timestamp = (this.#timestamp + samples) | 0;
    }
    this.#spurtPackets++;
    const sequence = this.#sequence;
    this.#sequence = (sequence + 1) & 0xffff;
    this.#sent++;
    if (mode === SEND_CONNECTED && RTP_HEADER_BYTES + samples === sendRing.packetSize) {
      const buffer = source.buffer;
      let words = this.#sourceWords;
      if (buffer !== this.#sourceBuffer || words === undefined) {
        words = wordsOf(buffer);
        this.#sourceWords = words;
        this.#sourceBuffer = buffer;
      }
      const packet = sendRing.takeWith(source, offset, words);
      stampRtpHeader(packet, PT_PCMU, startsTalkspurt, sequence, this.#timestamp, this.#ssrcBits);
      const socket = this.#socket;
      socket.send(packet);
      if (socket.getSendQueueCount() > 0) sendRing.keepLast();
      return true;
    }
    const payload =
      offset === 0 && samples === source.length ? source : source.subarray(offset, offset + samples);
    const packet = encodeRtpFrame(
      PT_PCMU,
      startsTalkspurt,
      sequence,
      this.#timestamp,
      this.#ssrcBits,
      payload,
    );
    if (mode === SEND_CONNECTED) this.#socket.send(packet);
    else this.#sendTo(packet, this.#remote!.address, this.#remote!.port);
    return true;
  }

  /** A send naming the peer: before the socket is connected to it, or when it cannot be. */
  #sendTo(packet: Buffer, address: string, port: number): void {
    try {
      this.#socket.send(packet, port, address);
    } catch (error) {
      // dgram marks the socket connected a tick before its connect callback runs: a packet sent in
      // between must go without the address. Should the socket still be connected to a previous
      // peer (a new one waits for the connect under way, see #connectTo), the packet is dropped
      // rather than sent there.
      if ((error as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_IS_CONNECTED') throw error;
      const peer = this.#peer;
      if (peer?.address === address && peer.port === port) this.#socket.send(packet);
    }
  }

  /**
   * Lets go of the view of the last buffer sent from: called by the player when it has nothing more
   * to send, so a finished prompt's memory is not kept alive by this session until its next play.
   */
  idle(): void {
    this.#sourceBuffer = undefined;
    this.#sourceWords = undefined;
  }

  /** Closes the socket (the port returns to the allocator), stops the jitter timer. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#sendMode = SEND_NONE;
      this.idle();
      this.#listeners.clear();
      this.#payloadListeners.clear();
      this.#candidate = undefined;
      this.#jitter.close();
      try {
        this.#socket.close();
      } catch {
        // Already closed underneath us (ERR_SOCKET_DGRAM_NOT_RUNNING): its 'close' event has fired.
      }
    }
    return this.#closedPromise;
  }

  #onDatagram(datagram: Buffer, rinfo: RemoteInfo): void {
    const arrivedAt = performance.now();
    if (this.#closed) return;
    const remote = this.#remote;
    const source = normaliseAddress(rinfo.address);
    if (!remote || rinfo.port !== remote.port || (!remote.anyAddress && source !== remote.address)) {
      this.#stats.droppedForeign++;
      return;
    }
    if (remote.anyAddress) {
      this.#remote = { address: source, port: remote.port, anyAddress: false };
      this.#connectTo(source, remote.port);
      this.#updateSendMode();
    }
    const packet = decodeRtp(datagram);
    if (!packet) {
      this.#stats.malformed++;
      return;
    }
    if (packet.payload.length > MAX_RTP_PAYLOAD_BYTES) {
      this.#stats.oversized++;
      return;
    }
    let ulaw: Uint8Array;
    if (packet.payloadType === PT_PCMU) ulaw = packet.payload;
    else if (packet.payloadType === PT_PCMA) ulaw = alawToMulaw(packet.payload);
    else {
      this.#stats.unsupportedPayload++;
      return;
    }
    if (ulaw.length === 0) return;
    this.#remoteSsrc ??= packet.ssrc;
    if (packet.ssrc !== this.#remoteSsrc) {
      this.#probation(packet.ssrc, { sequence: packet.sequenceNumber, ulaw, arrivedAt });
      return;
    }
    // The current stream is alive: a candidate that came meanwhile was interleaved with it.
    this.#dropCandidate();
    this.#stats.received++;
    this.#jitter.push(packet.sequenceNumber, ulaw, arrivedAt);
  }

  /** Holds a packet of another SSRC; adopts that SSRC once it qualifies (see {@link SSRC_PROBATION}). */
  #probation(ssrc: number, held: HeldPacket): void {
    let candidate = this.#candidate;
    const last = candidate?.packets.at(-1);
    if (candidate && (candidate.ssrc !== ssrc || !last || held.sequence !== ((last.sequence + 1) & 0xffff))) {
      this.#dropCandidate();
      candidate = undefined;
    }
    if (!candidate) {
      candidate = { ssrc, packets: [] };
      this.#candidate = candidate;
    }
    candidate.packets.push(held);
    if (candidate.packets.length > MAX_HELD_PACKETS) {
      candidate.packets.shift();
      this.#stats.wrongSsrc++;
    }
    const first = candidate.packets[0]!;
    if (
      candidate.packets.length < SSRC_PROBATION ||
      held.arrivedAt - first.arrivedAt < SSRC_PROBATION_SPAN_MS
    ) {
      return;
    }
    this.#candidate = undefined;
    // Asterisk changes SSRC when the source behind the leg changes (bridge technology switch, a
    // masquerade): its sequence numbers start elsewhere, so the buffer must start again.
    this.#stats.ssrcChanges++;
    this.#jitter.reset(first.arrivedAt);
    this.#remoteSsrc = ssrc;
    for (const packet of candidate.packets) {
      this.#stats.received++;
      this.#jitter.push(packet.sequence, packet.ulaw, packet.arrivedAt);
    }
  }

  /** Gives up the SSRC in probation, counting its held packets as dropped. */
  #dropCandidate(): void {
    const candidate = this.#candidate;
    if (!candidate) return;
    this.#stats.wrongSsrc += candidate.packets.length;
    this.#candidate = undefined;
  }

  /** Hands a released frame to the µ-law listeners, then (decoded once, if any) to the PCM ones. */
  #deliver(ulaw: Uint8Array, arrivedAt: number): void {
    for (const listener of this.#payloadListeners) {
      try {
        listener(ulaw, arrivedAt);
      } catch (error) {
        this.#listenerThrew(error);
      }
    }
    if (this.#listeners.size === 0) return;
    const pcm = decodeMulaw(ulaw);
    this.#stats.decodedFrames++;
    for (const listener of this.#listeners) {
      try {
        listener(pcm);
      } catch (error) {
        this.#listenerThrew(error);
      }
    }
  }

  /** One faulty consumer (an STT adapter) must not starve the others or break the socket loop. */
  #listenerThrew(error: unknown): void {
    this.#logger.error(
      { err: error instanceof Error ? error.message : String(error) },
      'An audio listener threw',
    );
  }
}
