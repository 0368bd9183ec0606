/**
 * Fuzz: over 100,000 hostile ARI event frames and AMI frames into the real AriClient and AmiClient
 * over real sockets, with known-good sentinel events interleaved. Every sentinel must arrive, in
 * order; nothing may escape as an exception; the clients stay connected; what is dropped is
 * counted; the AMI input buffer stays bounded. The seed is printed: replay a failure with
 * `FUZZ_SEED=<seed> npx vitest run test/fuzz-clients.test.ts`.
 */

import { once } from 'node:events';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { AmiClient, type AmiEvent } from '../src/asterisk/ami-client.js';
import { type AmiMessage, AmiParser, serializeEntries } from '../src/asterisk/ami-codec.js';
import { AriClient } from '../src/asterisk/ari-client.js';
import { AriEventParseError } from '../src/errors.js';
import type { LogFields, Logger } from '../src/logger.js';
import { AriFixture, connected, envelope } from './support/ari-fixture.js';
import {
  fuzzSeed,
  hostileAmiFrame,
  hostileAriFrame,
  processFaults,
  Rng,
  randomSplits,
} from './support/fuzz.js';
import { within } from './support/within.js';

const seed = fuzzSeed();
console.info(`fuzz-clients: FUZZ_SEED=${seed}`);
const why = `replay with FUZZ_SEED=${seed}`;

const ARI_FRAMES = 60_000;
const AMI_FRAMES = 60_000;
/** Hostile frames between two sentinels. */
const BATCH = 300;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let process$: ReturnType<typeof processFaults>;

beforeAll(() => {
  process$ = processFaults();
});
afterAll(() => process$.uninstall());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(process$.faults, why).toEqual([]);
});

/** A logger that counts lines per level and keeps the messages. */
function countingLogger(): {
  logger: Logger;
  lines: { level: string; message: string; fields: LogFields }[];
} {
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const at = (level: string) => (fields: LogFields, message?: string) => {
    lines.push({ level, message: message ?? '', fields });
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

// ---------------------------------------------------------------------------------------- ARI

describe('ARI events websocket fuzz', () => {
  it(`delivers every sentinel in order through ${ARI_FRAMES} hostile frames, and counts the rest`, async () => {
    const rng = new Rng(seed);
    const fixture = await AriFixture.start();
    cleanups.push(() => fixture.close());
    const log = countingLogger();
    const client = new AriClient({
      url: fixture.url,
      username: 'u',
      password: 'p',
      app: 'test',
      logger: log.logger,
      pingIntervalMs: 0,
    });
    cleanups.push(() => client.close());

    const nonce = `sentinel-${seed}`;
    const sentinels: number[] = [];
    const waiters = new Map<number, () => void>();
    let known = 0;
    let unknown = 0;
    const errors: Error[] = [];
    client.on('event', () => {
      known++;
    });
    client.on('unknownEvent', () => {
      unknown++;
    });
    client.on('error', (error) => {
      errors.push(error);
    });
    client.on('ChannelUserevent', (e) => {
      if (e.eventname !== nonce) return;
      const seq = (e.userevent as { seq: number }).seq;
      sentinels.push(seq);
      waiters.get(seq)?.();
    });
    // Listeners that read what the types promise, as application code would: a frame that passes
    // validation with a field of the wrong type makes one of them throw, which the client reports
    // as an AriListenerError (asserted absent below).
    client.on('StasisStart', (e) => {
      void `${e.channel.caller.number.trim()}${e.channel.dialplan.exten.trim()}`;
      void client.channels.answer(e.channel.id).catch(() => {}); // builds a path from the id
    });
    client.on('ChannelDtmfReceived', (e) => void e.digit.toUpperCase());
    client.on('PlaybackFinished', (e) => void e.playback.target_uri.indexOf(':'));
    client.on('RecordingFinished', (e) => void e.recording.target_uri.indexOf(':'));
    client.on(
      'TextMessageReceived',
      (e) => void `${e.message.from.trim()}${e.message.to.trim()}${e.message.body}`,
    );

    const server: WebSocket = await connected(fixture, client);
    const sentinel = (seq: number) =>
      JSON.stringify({
        ...envelope('ChannelUserevent'),
        eventname: nonce,
        userevent: { seq, eventname: nonce },
      });

    let textFrames = 0;
    let binaryFrames = 0;
    let sent = 0;
    const sentTexts: string[] = [];
    for (let seq = 0; sent < ARI_FRAMES; seq++) {
      for (let i = 0; i < BATCH && sent < ARI_FRAMES; i++, sent++) {
        // Now and then an exact repeat of an earlier frame (Asterisk's duplicates look like this).
        const frame =
          sentTexts.length > 0 && rng.chance(0.01)
            ? { kind: 'text' as const, text: rng.pick(sentTexts) }
            : hostileAriFrame(rng, { bigEvery: 3000, deepEvery: 500 });
        if (frame.kind === 'binary') {
          binaryFrames++;
          server.send(frame.data, { binary: true });
        } else {
          textFrames++;
          if (frame.text.length < 2000 && sentTexts.length < 200) sentTexts.push(frame.text);
          server.send(frame.text);
        }
      }
      const arrived = new Promise<void>((resolve) => waiters.set(seq, resolve));
      server.send(sentinel(seq));
      await within(arrived, 10_000, `sentinel ${seq} (${why})`);
      waiters.delete(seq);
    }

    const batches = Math.ceil(ARI_FRAMES / BATCH);
    expect(sentinels, why).toEqual(Array.from({ length: batches }, (_, i) => i));
    expect(client.connected, why).toBe(true);
    expect(fixture.upgrades.length, `one websocket, never reconnected (${why})`).toBe(1);
    // Every text frame is accounted for exactly once: delivered (known or unknown), a duplicate,
    // or dropped as malformed; binary frames are dropped as malformed too.
    const malformed = client.malformedEventsDropped;
    expect(known - batches + unknown + client.duplicateEventsDropped + (malformed - binaryFrames), why).toBe(
      textFrames,
    );
    expect(malformed, why).toBeGreaterThan(ARI_FRAMES / 4);
    // Reported to the error listener as typed errors, never as a listener that threw.
    expect(
      errors.every((e) => e instanceof AriEventParseError),
      why,
    ).toBe(true);
    expect(errors.length, why).toBe(malformed - binaryFrames);
    // The log is not flooded: one line, then at most one per 10 s per kind.
    const warnings = log.lines.filter((l) => l.level !== 'debug');
    expect(warnings.length, why).toBeLessThan(20);
    expect(warnings.some((l) => l.message === 'Dropped a malformed ARI event')).toBe(true);
  }, 60_000);

  it('a frame over the size limit drops the socket, the client reconnects and delivers again', async () => {
    const fixture = await AriFixture.start();
    cleanups.push(() => fixture.close());
    const client = new AriClient({
      url: fixture.url,
      username: 'u',
      password: 'p',
      app: 'test',
      pingIntervalMs: 0,
      reconnect: { initialMs: 10, maxMs: 50 },
    });
    cleanups.push(() => client.close());
    const got: string[] = [];
    client.on('ChannelUserevent', (e) => {
      got.push(e.eventname);
    });
    const first = await connected(fixture, client);
    const disconnected = new Promise<void>((resolve) => client.once('disconnected', () => resolve()));
    const reopened = fixture.nextSocket();
    first.send('x'.repeat(16 * 1024 * 1024 + 1));
    await within(disconnected, 10_000, 'the disconnect after an oversized frame');
    const second = await within(reopened, 10_000, 'the reconnection');
    await within(new Promise((resolve) => client.once('reconnected', resolve)), 5000, 'reconnected');
    const arrived = new Promise<void>((resolve) => client.once('ChannelUserevent', () => resolve()));
    second.send(JSON.stringify({ ...envelope('ChannelUserevent'), eventname: 'after', userevent: {} }));
    await within(arrived, 5000, 'an event after the reconnection');
    expect(got).toEqual(['after']);
  });
});

// ---------------------------------------------------------------------------------------- AMI

/** An AMI peer that logs anyone in, answers every action with Success, and sends what it is told. */
class HostileAmi {
  readonly sockets = new Set<Socket>();
  private constructor(private readonly server: NetServer) {}

  static async start(): Promise<HostileAmi> {
    const server = createServer();
    const ami = new HostileAmi(server);
    server.on('connection', (socket) => ami.accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return ami;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  nextSocket(): Promise<Socket> {
    return once(this.server, 'connection').then(([socket]) => socket as Socket);
  }

  /** Writes `data` as pieces cut at random points; resolves once written (flow control). */
  async write(socket: Socket, pieces: readonly Buffer[]): Promise<void> {
    for (const piece of pieces) {
      if (!socket.write(piece)) await once(socket, 'drain');
    }
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.write('Asterisk Call Manager/11.0.0\r\n');
    const parser = new AmiParser({ lineEnding: 'lf' });
    socket.on('data', (chunk: Buffer) => {
      for (const action of parser.push(chunk)) this.answer(socket, action);
    });
  }

  private answer(socket: Socket, action: AmiMessage): void {
    const name = (action.get('Action') ?? '').toLowerCase();
    const id = action.get('ActionID');
    const reply: [string, string][] = [['Response', name === 'logoff' ? 'Goodbye' : 'Success']];
    if (id !== undefined) reply.push(['ActionID', id]);
    reply.push(['Message', name === 'login' ? 'Authentication accepted' : name === 'ping' ? 'Pong' : 'OK']);
    socket.write(serializeEntries(reply));
    if (name === 'logoff') socket.end();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function amiPair(): Promise<{
  peer: HostileAmi;
  socket: Socket;
  client: AmiClient;
  log: ReturnType<typeof countingLogger>;
}> {
  const peer = await HostileAmi.start();
  cleanups.push(() => peer.close());
  const log = countingLogger();
  const client = new AmiClient({
    host: '127.0.0.1',
    port: peer.port,
    username: 'fuzz',
    password: 'fuzz-secret',
    logger: log.logger,
    keepAliveMs: 0,
    actionTimeoutMs: 10_000,
  });
  cleanups.push(() => client.close());
  const socket = peer.nextSocket();
  await client.connect();
  return { peer, socket: await socket, client, log };
}

function amiSentinel(nonce: string, seq: number): Buffer {
  return Buffer.from(`\r\n\r\nEvent: UserEvent\r\nUserEvent: ${nonce}\r\nSeq: ${seq}\r\n\r\n`);
}

describe('AMI fuzz', () => {
  it(`delivers every sentinel in order through ${AMI_FRAMES} hostile frames split at random points`, async () => {
    const rng = new Rng(seed ^ 0x5eed);
    const { peer, socket, client, log } = await amiPair();
    const nonce = `sentinel-${seed}`;
    const sentinels: number[] = [];
    const waiters = new Map<number, () => void>();
    let events = 0;
    const errors: Error[] = [];
    client.on('error', (e) => {
      errors.push(e);
    });
    client.on('event', () => {
      events++;
    });
    client.on('UserEvent', (e: AmiEvent) => {
      if (e.fields.UserEvent !== nonce) return;
      const seq = Number(e.fields.Seq);
      sentinels.push(seq);
      waiters.get(seq)?.();
    });

    let sent = 0;
    for (let seq = 0; sent < AMI_FRAMES; seq++) {
      const parts: Buffer[] = [];
      for (let i = 0; i < BATCH && sent < AMI_FRAMES; i++, sent++)
        parts.push(hostileAmiFrame(rng, { hugeEvery: 4000 }));
      parts.push(amiSentinel(nonce, seq));
      const arrived = new Promise<void>((resolve) => waiters.set(seq, resolve));
      await peer.write(socket, randomSplits(rng, Buffer.concat(parts), 40));
      await within(arrived, 10_000, `AMI sentinel ${seq} (${why})`);
      waiters.delete(seq);
    }

    const batches = Math.ceil(AMI_FRAMES / BATCH);
    expect(sentinels, why).toEqual(Array.from({ length: batches }, (_, i) => i));
    expect(client.connected, why).toBe(true);
    // Still answers actions after all that.
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');
    const stats = client.inputStats;
    expect(stats.unmatchedResponses, why).toBeGreaterThan(0);
    expect(stats.ignored, why).toBeGreaterThan(0);
    expect(stats.dropped, why).toBeGreaterThan(0);
    expect(events, why).toBeGreaterThan(batches);
    expect(stats.maxBuffered, why).toBeLessThanOrEqual(16 * 1024 * 1024 + 1024 * 1024);
    expect(errors, why).toEqual([]);
    expect(
      log.lines.filter((l) => l.level === 'error'),
      why,
    ).toEqual([]);
    expect(log.lines.filter((l) => l.level === 'warn').length, why).toBeLessThan(20);
  }, 60_000);

  it('keeps memory bounded for a frame that never ends: 48 MB without a line break, then lines without a blank line', async () => {
    const { peer, socket, client } = await amiPair();
    const got: string[] = [];
    const next = () =>
      new Promise<void>((resolve) =>
        client.once('UserEvent', (e: AmiEvent) => {
          got.push(String(e.fields.Seq));
          resolve();
        }),
      );

    const chunk = Buffer.alloc(64 * 1024, 'x');
    let arrived = next();
    for (let i = 0; i < 48 * 16; i++) await peer.write(socket, [chunk]);
    await peer.write(socket, [amiSentinel('s', 1)]);
    await within(arrived, 10_000, 'the sentinel after an endless line');
    expect(client.inputStats.maxBuffered).toBeLessThanOrEqual(1024 * 1024);

    // 20 MB of short lines without the blank line that ends a message.
    arrived = next();
    const lines = Buffer.from('Key: value-value-value\r\n'.repeat(4096));
    for (let written = 0; written < 20 * 1024 * 1024; written += lines.length)
      await peer.write(socket, [lines]);
    await peer.write(socket, [amiSentinel('s', 2)]);
    await within(arrived, 10_000, 'the sentinel after an endless message');
    expect(client.inputStats.maxBuffered).toBeLessThanOrEqual(16 * 1024 * 1024 + 64 * 1024);
    expect(client.inputStats.dropped).toBeGreaterThanOrEqual(2);
    expect(got).toEqual(['1', '2']);
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');
  }, 30_000);
});

// ---------------------------------------------------------------------------------------- parser

describe('AmiParser under random splits', () => {
  it('parses any hostile stream to the same messages however it is cut', () => {
    const rng = new Rng(seed ^ 0xa11ce);
    const show = (messages: AmiMessage[]) => messages.map((m) => [m.entries, m.rawLines]);
    for (let round = 0; round < 100; round++) {
      const frames: Buffer[] = [Buffer.from('Asterisk Call Manager/11.0.0\r\n')];
      for (let i = 0; i < 20; i++) frames.push(hostileAmiFrame(rng), Buffer.from('\r\n\r\nEvent: X\r\n\r\n'));
      const stream = Buffer.concat(frames);
      const whole = new AmiParser({ expectGreeting: true }).push(stream);
      const cut = new AmiParser({ expectGreeting: true });
      const pieces: AmiMessage[] = [];
      for (const piece of randomSplits(rng, stream, 200)) pieces.push(...cut.push(piece));
      expect(show(pieces), `round ${round}, ${why}`).toEqual(show(whole));
      expect(whole.filter((m) => m.get('Event') === 'X').length, `round ${round}, ${why}`).toBe(20);
    }
  });
});
