import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { AudioPlayer, type FirstPacketInfo, type FrameSink } from '../src/media/audio-player.js';
import { decodeMulaw, linearToMulaw } from '../src/media/g711.js';
import { type PacedStream, Pacer } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { decodeRtp, type RtpPacket } from '../src/media/rtp-packet.js';
import { RtpSession } from '../src/media/rtp-session.js';
import { tone } from '../src/media/tone.js';
import { SimulatedClock } from './support/simulated-clock.js';

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

// A pacer of its own by default: other test files' streams cannot interfere (files run in separate
// forks anyway).
async function setup(pacer = new Pacer()) {
  const rx = await receiver();
  const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
  session.setRemote('127.0.0.1', rx.port);
  const player = new AudioPlayer({ sink: session, pacer });
  cleanups.push(() => session.close());
  cleanups.push(() => player.close());
  return { rx, session, pacer, player };
}

/** Resolves after the pacer's next tick. */
function nextTick(pacer: Pacer): Promise<void> {
  return new Promise((resolve) => {
    const off = pacer.observe(() => {
      off();
      resolve();
    });
  });
}

/** 8 kHz µ-law bytes that differ from one another, so a lost, doubled or reordered byte shows. */
function ulawPattern(samples: number): Uint8Array {
  return Uint8Array.from({ length: samples }, (_, i) => (i * 37 + (i >> 8)) & 0xff);
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

describe('AudioPlayer µ-law playback', () => {
  it('streamUlaw sends the written bytes as they are, the last frame padded with 0xFF', async () => {
    const { rx, session, player } = await setup();
    const bytes = ulawPattern(407);
    const stream = player.streamUlaw();
    // Pieces that do not line up with frames: frames are cut across them.
    stream.write(bytes.subarray(0, 100));
    stream.write(Buffer.from(bytes.subarray(100, 350)));
    stream.write(bytes.subarray(350));
    stream.end();
    expect(await stream.done).toBe('finished');
    await rx.waitFor(3);
    expect(rx.packets.length).toBe(3);
    const wire = Buffer.concat(rx.packets.map((p) => p.payload));
    const expected = Buffer.concat([Buffer.from(bytes), Buffer.alloc(480 - 407, 0xff)]);
    expect(wire.equals(expected)).toBe(true);
    expect(rx.packets.map((p) => p.marker)).toEqual([true, false, false]);
    expect(stream.sentSamples).toBe(407);
    expect(session.stats.sent).toBe(3);
  });

  it('PCM and µ-law plays queued back to back form one talkspurt (one marker bit)', async () => {
    const { rx, player } = await setup();
    const ulaw = new Uint8Array(160 * 2).fill(0x42);
    const plays = [
      player.play(marked(1000, 160 * 2)),
      player.playUlaw(ulaw),
      player.play(marked(-1000, 160 * 2)),
    ];
    expect(await Promise.all(plays)).toEqual(['finished', 'finished', 'finished']);
    await rx.waitFor(6);
    expect(rx.packets.map((p) => p.payload[0])).toEqual([
      linearToMulaw(1000),
      linearToMulaw(1000),
      0x42,
      0x42,
      linearToMulaw(-1000),
      linearToMulaw(-1000),
    ]);
    expect(rx.packets.filter((p) => p.marker).length).toBe(1);
    expect(rx.packets[0]!.marker).toBe(true);
    for (let i = 1; i < rx.packets.length; i++) {
      const [prev, cur] = [rx.packets[i - 1]!, rx.packets[i]!];
      expect((cur.sequenceNumber - prev.sequenceNumber) & 0xffff).toBe(1);
      expect((cur.timestamp - prev.timestamp) >>> 0).toBe(160);
    }
  });

  it('stop() stops µ-law plays like PCM ones, and a µ-law writer of the stopped generation is refused', async () => {
    const { rx, session, player } = await setup();
    const stream = player.streamUlaw();
    stream.write(new Uint8Array(8000).fill(0x11));
    await rx.waitFor(3);
    const stopped = player.stop();
    const sentAtStop = session.stats.sent;
    await stopped;
    expect(await stream.done).toBe('stopped');
    expect(stream.write(new Uint8Array(160).fill(0x11))).toBe(false);
    await expect(player.playUlaw(new Uint8Array(160).fill(0x22))).resolves.toBe('finished');
    await rx.waitFor(sentAtStop + 1);
    expect(rx.packets.length).toBe(sentAtStop + 1);
    expect(rx.packets.at(-1)!.payload[0]).toBe(0x22);
  });
});

describe('AudioPlayer sentSamples', () => {
  it('counts exactly the samples of its playback that went out, and stops growing at stop()', async () => {
    const { rx, session, player } = await setup();
    const other = player.stream();
    other.write(marked(1, 100));
    other.end();
    await other.done;
    const sentBefore = session.stats.sent;
    expect(other.sentSamples).toBe(100); // the padding is not counted

    const stream = player.stream();
    expect(stream.sentSamples).toBe(0);
    stream.write(marked(7, 8000));
    await rx.waitFor(sentBefore + 4);
    const stopped = player.stop();
    // Right after stop() the count is final: every frame taken so far, none after.
    const atStop = stream.sentSamples;
    expect(atStop).toBe((session.stats.sent - sentBefore) * 160);
    expect(atStop).toBeGreaterThanOrEqual(4 * 160);
    await stopped;
    expect(await stream.done).toBe('stopped');
    // More ticks run (a later play) and the stopped playback's count does not move.
    await expect(player.play(marked(9, 160 * 3))).resolves.toBe('finished');
    expect(stream.sentSamples).toBe(atStop);
    expect(other.sentSamples).toBe(100);
  });

  it('counts frames the sink refused (no peer yet): they had their time on the clock', async () => {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    const player = new AudioPlayer({ sink: session, pacer: new Pacer() });
    cleanups.push(() => session.close());
    cleanups.push(() => player.close());
    const stream = player.streamUlaw();
    stream.write(new Uint8Array(400).fill(0x33));
    stream.end();
    expect(await stream.done).toBe('finished');
    expect(stream.sentSamples).toBe(400);
    expect(session.stats.sent).toBe(0);
  });
});

describe('AudioPlayer immediate first frame', () => {
  it('sends the first frame from play() while the clock runs for another call; the next one ≥ 10 ms later', async () => {
    const pacer = new Pacer();
    const other = await setup(pacer);
    const me = await setup(pacer);
    void other.player.play(tone(440, 3000));
    await other.rx.waitFor(2);
    const ticks: { idealMs: number; sent: number }[] = [];
    pacer.observe((t) => ticks.push({ idealMs: t.idealMs, sent: me.session.stats.sent }));
    const firstPackets: FirstPacketInfo[] = [];
    me.player.onFirstPacket((info) => firstPackets.push(info));
    // Plays start at several points of the 20 ms period (a placement, not a race: the rule holds
    // wherever they land): the next tick is then due in about 18, 13, 8 and 3 ms.
    for (const [round, offset] of [2, 7, 12, 17].entries()) {
      await nextTick(pacer);
      await new Promise((resolve) => setTimeout(resolve, offset));
      const sentBefore = me.session.stats.sent;
      const ticksBefore = pacer.stats.ticks;
      const firstTickAfter = ticks.length;
      const t0 = performance.now();
      const done = me.player.play(marked(100 + round, 160 * 3));
      const t1 = performance.now();
      // Sent synchronously, before any tick ran, and reported as this play's first packet.
      expect(me.session.stats.sent).toBe(sentBefore + 1);
      expect(pacer.stats.ticks).toBe(ticksBefore);
      expect(firstPackets.length).toBe(round + 1);
      expect(firstPackets[round]!.sentAt).toBeGreaterThanOrEqual(t0);
      expect(firstPackets[round]!.sentAt).toBeLessThanOrEqual(t1);
      expect(await done).toBe('finished');
      // The tick that sent the second frame was due at least 10 ms after the first frame went out
      // (which was at t0 or later); ticks never run before they are due.
      const second = ticks.slice(firstTickAfter).find((t) => t.sent >= sentBefore + 2)!;
      expect(second.idealMs - t0).toBeGreaterThanOrEqual(10);
    }
    await me.rx.waitFor(12);
    // Each play is a talkspurt of its own: a marker on its first (immediate) packet only.
    expect(me.rx.packets.map((p) => p.marker)).toEqual(Array.from({ length: 12 }, (_, i) => i % 3 === 0));
  });

  it('passes over the tick due within 10 ms of the immediate frame, and only that one', async () => {
    const clock = new SimulatedClock();
    const pacer = new Pacer({ clock, slots: 1 });
    const busy: PacedStream = { onTick: () => {} }; // another call keeps the clock running
    pacer.add(busy);
    clock.runUntil(1000); // tick due at 1000; the next ones at 1020, 1040…
    const { rx, session, player } = await setup(pacer);
    const sent = () => session.stats.sent;

    clock.runUntil(1015);
    const first = player.play(marked(1, 160 * 3));
    expect(sent()).toBe(1); // at 1015, off the clock
    const queued = player.playUlaw(new Uint8Array(160).fill(0x55));
    expect(sent()).toBe(1); // queued behind: waits for the clock
    clock.runUntil(1020);
    expect(sent()).toBe(1); // due 5 ms after the immediate frame: passed over
    clock.runUntil(1040);
    expect(sent()).toBe(2);
    clock.runUntil(1060);
    clock.runUntil(1080);
    expect(sent()).toBe(4);
    expect(await first).toBe('finished');
    expect(await queued).toBe('finished');

    clock.runUntil(1105);
    const second = player.play(marked(2, 160 * 2));
    expect(sent()).toBe(5); // at 1105
    clock.runUntil(1120);
    expect(sent()).toBe(6); // due 15 ms after it: sent
    expect(await second).toBe('finished');
    await rx.waitFor(6);
    expect(rx.packets.map((p) => p.marker)).toEqual([true, false, false, false, true, false]);
    pacer.remove(busy);
  });

  it('tells the sink when it runs dry (after the last frame queued, once) and when it closes', async () => {
    const clock = new SimulatedClock();
    const pacer = new Pacer({ clock, slots: 1 });
    const events: string[] = [];
    const frame = (): boolean => {
      events.push('frame');
      return true;
    };
    const sink: FrameSink = {
      sendFrame: frame,
      sendPayload: frame,
      sendPayloadAt: frame,
      warm: () => 0,
      idle: () => {
        events.push('idle');
      },
    };
    const player = new AudioPlayer({ sink, pacer });
    const first = player.playUlaw(new Uint8Array(160 * 3));
    const second = player.playUlaw(new Uint8Array(160 * 2)); // queued behind: the same talkspurt
    clock.runUntil(1040);
    expect(events).toEqual(['frame', 'frame', 'frame']); // not idle between frames
    clock.runUntil(2000);
    expect(await first).toBe('finished');
    expect(await second).toBe('finished');
    expect(events).toEqual(['frame', 'frame', 'frame', 'frame', 'frame', 'idle']);
    // One short frame, sent at once: the player is idle again right after it.
    expect(await player.playUlaw(new Uint8Array(100))).toBe('finished');
    expect(events.slice(6)).toEqual(['frame', 'idle']);
    player.close();
    expect(events.slice(8)).toEqual(['idle']);
  });

  it('on an idle clock, sends at once and passes over the clock’s first tick (due at once)', async () => {
    const clock = new SimulatedClock();
    const pacer = new Pacer({ clock, slots: 1 });
    const { session, player } = await setup(pacer);
    const done = player.play(marked(1, 160 * 3));
    expect(session.stats.sent).toBe(1);
    expect(pacer.running).toBe(true);
    clock.runUntil(1000);
    expect(session.stats.sent).toBe(1);
    clock.runUntil(1020);
    expect(session.stats.sent).toBe(2);
    clock.runUntil(1040);
    expect(session.stats.sent).toBe(3);
    expect(await done).toBe('finished');
    expect(pacer.running).toBe(false);
  });

  it('a play that follows the last frame within 10 ms waits for the clock: never two frames within 10 ms', async () => {
    const clock = new SimulatedClock();
    const pacer = new Pacer({ clock, slots: 1 });
    const { session, player } = await setup(pacer);
    // Shorter than a frame and ended: sent at once (padded), finished, the clock never started.
    await expect(player.play(marked(1, 100))).resolves.toBe('finished');
    expect(session.stats.sent).toBe(1);
    expect(pacer.running).toBe(false);
    clock.runUntil(1004);
    const next = player.play(marked(2, 160));
    expect(session.stats.sent).toBe(1);
    clock.runUntil(1004); // the clock's first tick, due at once: 4 ms after the last frame
    expect(session.stats.sent).toBe(1);
    clock.runUntil(1024);
    expect(session.stats.sent).toBe(2);
    expect(await next).toBe('finished');
    // After stop() with nothing queued, the player is idle again: the next play goes at once.
    await player.stop();
    clock.runUntil(1100);
    void player.playUlaw(new Uint8Array(160).fill(0x77));
    expect(session.stats.sent).toBe(3);
  });
});
