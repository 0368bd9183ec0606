import { afterEach, describe, expect, it } from 'vitest';
import { AriClient } from '../src/asterisk/ari-client.js';
import type { StasisStartEvent } from '../src/asterisk/ari-events.js';
import { HangupError, MediaSetupError } from '../src/errors.js';
import { CallMedia, type CallMediaOptions } from '../src/media/call-media.js';
import { decodeMulaw, encodeMulaw } from '../src/media/g711.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { tone } from '../src/media/tone.js';
import type { SimPhone } from '../src/sandbox/sim-phone.js';
import { Simulator } from '../src/sandbox/simulator.js';

const base = 20000 + Math.floor(Math.random() * 10000);
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Frequency of a clean tone from its zero crossings. */
function frequency(pcm: Int16Array): number {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 !== pcm[i]! < 0) crossings++;
  return crossings / 2 / (pcm.length / 8000);
}

/** The middle of a buffer: the tone without its fades and the edges of the path. */
function middle(pcm: Int16Array, ms: number): Int16Array {
  const start = Math.floor((pcm.length - ms * 8) / 2);
  return pcm.subarray(start, start + ms * 8);
}

interface Harness {
  sim: Simulator;
  ari: AriClient;
  allocator: PortAllocator;
  phone: SimPhone;
  callerId: string;
  options: CallMediaOptions;
}

/** A simulator, a connected client and one answered call from alice to 1000, in Stasis. */
async function answeredCall(): Promise<Harness> {
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
  const started = new Promise<StasisStartEvent>((resolve) => {
    const listener = (e: StasisStartEvent): void => {
      if (e.args[0] !== 'call') return;
      ari.off('StasisStart', listener);
      resolve(e);
    };
    ari.on('StasisStart', listener);
  });
  const phone = await sim.call({ from: 'alice', to: '1000' });
  const callerId = (await started).channel.id;
  await ari.channels.answer(callerId);
  const allocator = new PortAllocator({ min: base, max: base + 20 });
  const options: CallMediaOptions = {
    ari,
    channelId: callerId,
    allocator,
    bindAddress: '127.0.0.1',
    advertiseHost: '127.0.0.1',
  };
  return { sim, ari, allocator, phone, callerId, options };
}

async function openMedia(h: Harness): Promise<CallMedia> {
  const media = await CallMedia.open(h.options);
  cleanups.push(() => media.close());
  return media;
}

/** Asserts nothing of the media is left: no bridge, only the caller's channel (if alive), no port. */
async function expectReleased(h: Harness, media: CallMedia, callerAlive: boolean): Promise<void> {
  expect(await h.ari.bridges.list()).toEqual([]);
  const channels = (await h.ari.channels.list()).map((c) => c.id);
  expect(channels).toEqual(callerAlive ? [h.callerId] : []);
  expect(h.allocator.inUse).toBe(0);
  expect(h.allocator.holds(media.localPort)).toBe(false);
}

describe('CallMedia through the simulated Asterisk', () => {
  it('bridges the caller to an externalMedia channel on a port of the range', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    expect(h.allocator.holds(media.localPort)).toBe(true);
    const bridge = await h.ari.bridges.get(media.bridgeId);
    expect(new Set(bridge.channels)).toEqual(new Set([h.callerId, media.externalChannelId]));
    const external = await h.ari.channels.get(media.externalChannelId);
    expect(external.name).toContain(`UnicastRTP/127.0.0.1:${media.localPort}`);
  });

  it('(a) play() reaches the phone with the tone’s frequency', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const result = await media.play(tone(1000, 600));
    expect(result).toBe('finished');
    await h.phone.waitForAudio(560);
    const heard = h.phone.heard().audio;
    expect(frequency(middle(heard, 400))).toBeGreaterThan(950);
    expect(frequency(middle(heard, 400))).toBeLessThan(1050);
    expect(media.stats.framesPlayed).toBe(30);
  });

  it('(b) what the phone says reaches the onAudio listeners', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const frames: Int16Array[] = [];
    const enough = new Promise<void>((resolve) => {
      media.onAudio((pcm) => {
        frames.push(pcm);
        if (frames.length === 25) resolve();
      });
    });
    await h.phone.speak(tone(440, 500));
    await enough;
    const heard = new Int16Array(frames.length * 160);
    for (const [i, f] of frames.entries()) heard.set(f, i * 160);
    expect(frequency(middle(heard, 300))).toBeGreaterThan(420);
    expect(frequency(middle(heard, 300))).toBeLessThan(460);
    expect(media.stats).toMatchObject({ received: 25, droppedForeign: 0, late: 0, concealed: 0 });
  });

  it('µ-law both ways: onPayload gets the caller undecoded, playUlaw and streamUlaw reach the phone', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const frames: Uint8Array[] = [];
    const enough = new Promise<void>((resolve) => {
      media.onPayload((ulaw) => {
        frames.push(Uint8Array.from(ulaw));
        if (frames.length === 25) resolve();
      });
    });
    await h.phone.speak(tone(440, 500));
    await enough;
    const heard = decodeMulaw(Buffer.concat(frames));
    expect(frequency(middle(heard, 300))).toBeGreaterThan(420);
    expect(frequency(middle(heard, 300))).toBeLessThan(460);
    expect(media.stats.decodedFrames).toBe(0); // no PCM listener: nothing was decoded

    const firstPackets: number[] = [];
    media.onFirstPacket((info) => firstPackets.push(info.latencyMs));
    const prompt = encodeMulaw(tone(1000, 600));
    const stream = media.streamUlaw();
    stream.write(prompt.subarray(0, 2400));
    const tail = media.playUlaw(encodeMulaw(tone(1000, 200))); // queued behind the stream
    stream.write(prompt.subarray(2400));
    stream.end();
    expect(await stream.done).toBe('finished');
    expect(stream.sentSamples).toBe(prompt.length);
    expect(await tail).toBe('finished');
    await h.phone.waitForAudio(760);
    const played = h.phone.heard().audio;
    expect(frequency(middle(played, 600))).toBeGreaterThan(950);
    expect(frequency(middle(played, 600))).toBeLessThan(1050);
    expect(media.stats.framesPlayed).toBe(40);
    expect(firstPackets.length).toBe(2); // one per playback
  });

  it('(c) close() leaves no bridge, no externalMedia channel and frees the port', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const playing = media.play(tone(500, 2000));
    await h.phone.waitForAudio(40);
    await media.close();
    expect(await playing).toBe('stopped');
    expect(await media.closed).toBe('closed');
    await expectReleased(h, media, true);
    await media.close(); // idempotent
    // The caller is untouched: still up and in Stasis.
    expect(h.phone.hungUp).toBe(false);
  });

  it('(d) the caller hanging up while playing: play resolves stopped, the media closes itself', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const playing = media.play(tone(500, 3000));
    await h.phone.waitForAudio(100);
    await h.phone.hangup();
    expect(await playing).toBe('stopped');
    expect(await media.closed).toBe('caller-gone');
    expect(media.endReason).toBe('caller-gone');
    await media.close();
    await expectReleased(h, media, false);
    await expect(media.play(tone(500, 100))).resolves.toBe('stopped');
  });

  it('stop() (barge-in) cuts the prompt at the next tick and later plays still work', async () => {
    const h = await answeredCall();
    const media = await openMedia(h);
    const prompt = media.play(tone(500, 3000));
    await h.phone.waitForAudio(100);
    await media.stop();
    expect(await prompt).toBe('stopped');
    const sentAfterStop = media.stats.sent;
    await expect(media.play(tone(800, 100))).resolves.toBe('finished');
    expect(media.stats.sent).toBe(sentAfterStop + 5);
  });

  it('rolls everything back and throws a typed error when the externalMedia leg never arrives', async () => {
    const h = await answeredCall();
    // An app nobody runs: Asterisk creates the channel and hangs it up, our app never sees StasisStart.
    const error = await CallMedia.open({ ...h.options, app: 'nobody-runs-this', setupTimeoutMs: 300 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MediaSetupError);
    expect((error as MediaSetupError).step).toBe('creating the externalMedia channel');
    expect((error as Error).message).toMatch(/did not enter Stasis within 300 ms/);
    expect(await h.ari.bridges.list()).toEqual([]);
    expect((await h.ari.channels.list()).map((c) => c.id)).toEqual([h.callerId]);
    expect(h.allocator.inUse).toBe(0);
  });

  it('throws HangupError (and leaks nothing) for a caller that is already gone', async () => {
    const h = await answeredCall();
    await h.phone.hangup();
    await h.phone.ended();
    const error = await CallMedia.open(h.options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HangupError);
    expect(await h.ari.bridges.list()).toEqual([]);
    expect(await h.ari.channels.list()).toEqual([]);
    expect(h.allocator.inUse).toBe(0);
  });
});
