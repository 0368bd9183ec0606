import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { AudioPlayer } from '../src/media/audio-player.js';
import { decodeMulaw, linearToMulaw } from '../src/media/g711.js';
import { Pacer } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { decodeRtp, type RtpPacket } from '../src/media/rtp-packet.js';
import { RtpSession } from '../src/media/rtp-session.js';
import { tone } from '../src/media/tone.js';

const base = 20000 + Math.floor(Math.random() * 10000);
const allocator = new PortAllocator({ min: base, max: base + 50 });
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver socket (Asterisk's side) that records packets and can wait for a count. */
async function receiver(): Promise<{
  port: number;
  packets: RtpPacket[];
  waitFor: (n: number) => Promise<void>;
}> {
  const socket: Socket = createSocket('udp4');
  const packets: RtpPacket[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  socket.on('message', (msg) => {
    const packet = decodeRtp(msg);
    if (!packet) return;
    packets.push(packet);
    for (const w of [...waiters]) {
      if (packets.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => socket.close());
  return {
    port: socket.address().port,
    packets,
    waitFor: (n) =>
      packets.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

async function setup() {
  const rx = await receiver();
  const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
  session.setRemote('127.0.0.1', rx.port);
  // A pacer of its own: other test files' streams cannot interfere (files run in separate forks anyway).
  const pacer = new Pacer();
  const player = new AudioPlayer({ sink: session, pacer });
  cleanups.push(() => session.close());
  cleanups.push(() => player.close());
  return { rx, session, pacer, player };
}

/** A constant-valued PCM buffer whose µ-law byte identifies it in received packets. */
function marked(value: number, samples: number): Int16Array {
  return new Int16Array(samples).fill(value);
}

describe('AudioPlayer', () => {
  it('sends a long play as ceil(samples/160) packets, +1 sequence, +160 timestamp, one SSRC', async () => {
    const { rx, session, player, pacer } = await setup();
    const samples = 8000 + 37; // 1 s and a bit: the last frame is padded
    const result = await player.play(tone(440, (samples * 1000) / 8000));
    expect(result).toBe('finished');
    const expected = Math.ceil(samples / 160);
    await rx.waitFor(expected);
    expect(rx.packets.length).toBe(expected);
    expect(session.stats.sent).toBe(expected);
    expect(new Set(rx.packets.map((p) => p.ssrc))).toEqual(new Set([session.ssrc]));
    for (let i = 1; i < rx.packets.length; i++) {
      const [prev, cur] = [rx.packets[i - 1]!, rx.packets[i]!];
      expect((cur.sequenceNumber - prev.sequenceNumber) & 0xffff).toBe(1);
      expect((cur.timestamp - prev.timestamp) >>> 0).toBe(160);
      expect(cur.marker).toBe(false);
      expect(cur.payload.length).toBe(160);
    }
    expect(rx.packets[0]!.marker).toBe(true);
    // The padding is silence and the audio is the tone, sample for sample (µ-law round trip).
    const last = decodeMulaw(rx.packets.at(-1)!.payload);
    expect(Array.from(last.subarray(37)).every((s) => s === 0)).toBe(true);
    expect(pacer.running).toBe(false);
  });

  it('stop() resolves pending plays as stopped and no frame of them is sent after it', async () => {
    const { rx, session, player } = await setup();
    const old = 1000;
    const fresh = -1000;
    const first = player.play(marked(old, 8000 * 2));
    const queued = player.play(marked(old, 8000));
    await rx.waitFor(5);
    const stopped = player.stop();
    const sentAtStop = session.stats.sent;
    const next = player.play(marked(fresh, 160 * 5));
    await stopped;
    expect(await first).toBe('stopped');
    expect(await queued).toBe('stopped');
    expect(await next).toBe('finished');
    await rx.waitFor(sentAtStop + 5);
    const oldByte = linearToMulaw(old);
    const oldPackets = rx.packets.filter((p) => p.payload[0] === oldByte).length;
    expect(oldPackets).toBe(sentAtStop);
    expect(rx.packets.length).toBe(sentAtStop + 5);
    // The new generation's frames all came after the old ones.
    expect(rx.packets.slice(sentAtStop).every((p) => p.payload[0] === linearToMulaw(fresh))).toBe(true);
    expect(player.generation).toBe(1);
  });

  it('a streaming writer of a stopped generation cannot refill the queue', async () => {
    const { rx, player } = await setup();
    const stream = player.stream();
    expect(stream.write(marked(500, 160 * 3))).toBe(true);
    await rx.waitFor(1);
    await player.stop();
    expect(await stream.done).toBe('stopped');
    expect(stream.write(marked(500, 160 * 50))).toBe(false);
    expect(player.playing).toBe(false);
  });

  it('streams frames as soon as 160 samples are there and finishes after end()', async () => {
    const { rx, player } = await setup();
    const stream = player.stream();
    stream.write(marked(100, 100));
    stream.write(marked(100, 100)); // 200 samples: one frame goes out, 40 wait
    await rx.waitFor(1);
    stream.write(marked(200, 120)); // 160 again
    await rx.waitFor(2);
    stream.write(marked(300, 10));
    stream.end();
    expect(await stream.done).toBe('finished');
    await rx.waitFor(3);
    expect(rx.packets.length).toBe(3);
    // Pauses between writes start new talkspurts (marker) with the timestamp moved on by the gap.
    expect(rx.packets[0]!.marker).toBe(true);
  });

  it('close() resolves every play as stopped and never rejects', async () => {
    const { rx, player } = await setup();
    const a = player.play(marked(1, 8000));
    const b = player.play(marked(2, 8000));
    await rx.waitFor(1);
    player.close();
    await expect(a).resolves.toBe('stopped');
    await expect(b).resolves.toBe('stopped');
    await expect(player.play(marked(3, 160))).resolves.toBe('stopped');
  });

  it('marks the first packet after a pause and advances the timestamp by the pause', async () => {
    const { rx, player } = await setup();
    await player.play(marked(10, 160 * 3));
    await rx.waitFor(3);
    const pauseStart = performance.now();
    // The pause itself is what is under test: there is no event to wait for, only time.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const pauseMs = performance.now() - pauseStart;
    await player.play(marked(20, 160 * 2));
    await rx.waitFor(5);
    const [p2, p3, p4] = [rx.packets[2]!, rx.packets[3]!, rx.packets[4]!];
    expect(p3.marker).toBe(true);
    expect(p4.marker).toBe(false);
    const jump = ((p3.timestamp - p2.timestamp) >>> 0) / 8; // ms
    expect(jump).toBeGreaterThanOrEqual(pauseMs - 25);
    expect(jump).toBeLessThanOrEqual(pauseMs + 45);
    expect((p3.sequenceNumber - p2.sequenceNumber) & 0xffff).toBe(1);
  });

  it('reports play() → first packet latency', async () => {
    const { rx, player } = await setup();
    const latencies: number[] = [];
    player.onFirstPacket((info) => latencies.push(info.latencyMs));
    await player.play(marked(1, 320));
    await player.play(marked(2, 160));
    await rx.waitFor(3);
    expect(latencies.length).toBe(2);
    for (const ms of latencies) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(100);
    }
  });

  it('an empty play finishes without sending anything', async () => {
    const { session, player } = await setup();
    await expect(player.play(new Int16Array(0))).resolves.toBe('finished');
    expect(session.stats.sent).toBe(0);
  });
});
