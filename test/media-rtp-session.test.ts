import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { alawToLinear, decodeMulaw, linearToMulaw, mulawToLinear } from '../src/media/g711.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { decodeRtp, encodeRtp, PT_PCMA, PT_PCMU, type RtpPacket } from '../src/media/rtp-packet.js';
import { RtpSession } from '../src/media/rtp-session.js';

const base = 20000 + Math.floor(Math.random() * 10000);
const allocator = new PortAllocator({ min: base, max: base + 50 });
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A UDP peer playing Asterisk's side of the externalMedia leg. */
async function peer(address = '127.0.0.1'): Promise<{
  socket: Socket;
  port: number;
  received: RtpPacket[];
  send: (to: number, sequence: number, payloadByte: number, extra?: Partial<RtpPacket>) => Promise<void>;
}> {
  const socket = createSocket('udp4');
  const received: RtpPacket[] = [];
  socket.on('message', (msg) => {
    const packet = decodeRtp(msg);
    if (packet) received.push(packet);
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  cleanups.push(() => socket.close());
  const send = (to: number, sequence: number, payloadByte: number, extra: Partial<RtpPacket> = {}) =>
    new Promise<void>((resolve, reject) => {
      const packet = encodeRtp({
        payloadType: PT_PCMU,
        marker: false,
        sequenceNumber: sequence,
        timestamp: sequence * 160,
        ssrc: 0x1234,
        csrc: [],
        payload: Buffer.alloc(160, payloadByte),
        ...extra,
      });
      socket.send(packet, to, '127.0.0.1', (error) => (error ? reject(error) : resolve()));
    });
  return { socket, port: socket.address().port, received, send };
}

async function session(): Promise<RtpSession> {
  const s = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
  cleanups.push(() => s.close());
  return s;
}

/** Collects inbound frames (identified by their first sample) and waits for a count. */
function frames(s: RtpSession) {
  const out: number[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  s.onAudio((pcm) => {
    out.push(pcm[0]!);
    for (const w of [...waiters]) if (out.length >= w.count) w.resolve();
  });
  return {
    out,
    waitFor: (count: number) =>
      out.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
  };
}

/** Collects inbound frames as µ-law (with their arrival times) and waits for a count. */
function payloads(s: RtpSession) {
  const out: { ulaw: Uint8Array; arrivedAt: number }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  s.onPayload((ulaw, arrivedAt) => {
    out.push({ ulaw: Uint8Array.from(ulaw), arrivedAt });
    for (const w of [...waiters]) if (out.length >= w.count) w.resolve();
  });
  return {
    out,
    waitFor: (count: number) =>
      out.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
  };
}

/** 160 bytes that differ from one another and from packet to packet. */
function pattern(seed: number): Buffer {
  return Buffer.from(Array.from({ length: 160 }, (_, i) => (seed * 31 + i * 7) & 0xff));
}

describe('RtpSession inbound', () => {
  it('accepts only the announced address and port: the kernel drops the rest', async () => {
    const s = await session();
    const asterisk = await peer();
    const otherPort = await peer();
    const otherAddress = await peer('127.0.0.2');
    s.setRemote('127.0.0.1', asterisk.port);
    const got = frames(s);
    await otherPort.send(s.localPort, 1, 0x10);
    await otherAddress.send(s.localPort, 2, 0x20);
    await asterisk.send(s.localPort, 3, 0x30);
    await got.waitFor(1);
    expect(got.out).toEqual([mulawToLinear(0x30)]);
    // The socket is connected to the peer: the other two never reach the session (were they
    // read, droppedForeign would count them).
    expect(s.stats).toMatchObject({ received: 1, droppedForeign: 0 });
  });

  it('drops everything before the remote is known', async () => {
    const s = await session();
    const asterisk = await peer();
    const got = frames(s);
    await asterisk.send(s.localPort, 1, 0x10);
    // No event marks a dropped datagram: poll the counter until the socket has read it.
    await vi.waitFor(() => expect(s.stats.droppedForeign).toBe(1), { timeout: 2000, interval: 5 });
    s.setRemote('127.0.0.1', asterisk.port);
    await asterisk.send(s.localPort, 2, 0x20);
    await got.waitFor(1);
    expect(got.out).toEqual([mulawToLinear(0x20)]);
    expect(s.stats.droppedForeign).toBe(1);
  });

  it('reorders, survives the 65535 → 0 wrap and drops duplicates end to end', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = frames(s);
    const order: [number, number][] = [
      [65534, 0x01],
      [0, 0x03],
      [65535, 0x02],
      [65535, 0x02],
      [1, 0x04],
      [3, 0x06],
      [2, 0x05],
    ];
    for (const [sequence, byte] of order) await asterisk.send(s.localPort, sequence, byte);
    await got.waitFor(6);
    expect(got.out).toEqual([0x01, 0x02, 0x03, 0x04, 0x05, 0x06].map(mulawToLinear));
    expect(s.stats).toMatchObject({ received: 7, duplicates: 1, reordered: 2, concealed: 0 });
  });

  it('counts malformed datagrams and foreign payload types without delivering them', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = frames(s);
    await new Promise<void>((resolve) =>
      asterisk.socket.send(Buffer.from('hello'), s.localPort, '127.0.0.1', () => resolve()),
    );
    await asterisk.send(s.localPort, 1, 0x10, { payloadType: 101 });
    await asterisk.send(s.localPort, 2, 0x20);
    await got.waitFor(1);
    expect(s.stats).toMatchObject({ malformed: 1, unsupportedPayload: 1, received: 1 });
  });

  it('starts the jitter buffer again when the SSRC changes, once the new stream is a stream', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = frames(s);
    await asterisk.send(s.localPort, 100, 0x10);
    // The new source sends like any RTP stream, a packet every 20 ms (the pacing is the input
    // under test, not a wait for an event): after 3 of them it replaces the old one.
    for (const [sequence, byte] of [
      [5, 0x20],
      [6, 0x30],
      [7, 0x40],
    ] as const) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await asterisk.send(s.localPort, sequence, byte, { ssrc: 0x9999 });
    }
    await got.waitFor(4);
    expect(got.out).toEqual([0x10, 0x20, 0x30, 0x40].map(mulawToLinear));
    expect(s.stats).toMatchObject({ ssrcChanges: 1, late: 0, wrongSsrc: 0, received: 4 });
  });
});

describe('RtpSession inbound µ-law', () => {
  it('hands onPayload the exact bytes in sequence order, conceals with 0xFF and decodes nothing', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = payloads(s);
    const sentAt = performance.now();
    // 11 is lost: with 13, 14 and 15 queued behind it (depth 3) it is given up as silence.
    for (const sequence of [10, 12, 13, 15, 14]) {
      await asterisk.send(s.localPort, sequence, 0, { payload: pattern(sequence) });
    }
    await got.waitFor(6);
    expect(got.out.map((f) => Buffer.from(f.ulaw))).toEqual([
      pattern(10),
      Buffer.alloc(160, 0xff),
      pattern(12),
      pattern(13),
      pattern(14),
      pattern(15),
    ]);
    for (const { arrivedAt } of got.out) {
      expect(arrivedAt).toBeGreaterThanOrEqual(sentAt);
      expect(arrivedAt).toBeLessThanOrEqual(performance.now());
    }
    // 15 waited for 14: both were released by 14's datagram, so they report the same arrival.
    expect(got.out[5]!.arrivedAt).toBe(got.out[4]!.arrivedAt);
    expect(s.stats).toMatchObject({ received: 5, reordered: 1, concealed: 1, decodedFrames: 0 });
  });

  it('decodes each frame once for all onAudio listeners, and only while there is one', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = payloads(s);
    await asterisk.send(s.localPort, 1, 0, { payload: pattern(1) });
    await got.waitFor(1);
    expect(s.stats.decodedFrames).toBe(0);

    const a: Int16Array[] = [];
    const b: Int16Array[] = [];
    const offA = s.onAudio((pcm) => a.push(pcm));
    const offB = s.onAudio((pcm) => b.push(pcm));
    await asterisk.send(s.localPort, 2, 0, { payload: pattern(2) });
    await asterisk.send(s.localPort, 3, 0, { payload: pattern(3) });
    await got.waitFor(3);
    expect(s.stats.decodedFrames).toBe(2);
    expect(a.length).toBe(2);
    expect(b[0]).toBe(a[0]); // one decoded array, shared
    expect(b[1]).toBe(a[1]);
    expect(Array.from(a[0]!)).toEqual(Array.from(decodeMulaw(pattern(2))));
    expect(Array.from(a[1]!)).toEqual(Array.from(Int16Array.from(pattern(3), (byte) => mulawToLinear(byte))));

    offA();
    offB();
    await asterisk.send(s.localPort, 4, 0, { payload: pattern(4) });
    await got.waitFor(4);
    expect(s.stats.decodedFrames).toBe(2);
    expect(a.length).toBe(2);
  });

  it('transcodes PCMA payloads to µ-law, so listeners get one encoding', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const got = payloads(s);
    const pcm: Int16Array[] = [];
    s.onAudio((frame) => pcm.push(frame));
    // Every A-law byte value, over two packets.
    const alaw = [
      Buffer.from(Array.from({ length: 160 }, (_, i) => i)),
      Buffer.from(Array.from({ length: 160 }, (_, i) => 96 + i)),
    ];
    await asterisk.send(s.localPort, 1, 0, { payloadType: PT_PCMA, payload: alaw[0]! });
    await asterisk.send(s.localPort, 2, 0, { payloadType: PT_PCMA, payload: alaw[1]! });
    await got.waitFor(2);
    for (const [i, frame] of got.out.entries()) {
      expect(Array.from(frame.ulaw)).toEqual(
        Array.from(alaw[i]!, (byte) => linearToMulaw(alawToLinear(byte))),
      );
    }
    expect(Array.from(pcm[0]!)).toEqual(
      Array.from(Int16Array.from(got.out[0]!.ulaw, (byte) => mulawToLinear(byte))),
    );
    expect(s.stats).toMatchObject({ received: 2, unsupportedPayload: 0 });
  });
});

describe('RtpSession outbound', () => {
  it('owns the header: one random SSRC, +1 sequence, +160 timestamp, marker on a talkspurt start', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const pcm = new Int16Array(160);
    expect(s.sendFrame(pcm, true)).toBe(true);
    s.sendFrame(pcm, false);
    s.sendFrame(pcm, false);
    while (asterisk.received.length < 3)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    const [a, b, c] = asterisk.received as [RtpPacket, RtpPacket, RtpPacket];
    expect([a.ssrc, b.ssrc, c.ssrc]).toEqual([s.ssrc, s.ssrc, s.ssrc]);
    expect([a.marker, b.marker, c.marker]).toEqual([true, false, false]);
    expect((b.sequenceNumber - a.sequenceNumber) & 0xffff).toBe(1);
    expect((c.sequenceNumber - b.sequenceNumber) & 0xffff).toBe(1);
    expect((b.timestamp - a.timestamp) >>> 0).toBe(160);
    expect(a.payload.length).toBe(160);
    expect(a.payloadType).toBe(PT_PCMU);
  });

  it('sendPayload sends a Uint8Array view as it is, header included', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    const backing = new Uint8Array(400).map((_, i) => (i * 13) & 0xff);
    const view = backing.subarray(100, 260); // not a Buffer, not at offset 0
    expect(s.sendPayload(view, true)).toBe(true);
    while (asterisk.received.length < 1)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    const packet = asterisk.received[0]!;
    expect(Array.from(packet.payload)).toEqual(Array.from(view));
    expect(packet).toMatchObject({ payloadType: PT_PCMU, marker: true, ssrc: s.ssrc });
  });

  it('sendPayloadAt sends the frame at an offset of a prompt, on both send paths, and refuses a partial one', async () => {
    const s = await session();
    const asterisk = await peer();
    const prompt = new Uint8Array(new SharedArrayBuffer(700)).map((_, i) => (i * 13 + 1) & 0xff);
    // Before the connect completes the packet goes addressed (encoded); after it, from the ring.
    s.setRemote('127.0.0.1', asterisk.port);
    expect(s.sendPayloadAt(prompt, 160, true)).toBe(true);
    while (asterisk.received.length < 1)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    expect(s.sendPayloadAt(prompt, 320, false)).toBe(true);
    expect(s.sendPayloadAt(prompt, 481, false)).toBe(true); // not word aligned
    while (asterisk.received.length < 3)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    const [a, b, c] = asterisk.received as [RtpPacket, RtpPacket, RtpPacket];
    expect(Array.from(a.payload)).toEqual(Array.from(prompt.subarray(160, 320)));
    expect(Array.from(b.payload)).toEqual(Array.from(prompt.subarray(320, 480)));
    expect(Array.from(c.payload)).toEqual(Array.from(prompt.subarray(481, 641)));
    expect([a.marker, b.marker, c.marker]).toEqual([true, false, false]);
    expect((c.timestamp - a.timestamp) >>> 0).toBe(320);
    expect(() => s.sendPayloadAt(prompt, 600, false)).toThrow(RangeError);
    expect(() => s.sendPayloadAt(prompt, -1, false)).toThrow(RangeError);
  });

  it('sendPayloadAt from prompts in turn: each frame from its own source, whatever was sent before', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    // Wait for the connected path (the one that copies from the session's view of the source).
    expect(s.sendPayloadAt(new Uint8Array(160), 0, true)).toBe(true);
    while (asterisk.received.length < 1)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    const shared = new SharedArrayBuffer(480);
    const first = new Uint8Array(shared).map((_, i) => (i * 7 + 3) & 0xff);
    // Another view and another buffer object of the same memory, as a play reaches the worker.
    const sameMemory = new Uint8Array(shared, 0, 480);
    const other = new Uint8Array(480).map((_, i) => (i * 11 + 5) & 0xff);
    const sends: [Uint8Array, number][] = [
      [first, 0],
      [other, 160],
      [first, 160],
      [sameMemory, 320],
      [other, 320],
      [other.subarray(4), 0],
    ];
    for (const [source, offset] of sends) expect(s.sendPayloadAt(source, offset, false)).toBe(true);
    while (asterisk.received.length < 1 + sends.length)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    sends.forEach(([source, offset], i) => {
      expect(Array.from(asterisk.received[1 + i]!.payload)).toEqual(
        Array.from(source.subarray(offset, offset + 160)),
      );
    });
  });

  it('sends nothing without a remote or after close, and gives the port back on close', async () => {
    const s = await session();
    expect(s.sendFrame(new Int16Array(160), true)).toBe(false);
    const port = s.localPort;
    expect(allocator.holds(port)).toBe(true);
    await s.close();
    expect(allocator.holds(port)).toBe(false);
    s.setRemote('127.0.0.1', 9);
    expect(s.sendFrame(new Int16Array(160), true)).toBe(false);
    await s.close(); // idempotent
  });
});

describe('RtpSession peer', () => {
  it('sends on a connected socket from a ring of packets: bursts of 100 frames arrive whole and in order', async () => {
    const s = await session();
    const asterisk = await peer();
    s.setRemote('127.0.0.1', asterisk.port);
    // The session learns that its socket is connected in dgram's 'connect' callback, run on
    // process.nextTick: by the next turn of the loop, sends go on the connected socket.
    await new Promise((resolve) => setImmediate(resolve));
    // Bursts of more frames than the ring holds (64), each frame its own bytes, so every packet
    // of the ring is rewritten: each must arrive with its own header (marker included) and
    // payload. Three bursts of 100, each received before the next (a receive buffer holds ~200).
    for (let burst = 0; burst < 3; burst++) {
      for (let i = burst * 100; i < (burst + 1) * 100; i++)
        s.sendPayload(new Uint8Array(160).fill(i & 0xff), i === 0);
      while (asterisk.received.length < (burst + 1) * 100)
        await new Promise((resolve) => asterisk.socket.once('message', resolve));
    }
    const first = asterisk.received[0]!;
    asterisk.received.forEach((packet, i) => {
      expect(packet.sequenceNumber).toBe((first.sequenceNumber + i) & 0xffff);
      expect(packet.timestamp).toBe((first.timestamp + i * 160) >>> 0);
      expect(packet.ssrc).toBe(s.ssrc);
      expect(packet.marker).toBe(i === 0);
      expect(packet.payload).toEqual(Buffer.alloc(160, i & 0xff));
    });
    expect(s.stats.sent).toBe(300);
  });

  it('follows a new peer: packets go there, and only it is heard', async () => {
    const s = await session();
    const first = await peer();
    const second = await peer();
    const got = frames(s);
    s.setRemote('127.0.0.1', first.port);
    s.sendFrame(new Int16Array(160), true);
    await first.send(s.localPort, 1, 0x10);
    await got.waitFor(1);
    while (first.received.length < 1) await new Promise((resolve) => first.socket.once('message', resolve));

    s.setRemote('127.0.0.1', second.port);
    s.sendFrame(new Int16Array(160), false);
    while (second.received.length < 1) await new Promise((resolve) => second.socket.once('message', resolve));
    // The same sequence number from both: only one can be the stream's next packet.
    await first.send(s.localPort, 2, 0x20);
    await second.send(s.localPort, 2, 0x30);
    await got.waitFor(2);
    expect(got.out).toEqual([mulawToLinear(0x10), mulawToLinear(0x30)]);
    expect(first.received).toHaveLength(1);
    // The socket was connected to the second peer by then: the first one's packet never reached it.
    expect(s.stats).toMatchObject({ received: 2, droppedForeign: 0, sent: 2 });
  });

  it('latches on the first source of an unspecified address, then hears only it', async () => {
    const s = await session();
    const asterisk = await peer();
    const impostor = createSocket('udp4');
    await new Promise<void>((resolve) => impostor.bind(asterisk.port, '127.0.0.2', resolve));
    cleanups.push(() => impostor.close());
    const got = frames(s);
    s.setRemote('0.0.0.0', asterisk.port);
    await asterisk.send(s.localPort, 1, 0x10);
    await got.waitFor(1);
    expect(s.remote).toEqual({ address: '127.0.0.1', port: asterisk.port });
    const forged = encodeRtp({
      payloadType: PT_PCMU,
      marker: false,
      sequenceNumber: 2,
      timestamp: 320,
      ssrc: 0x1234,
      csrc: [],
      payload: Buffer.alloc(160, 0x20),
    });
    await new Promise<void>((resolve, reject) =>
      impostor.send(forged, s.localPort, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
    );
    await asterisk.send(s.localPort, 2, 0x30);
    await got.waitFor(2);
    expect(got.out).toEqual([mulawToLinear(0x10), mulawToLinear(0x30)]);
    expect(s.stats.droppedForeign).toBe(0);
    s.sendFrame(new Int16Array(160), true);
    while (asterisk.received.length < 1)
      await new Promise((resolve) => asterisk.socket.once('message', resolve));
    expect(asterisk.received[0]!.ssrc).toBe(s.ssrc);
  });

  it('a peer whose port closed is counted and logged once, and the session sends on', async () => {
    const warnings: string[] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      warn: (_fields: unknown, message?: string) => warnings.push(message ?? ''),
      error: () => {},
    };
    const s = await RtpSession.open({ allocator, bindAddress: '127.0.0.1', logger });
    cleanups.push(() => s.close());
    const gone = createSocket('udp4');
    await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', resolve));
    const gonePort = gone.address().port;
    await new Promise<void>((resolve) => gone.close(resolve));
    s.setRemote('127.0.0.1', gonePort);
    // Each packet to the closed port brings back an ICMP report; wait for three of them.
    for (let n = 0; s.stats.unreachable < 3; n++) {
      expect(s.sendFrame(new Int16Array(160), n === 0)).toBe(true);
      await vi.waitFor(() => expect(s.stats.unreachable).toBeGreaterThan(Math.min(n, 2)), {
        timeout: 2000,
        interval: 2,
      });
    }
    expect(warnings).toEqual(['RTP peer unreachable (its port is closed); sending on']);
    expect(s.isClosed).toBe(false);
    expect(s.stats.sent).toBeGreaterThanOrEqual(3);
  });
});

/** Whether this host has an IPv6 loopback to bind (containers sometimes have none). */
const hasIpv6Loopback = await new Promise<boolean>((resolve) => {
  const probe = createSocket('udp6');
  probe.once('error', () => resolve(false));
  probe.bind(0, '::1', () => probe.close(() => resolve(true)));
});

describe.skipIf(!hasIpv6Loopback)('RtpSession over IPv6 (skipped when the host has no ::1)', () => {
  it('connects to an IPv6 peer: audio both ways, and only that peer is heard', async () => {
    const v6 = new PortAllocator({ min: base + 60, max: base + 80 });
    const s = await RtpSession.open({ allocator: v6, bindAddress: '::1' });
    cleanups.push(() => s.close());
    const asterisk = createSocket('udp6');
    const stranger = createSocket('udp6');
    const heard: RtpPacket[] = [];
    asterisk.on('message', (msg) => {
      const packet = decodeRtp(msg);
      if (packet) heard.push(packet);
    });
    await Promise.all(
      [asterisk, stranger].map((socket) => new Promise<void>((resolve) => socket.bind(0, '::1', resolve))),
    );
    cleanups.push(
      () => asterisk.close(),
      () => stranger.close(),
    );
    const got = frames(s);
    s.setRemote('::1', asterisk.address().port);
    const packet = (sequence: number, byte: number) =>
      encodeRtp({
        payloadType: PT_PCMU,
        marker: false,
        sequenceNumber: sequence,
        timestamp: sequence * 160,
        ssrc: 0x66,
        csrc: [],
        payload: Buffer.alloc(160, byte),
      });
    const sendFrom = (socket: Socket, sequence: number, byte: number) =>
      new Promise<void>((resolve, reject) =>
        socket.send(packet(sequence, byte), s.localPort, '::1', (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    expect(s.sendFrame(new Int16Array(160), true)).toBe(true);
    await sendFrom(asterisk, 1, 0x10);
    await sendFrom(stranger, 2, 0x20);
    await sendFrom(asterisk, 2, 0x30);
    await got.waitFor(2);
    expect(got.out).toEqual([mulawToLinear(0x10), mulawToLinear(0x30)]);
    expect(s.stats.droppedForeign).toBe(0);
    while (heard.length < 1) await new Promise((resolve) => asterisk.once('message', resolve));
    expect(heard[0]!.ssrc).toBe(s.ssrc);
  });
});
