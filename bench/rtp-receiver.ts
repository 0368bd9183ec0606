/**
 * The receiving side of bench/rtp-pacing.ts, run in its own process (forked by it) so that the
 * sender's event loop does not distort the arrival times. One UDP socket with an enlarged receive
 * buffer takes every stream; packets are told apart by SSRC.
 *
 * For each stream it measures, on consecutive packets of one talkspurt (sequence +1, no marker):
 * - the deviation of the inter-arrival time from 20 ms, |Δarrival − 20 ms|;
 * - the RFC 3550 interarrival jitter estimate (J += (|D| − J) / 16, D against RTP timestamps).
 *
 * IPC: sends `{ type: 'ready', port, recvBufferSize }`, answers `{ type: 'report' }` with a
 * {@link ReceiverReport}.
 */

import { createSocket } from 'node:dgram';
import { decodeRtp } from '../src/media/rtp-packet.js';
import { atPercentile } from './support/bench-util.js';

/** What the receiver reports to the bench. */
export interface ReceiverReport {
  type: 'report';
  streams: number;
  received: number;
  /** Packets missing from each stream's sequence range, summed. */
  lost: number;
  /** Packets that arrived with a lower sequence number than one already seen. */
  reordered: number;
  /** Inter-arrival deviation from 20 ms, in ms. */
  deviation: { p50: number; p99: number; p999: number; max: number; samples: number };
  /** RFC 3550 jitter at the end of each stream, in ms: mean and max over streams. */
  rfc3550: { mean: number; max: number };
  recvBufferSize: number;
}

interface StreamState {
  first: number;
  highest: number;
  received: number;
  lastArrivalNs: bigint;
  lastSequence: number;
  lastTimestamp: number;
  jitterMs: number;
}

const FRAME_MS = 20;
const streams = new Map<number, StreamState>();
let deviations = new Float64Array(1 << 20);
let deviationCount = 0;
let received = 0;
let reordered = 0;

function recordDeviation(ms: number): void {
  if (deviationCount === deviations.length) {
    const bigger = new Float64Array(deviations.length * 2);
    bigger.set(deviations);
    deviations = bigger;
  }
  deviations[deviationCount++] = ms;
}

const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
socket.on('message', (datagram) => {
  const now = process.hrtime.bigint();
  const packet = decodeRtp(datagram);
  if (!packet) return;
  received++;
  const state = streams.get(packet.ssrc);
  if (!state) {
    streams.set(packet.ssrc, {
      first: packet.sequenceNumber,
      highest: packet.sequenceNumber,
      received: 1,
      lastArrivalNs: now,
      lastSequence: packet.sequenceNumber,
      lastTimestamp: packet.timestamp,
      jitterMs: 0,
    });
    return;
  }
  state.received++;
  // Unwrapped sequence number relative to the stream's first (streams here are shorter than 2^16 wraps).
  const delta = (packet.sequenceNumber - state.lastSequence) & 0xffff;
  if (delta === 0 || delta > 0x8000) {
    reordered++;
    return;
  }
  state.highest += delta;
  if (delta === 1 && !packet.marker) {
    const arrivalMs = Number(now - state.lastArrivalNs) / 1e6;
    recordDeviation(Math.abs(arrivalMs - FRAME_MS));
    const sentMs = ((packet.timestamp - state.lastTimestamp) >>> 0) / 8;
    state.jitterMs += (Math.abs(arrivalMs - sentMs) - state.jitterMs) / 16;
  }
  state.lastArrivalNs = now;
  state.lastSequence = packet.sequenceNumber;
  state.lastTimestamp = packet.timestamp;
});

function report(): ReceiverReport {
  const sorted = deviations.slice(0, deviationCount).sort();
  let lost = 0;
  const jitters: number[] = [];
  for (const s of streams.values()) {
    lost += s.highest - s.first + 1 - s.received;
    jitters.push(s.jitterMs);
  }
  return {
    type: 'report',
    streams: streams.size,
    received,
    lost,
    reordered,
    deviation: {
      p50: atPercentile(sorted, 0.5),
      p99: atPercentile(sorted, 0.99),
      p999: atPercentile(sorted, 0.999),
      max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
      samples: sorted.length,
    },
    rfc3550: {
      mean: jitters.reduce((a, b) => a + b, 0) / Math.max(1, jitters.length),
      max: Math.max(0, ...jitters),
    },
    recvBufferSize: socket.getRecvBufferSize(),
  };
}

process.on('message', (message: { type?: string }) => {
  if (message.type === 'report') {
    process.send?.(report());
    socket.close();
    process.disconnect?.();
  }
});

socket.bind(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: socket.address().port, recvBufferSize: socket.getRecvBufferSize() });
});
