import { afterEach, describe, expect, it } from 'vitest';
import { AriClient } from '../src/asterisk/ari-client.js';
import { watchChannel } from '../src/asterisk/channel-watch.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { nextClientEvent } from './support/ari-fixture.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function appOn(): Promise<{ sim: Simulator; ari: AriClient }> {
  const sim = await Simulator.start({ callContext: 'from-sip' });
  cleanups.push(() => sim.close());
  const ari = new AriClient({
    url: sim.ariUrl,
    app: 'watch',
    username: sim.credentials.ariUser,
    password: sim.credentials.ariPassword,
  });
  cleanups.push(() => ari.close());
  sim.addExtension('from-sip', '1000', 1, 'Stasis', 'watch,1000');
  await ari.connect();
  return { sim, ari };
}

const listeners = (ari: AriClient): number =>
  ari.listenerCount('StasisStart') +
  ari.listenerCount('StasisEnd') +
  ari.listenerCount('ChannelDestroyed') +
  ari.listenerCount('channelLost');

describe('watchChannel', () => {
  it("calls only the watched channel's handlers, with one client listener per event however many are watched", async () => {
    const { sim, ari } = await appOn();
    expect(listeners(ari)).toBe(0);
    const started = [nextClientEvent(ari, 'StasisStart'), nextClientEvent(ari, 'StasisStart')];
    const alice = await sim.call({ from: 'alice', to: '1000' });
    const bob = await sim.call({ from: 'bob', to: '1000' });
    await Promise.all(started);

    const seen: string[] = [];
    const stops = [alice, bob].map((phone) =>
      watchChannel(ari, phone.channelId, {
        end: () => seen.push(`${phone.channelId === alice.channelId ? 'alice' : 'bob'} end`),
        destroyed: (e) => seen.push(`${e.channel.id === alice.channelId ? 'alice' : 'bob'} destroyed`),
      }),
    );
    // Many more watches of channels that do not exist: still one listener per event.
    const idle = Array.from({ length: 500 }, (_, i) =>
      watchChannel(ari, `nobody-${i}`, { end: () => seen.push('wrong') }),
    );
    expect(listeners(ari)).toBe(4);

    const aliceGone = nextClientEvent(ari, 'StasisEnd');
    await alice.hangup();
    await aliceGone;
    // (Asterisk sends ChannelDestroyed of an inbound channel only to apps subscribed to all.)
    expect(seen).toEqual(['alice end']);

    for (const stop of [...stops, ...idle]) stop();
    expect(listeners(ari)).toBe(0);
    // Stopping twice is harmless; a stopped watch hears nothing.
    stops[1]!();
    const bobGone = nextClientEvent(ari, 'StasisEnd');
    await bob.hangup();
    await bobGone;
    expect(seen).toEqual(['alice end']);
  });

  it('lets a handler stop its own watch, and others of the same channel still run', async () => {
    const { sim, ari } = await appOn();
    const started = nextClientEvent(ari, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    const calls: string[] = [];
    const stopFirst = watchChannel(ari, phone.channelId, {
      end: () => {
        calls.push('first');
        stopFirst();
      },
    });
    watchChannel(ari, phone.channelId, { end: () => calls.push('second') });
    const gone = nextClientEvent(ari, 'StasisEnd');
    await phone.hangup();
    await gone;
    expect(calls).toEqual(['first', 'second']);
  });
});
