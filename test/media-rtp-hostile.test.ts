/**
 * Hostile RTP on a live call's leg, over real UDP sockets: packets from a foreign port and a
 * foreign address (with the stream's own SSRC and next sequence number), another SSRC mid-call,
 * other payload types, garbage, truncated headers, 60 KB datagrams and a flood of them. All of it
 * is dropped and counted; the caller's audio arrives intact and in order, and the audio played to
 * the caller goes out complete, in sequence, on its timestamp grid.
 */

import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { AudioPlayer } from '../src/media/audio-player.js';
import { Pacer } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { decodeRtp, encodeRtp, PT_PCMU, type RtpPacket } from '../src/media/rtp-packet.js';
import { MAX_RTP_PAYLOAD_BYTES, RtpSession } from '../src/media/rtp-session.js';

const base = 20000 + Math.floor(Math.random() * 10000);
const allocator = new PortAllocator({ min: base, max: base + 20 });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Peer {
  socket: Socket;
  port: number;
  received: RtpPacket[];
  waitFor(count: number): Promise<void>;
  /** Sends raw bytes; resolves once handed to the kernel. */
  raw(to: number, bytes: Buffer): Promise<void>;
}

async function peer(address = '127.0.0.1'): Promise<Peer> {
  const socket = createSocket('udp4');
  const received: RtpPacket[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on('message', (msg) => {
    const packet = decodeRtp(msg);
    if (packet) received.push(packet);
    for (const w of [...waiters]) if (received.length >= w.count) w.resolve();
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  cleanups.push(() => socket.close());
  return {
    socket,
    port: socket.address().port,
    received,
    waitFor: (count) =>
      received.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    raw: (to, bytes) =>
      new Promise<void>((resolve, reject) =>
        socket.send(bytes, to, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      ),
  };
}

/** 160 µ-law bytes unique to frame `n`. */
function pattern(n: number): Buffer {
  return Buffer.from(Array.from({ length: 160 }, (_, i) => (n * 31 + i * 7 + 1) & 0xff));
}

function rtp(fields: Partial<RtpPacket>): Buffer {
  return encodeRtp({
    payloadType: PT_PCMU,
    marker: false,
    sequenceNumber: 0,
    timestamp: 0,
    ssrc: 0xa5a5a5a5,
    csrc: [],
    payload: Buffer.alloc(160, 0x55),
    ...fields,
  });
}

describe('RtpSession under hostile input', () => {
  it('drops and counts every hostile packet while audio flows undisturbed both ways', async () => {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    cleanups.push(() => session.close());
    const asterisk = await peer();
    const foreignPort = await peer();
    const foreignAddress = await peer('127.0.0.2');
    session.setRemote('127.0.0.1', asterisk.port);

    const inbound: Buffer[] = [];
    let resolveAll!: () => void;
    const FRAMES = 60;
    const allIn = new Promise<void>((resolve) => {
      resolveAll = resolve;
    });
    session.onPayload((ulaw) => {
      inbound.push(Buffer.from(ulaw));
      if (inbound.length === FRAMES) resolveAll();
    });

    // Audio to the caller, paced by its own clock, for as long as the hostile input lasts.
    const pacer = new Pacer();
    const player = new AudioPlayer({ sink: session, pacer });
    cleanups.push(() => player.close());
    const played = Uint8Array.from({ length: 160 * FRAMES }, (_, i) => (i * 37 + (i >> 8)) & 0xff);
    const playing = player.playUlaw(played);

    const ssrc = 0x1234abcd;
    const firstSequence = 65_530; // crosses the 65535 → 0 wrap
    const expected = { droppedForeign: 0, malformed: 0, unsupportedPayload: 0, wrongSsrc: 0, oversized: 0 };
    let floods = 0;

    // The caller's stream, one frame every 20 ms (the stream under test, not a wait); after each
    // genuine packet, in the same tick, that tick's hostile packets.
    for (let n = 0; n < FRAMES; n++) {
      const sequence = (firstSequence + n) & 0xffff;
      const next = (sequence + 1) & 0xffff;
      await asterisk.raw(
        session.localPort,
        rtp({ ssrc, sequenceNumber: sequence, timestamp: n * 160, payload: pattern(n) }),
      );
      const hostile: [Peer, Buffer][] = [];
      switch (n % 8) {
        case 1:
          // The stream's own SSRC and next sequence number, from the wrong port and the wrong address.
          hostile.push([foreignPort, rtp({ ssrc, sequenceNumber: next, payload: Buffer.alloc(160, 0xaa) })]);
          hostile.push([
            foreignAddress,
            rtp({ ssrc, sequenceNumber: next, payload: Buffer.alloc(160, 0xab) }),
          ]);
          // The socket is connected to the announced peer: the kernel drops these, uncounted
          // (droppedForeign stays 0; it would count them had they reached the session).
          break;
        case 2:
          // Another SSRC mid-call: a sequential burst, with the numbers the stream will use next.
          for (let k = 0; k < 4; k++) {
            hostile.push([
              asterisk,
              rtp({ ssrc: 0xbad, sequenceNumber: (next + k) & 0xffff, payload: Buffer.alloc(160, 0xbb) }),
            ]);
          }
          expected.wrongSsrc += 4;
          break;
        case 3:
          // Payload types that are not audio of this call: telephone-event, comfort noise, dynamic.
          for (const payloadType of [101, 13, 96])
            hostile.push([asterisk, rtp({ ssrc, sequenceNumber: next, payloadType })]);
          expected.unsupportedPayload += 3;
          break;
        case 4:
          // Garbage (not RTP version 2), a truncated header, and headers promising more than they carry.
          hostile.push([asterisk, Buffer.from([0x41, ...pattern(n).subarray(0, 40)])]);
          hostile.push([asterisk, rtp({ ssrc, sequenceNumber: next }).subarray(0, 1 + (n % 11))]);
          hostile.push([asterisk, Buffer.concat([Buffer.from([0x8f, 0x00]), Buffer.alloc(20)])]); // 15 CSRCs in 22 bytes
          hostile.push([asterisk, Buffer.from([0x90, 0x00, ...Buffer.alloc(10), 0x00, 0x00, 0xff, 0xff])]); // extension too long
          hostile.push([asterisk, Buffer.from([0xa0, 0x00, ...Buffer.alloc(10), 0x09])]); // padding longer than the packet
          expected.malformed += 5;
          break;
        case 5:
          // One giant datagram with a header that would otherwise be accepted.
          hostile.push([asterisk, rtp({ ssrc, sequenceNumber: next, payload: Buffer.alloc(60_000, 0xcc) })]);
          expected.oversized += 1;
          break;
        case 6:
          if (n === 30) {
            // A flood of giants: the kernel drops most of them (the receive buffer holds a few),
            // so only a lower bound is known for the counter.
            for (let k = 0; k < 200; k++) {
              hostile.push([
                asterisk,
                rtp({ ssrc, sequenceNumber: next, payload: Buffer.alloc(60_000, 0xcd) }),
              ]);
            }
            floods += 200;
          }
          break;
        default:
          break;
      }
      await Promise.all(hostile.map(([from, bytes]) => from.raw(session.localPort, bytes)));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    await allIn;
    // Every frame of the caller, in order and byte for byte; nothing else, no gap filled in.
    expect(inbound).toEqual(Array.from({ length: FRAMES }, (_, n) => pattern(n)));
    const stats = session.stats;
    expect(stats).toMatchObject({
      received: FRAMES,
      droppedForeign: expected.droppedForeign,
      malformed: expected.malformed,
      unsupportedPayload: expected.unsupportedPayload,
      wrongSsrc: expected.wrongSsrc,
      ssrcChanges: 0,
      concealed: 0,
      late: 0,
      duplicates: 0,
    });
    expect(stats.oversized).toBeGreaterThan(expected.oversized);
    expect(stats.oversized).toBeLessThanOrEqual(expected.oversized + floods);

    // The audio to the caller: complete, in sequence, on the 160-sample timestamp grid, one SSRC.
    expect(await playing).toBe('finished');
    await asterisk.waitFor(FRAMES);
    const out = asterisk.received;
    expect(out.length).toBe(FRAMES);
    expect(Buffer.concat(out.map((p) => p.payload))).toEqual(Buffer.from(played));
    for (let i = 1; i < out.length; i++) {
      expect((out[i]!.sequenceNumber - out[i - 1]!.sequenceNumber) & 0xffff).toBe(1);
      expect((out[i]!.timestamp - out[i - 1]!.timestamp) >>> 0).toBe(160);
      expect(out[i]!.marker).toBe(false);
      expect(out[i]!.ssrc).toBe(session.ssrc);
    }
    expect(foreignPort.received).toEqual([]);
    expect(foreignAddress.received).toEqual([]);
  }, 15_000);

  it('accepts a payload up to the limit and counts one a byte over as oversized', async () => {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    cleanups.push(() => session.close());
    const asterisk = await peer();
    session.setRemote('127.0.0.1', asterisk.port);
    const got: number[] = [];
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    session.onPayload((ulaw) => {
      got.push(ulaw.length);
      if (got.length === 2) resolve();
    });
    await asterisk.raw(
      session.localPort,
      rtp({ sequenceNumber: 1, payload: Buffer.alloc(MAX_RTP_PAYLOAD_BYTES) }),
    );
    await asterisk.raw(
      session.localPort,
      rtp({ sequenceNumber: 2, payload: Buffer.alloc(MAX_RTP_PAYLOAD_BYTES + 1) }),
    );
    await asterisk.raw(session.localPort, rtp({ sequenceNumber: 2, payload: Buffer.alloc(160) }));
    await done;
    expect(got).toEqual([MAX_RTP_PAYLOAD_BYTES, 160]);
    expect(session.stats).toMatchObject({ oversized: 1, received: 2 });
  });

  it('a stray SSRC between two packets of the stream never replaces it, even after a pause', async () => {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    cleanups.push(() => session.close());
    const asterisk = await peer();
    session.setRemote('127.0.0.1', asterisk.port);
    const got: number[] = [];
    const waiters: { count: number; resolve: () => void }[] = [];
    session.onPayload((ulaw) => {
      got.push(ulaw[0]!);
      for (const w of [...waiters]) if (got.length >= w.count) w.resolve();
    });
    const count = (n: number) =>
      got.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count: n, resolve }));
    await asterisk.raw(
      session.localPort,
      rtp({ ssrc: 1, sequenceNumber: 10, payload: Buffer.alloc(160, 1) }),
    );
    // Three sequential packets of another SSRC in a burst: no stream sends like that.
    for (let k = 0; k < 3; k++) {
      await asterisk.raw(
        session.localPort,
        rtp({ ssrc: 2, sequenceNumber: 500 + k, payload: Buffer.alloc(160, 9) }),
      );
    }
    // Proves an absence: the burst must not be adopted however long the stream then pauses.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await asterisk.raw(
      session.localPort,
      rtp({ ssrc: 1, sequenceNumber: 11, payload: Buffer.alloc(160, 2) }),
    );
    await count(2);
    expect(got).toEqual([1, 2]);
    expect(session.stats).toMatchObject({ wrongSsrc: 3, ssrcChanges: 0, received: 2 });
  });
});
