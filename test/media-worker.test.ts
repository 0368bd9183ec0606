import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AriClient } from '../src/asterisk/ari-client.js';
import type { StasisStartEvent } from '../src/asterisk/ari-events.js';
import { ConfigError, MediaWorkerError } from '../src/errors.js';
import { CallMedia } from '../src/media/call-media.js';
import { encodeMulaw } from '../src/media/g711.js';
import { MediaWorker } from '../src/media/media-worker.js';
import { Pacer, type TickInfo } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { decodeRtp, encodeRtp, PT_PCMU, type RtpPacket } from '../src/media/rtp-packet.js';
import { tone } from '../src/media/tone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { textLogger } from './support/capturing-logger.js';
import { testPortRange } from './support/test-ports.js';
import { deferred, startVoiceHarness } from './support/voice-harness.js';

const ports = testPortRange(41);
const base = ports.min;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newWorker(logger?: ConstructorParameters<typeof MediaWorker>[0]): MediaWorker {
  const worker = new MediaWorker(logger);
  cleanups.push(() => worker.close());
  return worker;
}

/** Asterisk's side of an externalMedia leg: a UDP socket that records and sends RTP. */
async function peer(): Promise<{
  socket: Socket;
  port: number;
  received: RtpPacket[];
  send: (to: number, seq: number) => void;
}> {
  const socket = createSocket('udp4');
  const received: RtpPacket[] = [];
  socket.on('message', (msg) => {
    const packet = decodeRtp(msg);
    if (packet) received.push(packet);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => socket.close());
  const send = (to: number, seq: number): void => {
    const payload = encodeMulaw(tone(440, 20));
    socket.send(
      encodeRtp({
        payloadType: PT_PCMU,
        marker: false,
        sequenceNumber: seq,
        timestamp: seq * 160,
        ssrc: 7,
        csrc: [],
        payload,
      }),
      to,
      '127.0.0.1',
    );
  };
  return { socket, port: socket.address().port, received, send };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('MediaWorker: the RTP of calls in a worker thread', () => {
  it('plays paced RTP from the worker, reports the first packet, the samples sent and the counters', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    expect(leg.localPort).toBeGreaterThanOrEqual(base);
    leg.setRemote('127.0.0.1', asterisk.port);
    const first: number[] = [];
    leg.onFirstPacket((info) => first.push(info.latencyMs));
    const stream = leg.stream();
    stream.write(tone(1000, 200));
    stream.end();
    expect(await stream.done).toBe('finished');
    expect(stream.sentSamples).toBe(1600);
    expect(first).toHaveLength(1);
    expect(first[0]).toBeGreaterThanOrEqual(0);
    await until(() => asterisk.received.length === 10);
    const sequences = asterisk.received.map((p) => p.sequenceNumber);
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]).toBe((sequences[0]! + i) & 0xffff);
    expect(asterisk.received[0]!.marker).toBe(true);
    expect((await leg.fetchStats()).sent).toBe(10);
    expect(leg.stats.framesPlayed).toBe(10);
    await leg.close();
    // The port is free again: a socket can bind it.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(leg.localPort, '127.0.0.1', resolve);
    });
    probe.close();
  });

  it("relays the worker clock's ticks to this thread's pacer (metrics), gathered once a second", async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    const seen: TickInfo[] = [];
    // 15 frames: the first at once, then a tick per frame; the last batch comes within a second.
    const fourteen = deferred<void>();
    const off = Pacer.shared.observe((t) => {
      seen.push(t);
      if (seen.length === 14) fourteen.resolve();
    });
    expect(await leg.play(tone(700, 300))).toBe('finished');
    await fourteen.promise;
    off();
    const ticks = seen.map((t) => t.tick);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!).toBeGreaterThan(ticks[i - 1]!);
    for (const t of seen) expect(t.actualMs - t.idealMs).toBeGreaterThanOrEqual(0);
    expect(Pacer.shared.stats.skippedTicks).toBe(0);
  });

  it('hands the events of one task of the worker over in one message (plays started together)', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const legs = await Promise.all(
      Array.from({ length: 8 }, () => worker.openLeg({ ports, bindAddress: '127.0.0.1' })),
    );
    // Each first-packet callback notes how many microtask checkpoints it has seen. Node runs one
    // after every message from the worker: in one message, all eight run before the first.
    let checkpoints = 0;
    const seen: number[] = [];
    for (const leg of legs) {
      leg.setRemote('127.0.0.1', asterisk.port);
      leg.onFirstPacket(() => {
        seen.push(checkpoints);
        queueMicrotask(() => {
          checkpoints++;
        });
      });
    }
    // Started in one turn: one batch of commands, whose first frames go out in one task.
    const results = await Promise.all(legs.map((leg) => leg.play(tone(500, 60))));
    expect(results).toEqual(Array(8).fill('finished'));
    expect(seen).toEqual(Array(8).fill(0));
  });

  it('delivers the caller’s audio as µ-law and as PCM', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    const ulaw: Uint8Array[] = [];
    const pcm: Int16Array[] = [];
    leg.onPayload((bytes, arrivedAt) => {
      expect(arrivedAt).toBeLessThanOrEqual(performance.now() + 1);
      ulaw.push(bytes.slice());
    });
    leg.onAudio((frame) => pcm.push(frame.slice()));
    // The listen command reaches the worker before the packets (same channel, in order).
    await leg.fetchStats();
    for (let seq = 1; seq <= 10; seq++) {
      asterisk.send(leg.localPort, seq);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await until(() => ulaw.length >= 6 && pcm.length >= 6);
    expect(ulaw[0]).toEqual(new Uint8Array(encodeMulaw(tone(440, 20))));
    expect(pcm[0]).toHaveLength(160);
  });

  it('stop(): no frame of the stopped playbacks after it, sentSamples fixed at once, later plays work', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    const stream = leg.streamUlaw();
    stream.write(encodeMulaw(tone(500, 3000)));
    await until(() => asterisk.received.length >= 5);
    const stopping = leg.stop();
    const sent = stream.sentSamples;
    expect(stream.write(new Uint8Array(160))).toBe(false);
    await stopping;
    expect(await stream.done).toBe('stopped');
    expect(stream.sentSamples).toBe(sent);
    // The worker's own count of what it sent (it answers after every frame it took), then the
    // wire: at most the frame being sent when stop() was called went out after it.
    const sentFrames = (await leg.fetchStats()).sent;
    expect(sentFrames * 160).toBeLessThanOrEqual(sent + 160);
    await until(() => asterisk.received.length >= sentFrames);
    expect(asterisk.received.length).toBe(sentFrames);
    const before = asterisk.received.length;
    await expect(leg.play(tone(800, 100))).resolves.toBe('finished');
    await until(() => asterisk.received.length === before + 5);
  });

  it('stop() while the clock sleeps before a tick: that tick sends nothing of the stopped play', async () => {
    // The worker's clock wakes about 1 ms before each tick and sleeps the rest in Atomics.wait,
    // its event loop blocked: a stop() landing then reaches it as a message only after the tick.
    // Only the stop published in shared memory, read at the tick, keeps that frame from going out.
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    for (let trial = 0; trial < 8; trial++) {
      const sentBefore = (await leg.fetchStats()).sent;
      const heardBefore = asterisk.received.length;
      const stream = leg.streamUlaw();
      stream.write(encodeMulaw(tone(500, 2000)));
      await until(() => asterisk.received.length >= heardBefore + 3);
      // A frame just arrived: the next tick is due about 20 ms after it was sent. stop() 19 ms
      // after its arrival falls in the clock's sleep before that tick (a busy wait: a timer of this
      // thread would not be that precise).
      const arrived = await new Promise<number>((resolve) =>
        asterisk.socket.once('message', () => resolve(performance.now())),
      );
      while (performance.now() < arrived + 19) {
        // waiting for the moment, not for an event
      }
      const stopping = leg.stop();
      const taken = Math.ceil(stream.sentSamples / 160);
      await stopping;
      expect(await stream.done).toBe('stopped');
      expect((await leg.fetchStats()).sent - sentBefore).toBe(taken);
    }
  });

  it('stop() right after play(), before the worker saw the play: none of it goes out', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    const played = leg.play(tone(500, 400));
    await leg.stop();
    expect(await played).toBe('stopped');
    // A play after the stop is heard, and it is the first thing heard.
    await expect(leg.play(tone(800, 100))).resolves.toBe('finished');
    // The worker's own count of what it sent (it answers after every frame it took): the second
    // play's five frames and nothing of the stopped one, which the wire confirms.
    expect((await leg.fetchStats()).sent).toBe(5);
    await until(() => asterisk.received.length >= 5);
    expect(asterisk.received.length).toBe(5);
  });

  it('sentSamples from the shared counter table: 1100 plays at once span two chunks, each counts its own, every slot comes back', async () => {
    const worker = newWorker();
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    // Empty streams, ended at once: each holds a slot until the worker reports it done.
    const empties = Array.from({ length: 1100 }, () => {
      const stream = leg.streamUlaw();
      stream.end();
      return stream;
    });
    expect(worker.countersInUse).toBe(1100);
    const last = leg.stream();
    last.write(tone(700, 100));
    // Its slot is in the second chunk, which the worker got before the play: the count moves.
    await until(() => last.sentSamples > 0);
    last.end();
    expect(await last.done).toBe('finished');
    expect(last.sentSamples).toBe(800);
    expect(new Set(await Promise.all(empties.map((s) => s.done)))).toEqual(new Set(['finished']));
    for (const stream of empties) expect(stream.sentSamples).toBe(0);
    await until(() => worker.countersInUse === 0);
    // The next play reuses the slot given back last (the 800 of `last`) and starts from 0.
    const again = leg.stream();
    expect(again.sentSamples).toBe(0);
    again.write(tone(700, 40));
    again.end();
    expect(await again.done).toBe('finished');
    expect(again.sentSamples).toBe(320);
    // A play cut short by the leg's close gives its slot back too.
    const cut = leg.playUlaw(encodeMulaw(tone(500, 2000)));
    await until(() => asterisk.received.length >= 8);
    await leg.close();
    expect(await cut).toBe('stopped');
    await until(() => worker.countersInUse === 0);
  });

  it('slots: 1 sends all calls in one burst per period (one tick per period, not one per slot in use)', async () => {
    expect(() => new MediaWorker({ slots: 0 })).toThrow(/slots is 0: use 1 to 20/);
    expect(() => new MediaWorker({ slots: 2.5 })).toThrow(ConfigError);
    const range = testPortRange(130);
    const asterisk = await peer();
    // 60 calls playing 10 frames each: the default pacer fills a slot with 50 calls and opens a
    // second one, so it ticks twice a period; with one slot, once.
    const ticksFor = async (worker: MediaWorker): Promise<number> => {
      const legs = await Promise.all(
        Array.from({ length: 60 }, () => worker.openLeg({ ports: range, bindAddress: '127.0.0.1' })),
      );
      for (const leg of legs) leg.setRemote('127.0.0.1', asterisk.port);
      const before = await worker.pacerStats();
      const results = await Promise.all(legs.map((leg) => leg.playUlaw(encodeMulaw(tone(500, 200)))));
      expect(new Set(results)).toEqual(new Set(['finished']));
      const after = await worker.pacerStats();
      await Promise.all(legs.map((leg) => leg.close()));
      // Ticks skipped after a stall (a loaded machine) still count as the periods they were.
      return after.ticks + after.skippedTicks - before.ticks - before.skippedTicks;
    };
    const oneSlot = await ticksFor(newWorker({ slots: 1 }));
    const tenSlots = await ticksFor(newWorker());
    expect(oneSlot).toBeGreaterThanOrEqual(9);
    expect(oneSlot).toBeLessThanOrEqual(12);
    expect(tenSlots).toBeGreaterThanOrEqual(17);
  });

  it('commands of one turn go together and in order; one that cannot be posted loses none of the others', async () => {
    const { logger, lines } = textLogger();
    const worker = newWorker({ logger });
    const asterisk = await peer();
    const legs = await Promise.all(
      Array.from({ length: 4 }, () => worker.openLeg({ ports, bindAddress: '127.0.0.1' })),
    );
    // In one turn: each leg's remote, a play, a stop, and a second play (which alone must be heard),
    // with a command no worker can receive (a function cannot be cloned) among them.
    for (const leg of legs) leg.setRemote('127.0.0.1', asterisk.port);
    const stopped = legs.map((leg) => leg.play(tone(700, 400)));
    for (const leg of legs) void leg.stop();
    worker.send({ type: 'pacer', req: 0, extra: () => 0 } as unknown as Parameters<MediaWorker['send']>[0]);
    const played = legs.map((leg) => leg.play(tone(900, 60)));
    expect(await Promise.all(stopped)).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
    expect(await Promise.all(played)).toEqual(['finished', 'finished', 'finished', 'finished']);
    // Each leg sent exactly the second play's three frames.
    const stats = await Promise.all(legs.map((leg) => leg.fetchStats()));
    expect(stats.map((s) => s.sent)).toEqual([3, 3, 3, 3]);
    expect(lines.some((l) => l.includes('posting them one by one'))).toBe(true);
    expect(lines.some((l) => l.includes('A media command could not be posted') && l.includes('pacer'))).toBe(
      true,
    );
    expect(worker.failed).toBe(false);
  });

  it('a thrown error in the worker ends its legs with MediaWorkerError and a log line, not the process', async () => {
    const { logger, lines } = textLogger();
    const worker = newWorker({ logger });
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    const failures: MediaWorkerError[] = [];
    leg.onFailure((error) => failures.push(error));
    const playing = leg.play(tone(500, 5000));
    await until(() => asterisk.received.length >= 2);
    worker.crashForTest();
    expect(await playing).toBe('stopped');
    await until(() => failures.length === 1);
    expect(failures[0]).toBeInstanceOf(MediaWorkerError);
    expect(failures[0]!.code).toBe('MEDIA_WORKER');
    expect(leg.failure).toBe(failures[0]);
    expect(worker.failed).toBe(true);
    expect(lines.some((l) => l.includes('The media worker failed'))).toBe(true);
    await expect(worker.openLeg({ ports, bindAddress: '127.0.0.1' })).rejects.toBeInstanceOf(
      MediaWorkerError,
    );
    await leg.close();
    // A new worker carries on.
    const next = newWorker();
    const again = await next.openLeg({ ports, bindAddress: '127.0.0.1' });
    again.setRemote('127.0.0.1', asterisk.port);
    await expect(again.play(tone(500, 60))).resolves.toBe('finished');
  });
  it('SCHED_FIFO refused (no chrt on the PATH here): the nice value instead, the reason, and a warning', async () => {
    const { logger, lines } = textLogger();
    const path = process.env.PATH;
    let worker: MediaWorker;
    try {
      // The worker thread takes a copy of process.env when it starts.
      process.env.PATH = '/nonexistent';
      worker = newWorker({ logger, realtimePriority: 10, threadPriority: -10 });
    } finally {
      process.env.PATH = path;
    }
    await worker.ready;
    expect(worker.priority).toMatch(/ \(SCHED_FIFO refused: .*ENOENT.*\)$/);
    if (process.getuid?.() === 0) expect(worker.priority.startsWith('nice -10 (')).toBe(true);
    expect(lines.some((l) => l.includes('The media worker could not run in SCHED_FIFO'))).toBe(true);
    // It carries audio all the same.
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    await expect(leg.play(tone(500, 60))).resolves.toBe('finished');
  });
});

describe('The shared media worker', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  /** Plays `ms` of a tone through a leg of `worker` and waits for its frames at the far end. */
  async function carriesAudio(worker: MediaWorker, ms: number): Promise<void> {
    const asterisk = await peer();
    const leg = await worker.openLeg({ ports, bindAddress: '127.0.0.1' });
    leg.setRemote('127.0.0.1', asterisk.port);
    await expect(leg.play(tone(500, ms))).resolves.toBe('finished');
    await until(() => asterisk.received.length === ms / 20);
    await leg.close();
  }

  it('asks for nice −10 for its thread (granted to root), or what ASTERAMISK_MEDIA_PRIORITY says (SCHED_FIFO with realtime)', async () => {
    vi.stubEnv('ASTERAMISK_MEDIA_PRIORITY', undefined);
    const worker = MediaWorker.shared;
    await worker.ready;
    if (process.getuid?.() === 0) expect(worker.priority).toBe('nice -10');
    else expect(worker.priority).toMatch(/^not raised: /);
    await worker.close();

    vi.stubEnv('ASTERAMISK_MEDIA_PRIORITY', 'default');
    const unchanged = MediaWorker.shared;
    expect(unchanged).not.toBe(worker);
    await unchanged.ready;
    expect(unchanged.priority).toBe('default');
    await unchanged.close();

    vi.stubEnv('ASTERAMISK_MEDIA_PRIORITY', 'realtime:20');
    const realtime = MediaWorker.shared;
    await realtime.ready;
    if (process.getuid?.() === 0) expect(realtime.priority).toBe('SCHED_FIFO 20');
    else expect(realtime.priority).toMatch(/\(SCHED_FIFO refused: .+\)$/);
    await carriesAudio(realtime, 60);
    await realtime.close();

    for (const bad of ['fast', 'realtime:0', 'realtime:100', 'realtime:-5', '-10x']) {
      vi.stubEnv('ASTERAMISK_MEDIA_PRIORITY', bad);
      expect(() => MediaWorker.shared).toThrow(`ASTERAMISK_MEDIA_PRIORITY is "${bad}"`);
    }
    expect(() => new MediaWorker({ realtimePriority: 0 })).toThrow(/realtimePriority is 0/);
  });

  it('paces with the precise clock over 10 slots, or as ASTERAMISK_MEDIA_PACING says (burst: timers, one slot)', async () => {
    vi.stubEnv('ASTERAMISK_MEDIA_PACING', undefined);
    const precise = MediaWorker.shared;
    expect(precise.pacing).toBe('precise clock, 10 slots');
    await precise.close();

    vi.stubEnv('ASTERAMISK_MEDIA_PACING', 'burst');
    const burst = MediaWorker.shared;
    expect(burst).not.toBe(precise);
    expect(burst.pacing).toBe('timers clock, 1 slot');
    await carriesAudio(burst, 100);
    await burst.close();

    vi.stubEnv('ASTERAMISK_MEDIA_PACING', 'fast');
    expect(() => MediaWorker.shared).toThrow('ASTERAMISK_MEDIA_PACING is "fast"');
  });
});

describe('CallMedia in a media worker, through the simulated Asterisk', () => {
  async function call(): Promise<{
    sim: Simulator;
    ari: AriClient;
    callerId: string;
    media: CallMedia;
    worker: MediaWorker;
    lines: string[];
  }> {
    const sim = await Simulator.start({ timeScale: 0.05 });
    cleanups.push(() => sim.close());
    sim.addExtension('asteramisk-call', '1000', 1, 'Stasis', 'media-test,call');
    const ari = new AriClient({
      url: sim.ariUrl,
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
      app: 'media-test',
    });
    await ari.connect();
    cleanups.push(() => ari.close());
    const started = new Promise<StasisStartEvent>((resolve) => ari.once('StasisStart', resolve));
    const phone = await sim.call({ from: 'alice', to: '1000' });
    const callerId = (await started).channel.id;
    await ari.channels.answer(callerId);
    const { logger, lines } = textLogger();
    const worker = newWorker();
    const media = await CallMedia.open({
      ari,
      channelId: callerId,
      allocator: new PortAllocator(ports),
      bindAddress: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      worker,
      logger,
    });
    cleanups.push(() => media.close());
    cleanups.push(() => phone.hangup().catch(() => {}));
    return { sim, ari, callerId, media, worker, lines };
  }

  it('plays to the phone and hears it, with the same CallMedia API', async () => {
    const { media } = await call();
    const heard: Uint8Array[] = [];
    media.onPayload((ulaw) => heard.push(ulaw.slice()));
    await expect(media.play(tone(1000, 200))).resolves.toBe('finished');
    expect(media.stats.framesPlayed).toBe(10);
    expect(media.player).toBeUndefined();
  });

  it('the worker failing ends the call: plays reject with MediaWorkerError, the caller is hung up, a log line', async () => {
    const { ari, callerId, media, worker, lines } = await call();
    const gone = new Promise<void>((resolve) =>
      ari.on('StasisEnd', (event) => {
        if (event.channel.id === callerId) resolve();
      }),
    );
    const onTheWire = new Promise((resolve) => media.onFirstPacket(resolve));
    const playing = media.play(tone(500, 5000));
    await onTheWire;
    worker.crashForTest();
    await expect(playing).rejects.toBeInstanceOf(MediaWorkerError);
    expect(await media.closed).toBe('media-failed');
    expect(media.error).toBeInstanceOf(MediaWorkerError);
    await gone;
    expect(lines.some((l) => l.includes('The media worker failed; hanging up the call'))).toBe(true);
    // Later plays say why too.
    await expect(media.play(tone(500, 100))).rejects.toBeInstanceOf(MediaWorkerError);
  });
});

describe('A Server with mediaWorker: true', () => {
  it('runs an IVR call with its RTP in the worker, and a worker failure ends the call with MediaWorkerError', async () => {
    const h = await startVoiceHarness({ server: { mediaWorker: true } });
    cleanups.push(() => h.close());
    const digits = deferred<string>();
    const ended: { error?: unknown }[] = [];
    h.server.on('callEnded', (_ui, outcome) => ended.push(outcome));
    let calls = 0;
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        calls++;
        await ui.answer();
        if (calls === 1) {
          digits.resolve(await ui.gather('Enter your code'));
          return;
        }
        // The second call: a long prompt, during which the worker fails.
        await ui.say('This is a long message that keeps playing while the media worker fails under it.');
      },
    });
    const first = await h.sim.call({ from: 'alice', to: '1000' });
    await first.waitForAudio(10);
    await first.press('42#');
    expect(await digits.promise).toBe('42');
    await first.ended();

    const second = await h.sim.call({ from: 'alice', to: '1000' });
    await second.waitForAudio(40);
    MediaWorker.shared.crashForTest();
    await second.ended();
    await until(() => ended.length === 2);
    expect(ended[1]!.error).toBeInstanceOf(MediaWorkerError);
    // The process carries on, and so does the next call, on a new worker.
    const third = await h.sim.call({ from: 'alice', to: '1000' });
    await third.waitForAudio(40);
    await third.hangup();
  });
});
