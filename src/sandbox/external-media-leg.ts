import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { decodeRtp, encodeRtp, PT_PCMU } from '../media/rtp-packet.js';
import type { ChannelAudioSink } from './sim-model.js';

/** A pause in the audio longer than this makes the next packet carry the marker bit. */
const TALKSPURT_GAP_MS = 60;

/**
 * The UDP side of an externalMedia (UnicastRTP) channel, as chan_rtp does it: sends the bridge's
 * audio as RTP (PT 0, 160-byte µ-law payloads, one SSRC, sequence from a random start, timestamp
 * from 0, marker only on the first packet after a pause) to `external_host`, and hands RTP arriving
 * on its port back to the simulator. Packets are sent as audio arrives: with two bridge members
 * Asterisk sends nothing while the other side is silent.
 */
export class ExternalMediaLeg implements ChannelAudioSink {
  private socket?: Socket;
  private sequence = randomInt(0, 0x10000);
  private timestamp = 0;
  private readonly ssrc = randomInt(1, 0xffffffff);
  private lastSentAt = 0;
  private sentAny = false;
  /** Packets received, for tests and statistics. */
  received = 0;

  private constructor(
    private readonly remoteHost: string,
    private readonly remotePort: number,
  ) {}

  /** Binds a UDP port on `bindHost` and starts receiving. */
  static async open(
    bindHost: string,
    remoteHost: string,
    remotePort: number,
    onAudio: (payload: Buffer) => void,
  ): Promise<ExternalMediaLeg> {
    const leg = new ExternalMediaLeg(remoteHost, remotePort);
    const socket = createSocket('udp4');
    socket.on('message', (msg) => {
      const packet = decodeRtp(msg);
      if (!packet || packet.payload.length === 0) return;
      leg.received++;
      // A view of the datagram, which is this packet's own: whoever keeps audio copies it.
      onAudio(packet.payload);
    });
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, bindHost, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    leg.socket = socket;
    return leg;
  }

  get localAddress(): string {
    return this.socket?.address().address ?? '';
  }

  get localPort(): number {
    return this.socket?.address().port ?? 0;
  }

  deliver(frame: Buffer): void {
    if (!this.socket) return;
    const now = Date.now();
    const gap = this.sentAny ? now - this.lastSentAt : 0;
    const marker = this.sentAny && gap > TALKSPURT_GAP_MS;
    if (marker) this.timestamp += Math.round((gap - 20) * 8);
    const packet = encodeRtp({
      payloadType: PT_PCMU,
      marker,
      sequenceNumber: this.sequence,
      timestamp: this.timestamp,
      ssrc: this.ssrc,
      csrc: [],
      payload: frame,
    });
    this.sequence = (this.sequence + 1) & 0xffff;
    this.timestamp = (this.timestamp + frame.length) >>> 0;
    this.lastSentAt = now;
    this.sentAny = true;
    this.socket.send(packet, this.remotePort, this.remoteHost);
  }

  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    try {
      socket?.close();
    } catch {
      // already closed
    }
  }
}
