import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { AriClient, type AriClientOptions } from '../src/asterisk/ari-client.js';
import { AuthenticationError } from '../src/errors.js';
import { Simulator } from '../src/sandbox/simulator.js';
import {
  AriFixture,
  channel,
  connected,
  dtmf,
  envelope,
  HTML_404,
  nextClientEvent,
  stasisStart,
} from './support/ari-fixture.js';
import { within } from './support/within.js';

const fixtures: AriFixture[] = [];
const clients: AriClient[] = [];

async function fixture(options?: { autoPong?: boolean }): Promise<AriFixture> {
  const f = await AriFixture.start(options);
  // After a reconnect the client lists channels: answer with none unless a test says otherwise.
  f.onRequest = () => ({ status: 200, body: '[]' });
  fixtures.push(f);
  return f;
}

function client(url: string, extra: Partial<AriClientOptions> = {}): AriClient {
  const c = new AriClient({
    url,
    username: 'asterisk',
    password: 'asterisk',
    app: 'test',
    reconnect: { initialMs: 20, maxMs: 100 },
    ...extra,
  });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

const next = nextClientEvent;

/** Records the order of the client's lifecycle emissions. */
function timeline(c: AriClient): string[] {
  const log: string[] = [];
  c.on('disconnected', (info) => {
    log.push(`disconnected:${info.code}`);
  });
  c.on('reconnected', () => {
    log.push('reconnected');
  });
  c.on('channelLost', (id) => {
    log.push(`channelLost:${id}`);
  });
  c.on('error', (e) => {
    log.push(`error:${e.name}`);
  });
  return log;
}

// ---------------------------------------------------------------------------------------------

describe('AriClient reconnection (fixture)', () => {
  it('reconnects after a drop without close frame (1006), through HTML 404 and 503, then delivers once', async () => {
    const f = await fixture();
    const c = client(f.url);
    const log = timeline(c);
    await connected(f, c);

    // Restart: socket dropped; while booting the HTTP server answers HTML 404, then 503.
    let attempts = 0;
    f.onUpgrade = () => {
      attempts++;
      if (attempts <= 2) return { status: 404, body: HTML_404, contentType: 'text/html' };
      if (attempts <= 4) return { status: 503, body: '{"message":"Asterisk not booted"}' };
      return 'accept';
    };
    const disconnected = next(c, 'disconnected');
    const reconnected = next(c, 'reconnected');
    const reopened = f.nextSocket();
    f.dropAll();
    const [info] = await disconnected;
    expect(info.code).toBe(1006);
    await within(reopened);
    const [r] = await reconnected;
    expect(r).toEqual({ lostChannelIds: [], resynchronised: true });
    expect(attempts).toBe(5);
    expect(log).toEqual(['disconnected:1006', 'reconnected']);
    expect(c.connected).toBe(true);

    // Listeners registered once still work, and each event arrives exactly once.
    const digits: string[] = [];
    c.on('ChannelDtmfReceived', (e) => {
      digits.push(e.digit);
    });
    const done = new Promise<void>((resolve) =>
      c.on('ChannelDtmfReceived', (e) => e.digit === '#' && resolve()),
    );
    f.send(dtmf('1.1', '1'));
    f.send(dtmf('1.1', '#'));
    await within(done);
    expect(digits).toEqual(['1', '#']);
    expect(f.maxConcurrent).toBe(1);
  });

  it('emits channelLost for tracked channels gone after the reconnect, then reconnected', async () => {
    const f = await fixture();
    const c = client(f.url);
    const log = timeline(c);
    await connected(f, c);
    const started = new Promise<void>((resolve) =>
      c.on('StasisStart', (e) => e.channel.id === 'keep' && resolve()),
    );
    f.send(stasisStart('lost-1'));
    f.send(stasisStart('ended'));
    f.send({ ...envelope('StasisEnd'), channel: channel('ended') });
    f.send(stasisStart('keep'));
    await within(started);
    expect([...c.stasisChannelIds].sort()).toEqual(['keep', 'lost-1']);

    // After the reconnect, a new call's StasisStart arrives before GET /channels answers, and that
    // answer does not list it: it must not be reported as lost.
    let releaseList: () => void = () => {};
    const listAsked = new Promise<void>((resolve) => {
      f.onRequest = async (req) => {
        if (req.method === 'GET' && req.url === '/ari/channels') {
          resolve();
          await new Promise<void>((r) => {
            releaseList = r;
          });
          return { status: 200, body: JSON.stringify([channel('keep')]) };
        }
        return { status: 404, body: '{"message":"Resource not found"}' };
      };
    });
    const reconnected = next(c, 'reconnected');
    f.dropAll();
    await within(listAsked, 5000, 'GET /channels');
    const newCall = next(c, 'StasisStart');
    f.send(stasisStart('new-during-resync'));
    await newCall;
    releaseList();
    const [info] = await reconnected;
    expect(info).toEqual({ lostChannelIds: ['lost-1'], resynchronised: true });
    expect(log).toEqual(['disconnected:1006', 'channelLost:lost-1', 'reconnected']);
    expect([...c.stasisChannelIds].sort()).toEqual(['keep', 'new-during-resync']);
  });

  it('on 401 at reconnect emits exactly one AuthenticationError and stops retrying', async () => {
    const f = await fixture();
    const c = client(f.url);
    const log = timeline(c);
    await connected(f, c);
    f.onUpgrade = () => ({ status: 401, body: '{"message":"Authentication required"}' });
    const error = next(c, 'error');
    f.dropAll();
    const [e] = await error;
    expect(e).toBeInstanceOf(AuthenticationError);
    expect(c.state).toBe('failed');
    const upgradesAtError = f.upgrades.length;
    // Proving a negative needs a wait: several backoff periods (20–100 ms) pass without a retry.
    await new Promise((r) => setTimeout(r, 400));
    expect(f.upgrades.length).toBe(upgradesAtError);
    expect(log).toEqual(['disconnected:1006', 'error:AuthenticationError']);
  });

  it('keeps retrying while refused and stops when closed', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    let refusals = 0;
    const threeRefusals = new Promise<void>((resolve) => {
      f.onUpgrade = () => {
        refusals++;
        if (refusals === 3) resolve();
        return { status: 503, body: '{"message":"Asterisk not booted"}' };
      };
    });
    f.dropAll();
    await within(threeRefusals);
    await c.close();
    expect(c.state).toBe('closed');
    const after = f.upgrades.length;
    // Proving an absence needs time: several backoff periods (20–100 ms) pass without a retry.
    await new Promise((r) => setTimeout(r, 300));
    expect(f.upgrades.length).toBe(after);
  });

  it('treats a missing pong as a dead connection, terminates it and reconnects', async () => {
    const f = await fixture({ autoPong: false });
    const c = client(f.url, { pingIntervalMs: 50, pongTimeoutMs: 100 });
    const log = timeline(c);
    const first = await connected(f, c);
    const pings = once(first, 'ping');
    const reconnected = next(c, 'reconnected');
    await within(pings, 2000, 'a ping');
    await reconnected;
    // The client cut the silent socket itself (no close frame from either side).
    expect(log[0]).toBe('disconnected:1006');
    expect(log).toContain('reconnected');
  });

  it('keeps a connection whose pongs arrive', async () => {
    const f = await fixture({ autoPong: true });
    const c = client(f.url, { pingIntervalMs: 30, pongTimeoutMs: 1000 });
    const log = timeline(c);
    const ws = await connected(f, c);
    let pings = 0;
    const tenPings = new Promise<void>((resolve) =>
      ws.on('ping', () => {
        if (++pings === 10) resolve();
      }),
    );
    await within(tenPings, 3000, 'ten pings');
    expect(log).toEqual([]);
    expect(c.connected).toBe(true);
  });

  it('does not report lost channels when GET /channels keeps failing, but says so', async () => {
    const f = await fixture();
    const c = client(f.url);
    const log = timeline(c);
    await connected(f, c);
    const started = next(c, 'StasisStart');
    f.send(stasisStart('a'));
    await started;
    f.onRequest = () => ({ status: 500, body: '{"message":"Internal Server Error"}' });
    const reconnected = next(c, 'reconnected');
    f.dropAll();
    const [info] = await reconnected;
    expect(info.resynchronised).toBe(false);
    expect(log).toEqual(['disconnected:1006', 'error:AsteriskConnectionError', 'reconnected']);
    expect([...c.stasisChannelIds]).toEqual(['a']);
  });
});

// ---------------------------------------------------------------------------------------------
// Against the simulated Asterisk 22: `sim.restart()` behaves like `core restart now`.
// ---------------------------------------------------------------------------------------------

describe('AriClient reconnection against the simulator', () => {
  const sims: Simulator[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(sims.splice(0).map((s) => s.close()));
  });

  it('survives a restart mid-session: disconnected, channelLost, reconnected, then works with no duplicates', async () => {
    const sim = await Simulator.start({ callContext: 'from-sip' });
    sims.push(sim);
    sim.addExtension('from-sip', '1000', 1, 'Stasis', 'restartapp,1000');
    const c = client(sim.ariUrl, {
      app: 'restartapp',
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
    });
    const log = timeline(c);
    const dtmfDeliveries: string[] = [];
    c.on('ChannelDtmfReceived', (e) => {
      dtmfDeliveries.push(`${e.channel.id}:${e.digit}`);
    });
    const eventDeliveries: string[] = [];
    c.on('event', (e) => {
      if (e.type === 'ChannelDtmfReceived') eventDeliveries.push(`${e.channel.id}:${e.digit}`);
    });
    await c.connect();

    // A call in progress when Asterisk restarts.
    const firstStart = next(c, 'StasisStart');
    const before = await sim.call({ from: 'alice', to: '1000' });
    await firstStart;
    await c.channels.answer(before.channelId);
    expect([...c.stasisChannelIds]).toEqual([before.channelId]);

    const disconnected = next(c, 'disconnected');
    const lost = next(c, 'channelLost', 10_000);
    const reconnected = next(c, 'reconnected', 10_000);
    await sim.restart({ bootMs: 150, crash: true });
    expect((await disconnected)[0].code).toBe(1006);
    expect((await lost)[0]).toBe(before.channelId);
    const [info] = await reconnected;
    expect(info).toEqual({ lostChannelIds: [before.channelId], resynchronised: true });
    expect(log).toEqual(['disconnected:1006', `channelLost:${before.channelId}`, 'reconnected']);
    expect(c.stasisChannelIds.size).toBe(0);
    expect(c.connected).toBe(true);

    // It works again: the app was re-registered on the new socket, the seeded dialplan is back.
    const secondStart = next(c, 'StasisStart');
    const after = await sim.call({ from: 'alice', to: '1000' });
    expect((await secondStart)[0].channel.id).toBe(after.channelId);
    await c.channels.answer(after.channelId);
    const digit = next(c, 'ChannelDtmfReceived');
    await after.press('7');
    await digit;
    // Barrier: a user event round trip over the same socket, so any duplicate would be here by now.
    const barrier = next(c, 'ChannelUserevent');
    await c.events.userEvent('barrier', { source: `channel:${after.channelId}` });
    await barrier;
    expect(dtmfDeliveries).toEqual([`${after.channelId}:7`]);
    expect(eventDeliveries).toEqual([`${after.channelId}:7`]);
    expect((await c.applications.list()).map((a) => a.name)).toEqual(['restartapp']);
  });

  it('recovers from a restart during boot, then from another restart', async () => {
    const sim = await Simulator.start({ callContext: 'from-sip' });
    sims.push(sim);
    sim.addExtension('from-sip', '1000', 1, 'Stasis', 'twice,1000');
    const c = client(sim.ariUrl, {
      app: 'twice',
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
    });
    const log = timeline(c);
    await c.connect();
    // A restart while the previous one is still booting (ARI answering 503): one outage, one recovery.
    const first = next(c, 'reconnected', 10_000);
    await sim.restart({ bootMs: 300 });
    await sim.restart({ bootMs: 100 });
    await first;
    expect(log).toEqual(['disconnected:1006', 'reconnected']);
    // And a plain restart after that.
    const second = next(c, 'reconnected', 10_000);
    await sim.restart({ bootMs: 100 });
    await second;
    expect(log).toEqual(['disconnected:1006', 'reconnected', 'disconnected:1006', 'reconnected']);
    const started = next(c, 'StasisStart');
    await sim.call({ from: 'alice', to: '1000' });
    expect((await started)[0].args).toEqual(['1000']);
  });
});
