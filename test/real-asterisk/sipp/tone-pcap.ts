import { writeFileSync } from 'node:fs';
import { encodeMulaw } from '../../../src/media/g711.js';
import { encodeRtp, PT_PCMU } from '../../../src/media/rtp-packet.js';

/**
 * Writes a pcap of one RTP stream of PCMU audio, for sipp's `play_pcap_audio`: a sine tone of
 * `hz` for `ms` milliseconds, 20 ms per packet. sipp replays the packets with their capture
 * times and rewrites only the UDP ports, so the RTP header written here is what Asterisk gets.
 *
 *   npx tsx test/real-asterisk/sipp/tone-pcap.ts out.pcap [ms] [hz]
 */
export function writeTonePcap(path: string, options: { ms?: number; hz?: number; amplitude?: number } = {}) {
  const ms = options.ms ?? 2000;
  const hz = options.hz ?? 440;
  const amplitude = options.amplitude ?? 10000;
  const pcm = Int16Array.from({ length: Math.ceil(ms / 20) * 160 }, (_, i) =>
    Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / 8000)),
  );
  writeAudioPcap(path, pcm);
}

/** Writes a pcap of `pcm` (8 kHz) as one RTP stream of PCMU, 20 ms per packet (the last padded with silence). */
export function writeAudioPcap(path: string, pcm: Int16Array) {
  const frames = Math.ceil(pcm.length / 160);
  const ssrc = 0x5a5a0001;
  const records: Buffer[] = [pcapFileHeader()];
  for (let f = 0; f < frames; f++) {
    const frame = new Int16Array(160);
    frame.set(pcm.subarray(f * 160, Math.min(pcm.length, (f + 1) * 160)));
    const rtp = encodeRtp({
      payloadType: PT_PCMU,
      marker: f === 0,
      sequenceNumber: 1000 + f,
      timestamp: 8000 + f * 160,
      ssrc,
      csrc: [],
      payload: encodeMulaw(frame),
    });
    records.push(pcapRecord(f * 20_000, udpInIpInEthernet(rtp)));
  }
  writeFileSync(path, Buffer.concat(records));
}

/** libpcap file header: microsecond timestamps, Ethernet link type. */
function pcapFileHeader(): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(65535, 16); // snaplen
  b.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  return b;
}

function pcapRecord(offsetUs: number, frame: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(Math.floor(offsetUs / 1e6), 0);
  b.writeUInt32LE(offsetUs % 1e6, 4);
  b.writeUInt32LE(frame.length, 8);
  b.writeUInt32LE(frame.length, 12);
  return Buffer.concat([b, frame]);
}

/**
 * Wraps an RTP datagram as Ethernet/IPv4/UDP, 127.0.0.1:6000 → 127.0.0.1:6000. sipp replaces
 * the ports (and addresses) and recomputes the UDP checksum; the IP header is dropped.
 */
function udpInIpInEthernet(payload: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64; // TTL
  ip[9] = 17; // UDP
  ip.writeUInt32BE(0x7f000001, 12);
  ip.writeUInt32BE(0x7f000001, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(6000, 0);
  udp.writeUInt16BE(6000, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [path, ms, hz] = process.argv.slice(2);
  if (!path) throw new Error('usage: tone-pcap.ts out.pcap [ms] [hz]');
  writeTonePcap(path, { ms: Number(ms ?? 2000), hz: Number(hz ?? 440) });
}
