/**
 * RTP pacing measured with the kernel's own timestamps: tcpdump captures the streams on the
 * loopback interface, where the kernel stamps each packet as it is transmitted, and the capture
 * file is read afterwards. Unlike a receiving process, whose JavaScript timestamp is taken when
 * its event loop gets round to each datagram (after the whole 20 ms burst of 500–1000 packets,
 * after its own GC), this sees when the sender really sent each packet.
 *
 * Needs tcpdump and the right to capture (root or CAP_NET_RAW); {@link startCapture} resolves to
 * `undefined` with the reason when either is missing, and the bench then reports the receiver's
 * figures alone.
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atPercentile } from './bench-util.js';

/** Pacing of the captured streams, as bench/rtp-receiver.ts reports it. */
export interface CaptureTiming {
  packets: number;
  streams: number;
  /** Packets the kernel could not hand to tcpdump (then the figures are incomplete). */
  droppedByKernel: number;
  /** |inter-transmit time − 20 ms| on consecutive packets of a talkspurt, in ms. */
  deviation: Percentiles;
  /**
   * The same after the first second of the capture: the steady state, without the start of
   * every stream at once (hundreds of first frames sent off the clock, the JIT warming up).
   */
  steady: Percentiles;
}

/** A distribution, in ms. */
export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
}

/** Where the steady state starts, from the first captured packet. */
const STEADY_AFTER_NS = 1_000_000_000n;

/** A running capture: stop it to read the timing. */
export interface Capture {
  stop(): Promise<CaptureTiming>;
}

/** Starts capturing UDP to `port` on loopback, or says why it cannot. */
export async function startCapture(port: number): Promise<Capture | { unavailable: string }> {
  const raw = await captureLoopback(`udp dst port ${port}`);
  if ('unavailable' in raw) return raw;
  return {
    async stop() {
      const { pcap, droppedByKernel } = await raw.stop();
      return { ...analyse(pcap), droppedByKernel };
    },
  };
}

/** A running capture of whatever a filter selects: stop it to get the pcap file's bytes. */
export interface RawCapture {
  stop(): Promise<{ pcap: Buffer; droppedByKernel: number }>;
}

/**
 * Starts tcpdump on loopback with a BPF `filter`, nanosecond timestamps and 64-byte snapshots
 * (Ethernet + IPv4 + UDP + the RTP header), or says why it cannot.
 */
export async function captureLoopback(filter: string): Promise<RawCapture | { unavailable: string }> {
  const probe = spawnSync('tcpdump', ['--version'], { encoding: 'utf8' });
  if (probe.error) return { unavailable: 'tcpdump is not installed (apt-get install tcpdump)' };
  const dir = mkdtempSync(join(tmpdir(), 'asteramisk-pcap-'));
  const file = join(dir, 'rtp.pcap');
  // -s 64: enough for Ethernet + IPv4 + UDP + the 12-byte RTP header; -B: a 64 MiB kernel buffer
  // so that 50k packets/s are not dropped while tcpdump writes; -U: no output buffering delay.
  const tcpdump = spawn(
    'tcpdump',
    ['-i', 'lo', '-n', '-s', '64', '-B', '65536', '--time-stamp-precision=nano', '-w', file, filter],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  tcpdump.stderr.setEncoding('utf8');
  const listening = new Promise<string | undefined>((resolve) => {
    tcpdump.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('listening on')) resolve(undefined);
    });
    tcpdump.once('exit', (code) => resolve(`tcpdump exited with ${code}: ${stderr.trim()}`));
  });
  const failure = await listening;
  if (failure) {
    rmSync(dir, { recursive: true, force: true });
    return { unavailable: failure };
  }
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => tcpdump.once('exit', () => resolve()));
      tcpdump.kill('SIGINT');
      await exited;
      const droppedByKernel = Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? 0);
      try {
        return { pcap: readFileSync(file), droppedByKernel };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** One captured UDP datagram over IPv4 on loopback: its kernel timestamp and ports. */
export interface CapturedDatagram {
  /** Kernel timestamp, ns since the epoch (CLOCK_REALTIME). */
  ns: bigint;
  sourcePort: number;
  destinationPort: number;
}

/** The datagrams of a nanosecond pcap of UDP over Ethernet/IPv4 (the loopback's link type). */
export function datagrams(pcap: Buffer): CapturedDatagram[] {
  if (pcap.length < 24 || pcap.readUInt32LE(0) !== 0xa1b23c4d) throw new Error('not a nanosecond pcap file');
  const out: CapturedDatagram[] = [];
  for (let at = 24; at + 16 <= pcap.length; ) {
    const ns = BigInt(pcap.readUInt32LE(at)) * 1_000_000_000n + BigInt(pcap.readUInt32LE(at + 4));
    const captured = pcap.readUInt32LE(at + 8);
    const frame = at + 16;
    at = frame + captured;
    const udp = frame + 14 + (pcap[frame + 14]! & 0x0f) * 4;
    if (udp + 4 > at) continue;
    out.push({ ns, sourcePort: pcap.readUInt16BE(udp), destinationPort: pcap.readUInt16BE(udp + 2) });
  }
  return out;
}

interface StreamState {
  lastNs: bigint;
  lastSequence: number;
}

/** Reads a nanosecond pcap of RTP over Ethernet/IPv4/UDP (the loopback's link type). */
export function analyse(pcap: Buffer): Omit<CaptureTiming, 'droppedByKernel'> {
  if (pcap.length < 24 || pcap.readUInt32LE(0) !== 0xa1b23c4d) throw new Error('not a nanosecond pcap file');
  const streams = new Map<number, StreamState>();
  const deviations: number[] = [];
  const steady: number[] = [];
  let first: bigint | undefined;
  let packets = 0;
  for (let at = 24; at + 16 <= pcap.length; ) {
    const ns = BigInt(pcap.readUInt32LE(at)) * 1_000_000_000n + BigInt(pcap.readUInt32LE(at + 4));
    const captured = pcap.readUInt32LE(at + 8);
    const frame = at + 16;
    at = frame + captured;
    const ip = frame + 14;
    const rtp = ip + (pcap[ip]! & 0x0f) * 4 + 8;
    if (rtp + 12 > at) continue;
    packets++;
    first ??= ns;
    const marker = (pcap[rtp + 1]! & 0x80) !== 0;
    const sequence = pcap.readUInt16BE(rtp + 2);
    const ssrc = pcap.readUInt32BE(rtp + 8);
    const state = streams.get(ssrc);
    if (!state) {
      streams.set(ssrc, { lastNs: ns, lastSequence: sequence });
      continue;
    }
    if (((sequence - state.lastSequence) & 0xffff) === 1 && !marker) {
      const deviation = Math.abs(Number(ns - state.lastNs) / 1e6 - 20);
      deviations.push(deviation);
      if (ns - first >= STEADY_AFTER_NS) steady.push(deviation);
    }
    state.lastNs = ns;
    state.lastSequence = sequence;
  }
  return { packets, streams: streams.size, deviation: percentiles(deviations), steady: percentiles(steady) };
}

function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: atPercentile(sorted, 0.5),
    p99: atPercentile(sorted, 0.99),
    p999: atPercentile(sorted, 0.999),
    max: atPercentile(sorted, 1),
    samples: sorted.length,
  };
}
