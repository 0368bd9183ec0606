import { exec } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AriClient, type AriClientEvents } from '../../src/asterisk/ari-client.js';
import { AriNotFoundError, AriStateError, AuthenticationError } from '../../src/errors.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { catchError, within } from '../support/within.js';

/**
 * The basic ARI client checks against a real Asterisk 22. They run only when ASTERISK_HOST is
 * set, with ASTERISK_ARI_PORT (default 8088), ASTERISK_ARI_USER and ASTERISK_ARI_PASS. Nothing
 * here needs a SIP phone. The restart check also needs ASTERISK_RESTART_COMMAND (e.g.
 * `asterisk -rx 'core restart now'`), because it ends every call on that PBX.
 */
const host = process.env.ASTERISK_HOST;
realAsteriskAvailable('ari.real.test.ts');
const port = process.env.ASTERISK_ARI_PORT ?? '8088';
const username = process.env.ASTERISK_ARI_USER ?? 'asteramisk';
const password = process.env.ASTERISK_ARI_PASS ?? 'asteramisk';
const restartCommand = process.env.ASTERISK_RESTART_COMMAND;
const url = `http://${host ?? '127.0.0.1'}:${port}`;

function next<K extends keyof AriClientEvents>(
  c: AriClient,
  name: K,
  match: (...args: AriClientEvents[K]) => boolean = () => true,
  ms = 5000,
): Promise<AriClientEvents[K]> {
  return within(
    new Promise((resolve) => {
      const listener = (...args: AriClientEvents[K]): void => {
        if (!match(...args)) return;
        c.off(name, listener);
        resolve(args);
      };
      c.on(name, listener);
    }),
    ms,
    `'${name}'`,
  );
}

/**
 * A TCP relay between the client and Asterisk that the test can cut: every connection is dropped
 * and new ones are refused until `resume()`. Asterisk sees its websocket close while it keeps
 * running, which is how events get lost in real life (a network outage, a dead NAT mapping).
 */
class CuttableRelay {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = tcpConnect(this.targetPort, this.targetHost);
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.#sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  resume(): Promise<void> {
    return this.start();
  }
}

describe.skipIf(!host)(
  'AriClient against a real Asterisk 22 (requires ASTERISK_HOST, ASTERISK_ARI_PORT/USER/PASS)',
  () => {
    // A unique app per run: other test files may use the same Asterisk at the same time.
    const app = `asteramisk-real-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const client = new AriClient({
      url,
      username,
      password,
      app,
      reconnect: { initialMs: 100, maxMs: 1000 },
    });
    const errors: Error[] = [];
    client.on('error', (e) => {
      errors.push(e);
    });

    beforeAll(async () => {
      await client.connect();
    });

    afterAll(async () => {
      await client.close();
    });

    it('connects and registers the app', async () => {
      expect(client.connected).toBe(true);
      const registered = await client.applications.get(app);
      expect(registered.name).toBe(app);
    });

    it('reports Asterisk 22 in info, answers ping', async () => {
      const info = await client.asterisk.info();
      expect(info.system?.version).toMatch(/^22\./);
      expect(info.build?.os).toBeTypeOf('string');
      const ping = await client.asterisk.ping();
      expect(ping.ping).toBe('pong');
      expect((await client.asterisk.info('system')).build).toBeUndefined();
    });

    it('lists channels, endpoints and modules', async () => {
      const channels = await client.channels.list();
      expect(Array.isArray(channels)).toBe(true);
      const endpoints = await client.endpoints.list();
      expect(endpoints.length).toBeGreaterThan(0);
      for (const e of endpoints) {
        expect(e.technology).toBeTypeOf('string');
        expect(Array.isArray(e.channel_ids)).toBe(true);
      }
      const modules = await client.asterisk.listModules();
      expect(modules.map((m) => m.name)).toContain('res_ari.so');
    });

    it('maps a 404 on an unknown channel to AriNotFoundError', async () => {
      const error = await catchError(client.channels.get('asteramisk-no-such-channel'));
      expect(error).toBeInstanceOf(AriNotFoundError);
      expect((error as AriNotFoundError).status).toBe(404);
      expect((error as AriNotFoundError).asteriskMessage).toBe('Channel not found');
    });

    it('rejects a wrong password with AuthenticationError (websocket and REST)', async () => {
      const wrong = new AriClient({ url, username, password: `${password}-wrong`, app: `${app}-wrong` });
      const wrongErrors: Error[] = [];
      wrong.on('error', (e) => {
        wrongErrors.push(e);
      });
      expect(await catchError(wrong.connect())).toBeInstanceOf(AuthenticationError);
      expect(await catchError(wrong.asterisk.ping())).toBeInstanceOf(AuthenticationError);
      expect(wrongErrors).toEqual([]);
      await wrong.close();
    });

    it('subscribes to and unsubscribes from an endpoint event source', async () => {
      const [endpoint] = await client.endpoints.list();
      if (!endpoint) throw new Error('the Asterisk has no endpoint');
      const source = `endpoint:${endpoint.technology}/${endpoint.resource}`;
      const subscribed = await client.applications.subscribe(app, source);
      expect(subscribed.endpoint_ids).toContain(`${endpoint.technology}/${endpoint.resource}`);
      const unsubscribed = await client.applications.unsubscribe(app, source);
      expect(unsubscribed.endpoint_ids).not.toContain(`${endpoint.technology}/${endpoint.resource}`);
      const again = await catchError(client.applications.unsubscribe(app, source));
      expect(again).toBeInstanceOf(AriStateError);
      expect((again as AriStateError).asteriskMessage).toBe('Event source was not subscribed to');
    });

    it('delivers events: a user event, and an externalMedia channel from StasisStart to StasisEnd', async () => {
      const userEvent = next(client, 'ChannelUserevent', (e) => e.eventname === 'AsteramiskRealTest');
      await client.events.userEvent('AsteramiskRealTest', { variables: { key1: 'value1' } });
      const [u] = await userEvent;
      expect(u.userevent).toMatchObject({ key1: 'value1', eventname: 'AsteramiskRealTest' });

      // externalMedia needs no SIP phone: Asterisk creates a UnicastRTP channel straight into Stasis.
      const started = next(client, 'StasisStart');
      const channel = await client.channels.externalMedia({
        externalHost: '127.0.0.1:40999',
        format: 'ulaw',
      });
      expect(channel.channelvars?.UNICASTRTP_LOCAL_ADDRESS).toBe('127.0.0.1');
      const [start] = await started;
      expect(start.channel.id).toBe(channel.id);
      expect(start.args).toEqual([]);
      expect(client.stasisChannelIds.has(channel.id)).toBe(true);
      const ended = next(client, 'StasisEnd', (e) => e.channel.id === channel.id);
      // StasisEnd comes before the channel is destroyed: a second hangup right after it can still
      // find the channel (seen once on 22.10.1). The app that created it also gets ChannelDestroyed.
      const destroyed = next(client, 'ChannelDestroyed', (e) => e.channel.id === channel.id);
      await client.channels.hangup(channel.id);
      await ended;
      expect(client.stasisChannelIds.has(channel.id)).toBe(false);
      await destroyed;
      expect(await catchError(client.channels.hangup(channel.id))).toBeInstanceOf(AriNotFoundError);
      // Every frame the real Asterisk sent parsed cleanly.
      expect(errors).toEqual([]);
    });

    it('reports a channel that ended while the websocket was cut as channelLost, then reconnected', async () => {
      const relay = new CuttableRelay(host ?? '127.0.0.1', Number(port));
      await relay.start();
      const relayed = new AriClient({
        url: `http://127.0.0.1:${relay.port}`,
        username,
        password,
        app: `${app}-relayed`,
        reconnect: { initialMs: 50, maxMs: 200 },
      });
      try {
        const log: string[] = [];
        relayed.on('disconnected', (i) => {
          log.push(`disconnected:${i.code}`);
        });
        relayed.on('StasisEnd', () => {
          log.push('StasisEnd');
        });
        relayed.on('channelLost', (id) => {
          log.push(`channelLost:${id}`);
        });
        relayed.on('reconnected', () => {
          log.push('reconnected');
        });
        await relayed.connect();
        const started = next(relayed, 'StasisStart');
        const channel = await relayed.channels.externalMedia({
          externalHost: '127.0.0.1:40997',
          format: 'ulaw',
        });
        await started;

        const disconnected = next(relayed, 'disconnected');
        await relay.cut();
        await disconnected;
        // The call ends while nobody listens: Asterisk does not keep or replay its StasisEnd.
        await client.channels.hangup(channel.id);
        const reconnected = next(relayed, 'reconnected', () => true, 10_000);
        await relay.resume();
        const [info] = await reconnected;
        expect(info).toEqual({ lostChannelIds: [channel.id], resynchronised: true });
        expect(log).toEqual(['disconnected:1006', `channelLost:${channel.id}`, 'reconnected']);
        expect(relayed.stasisChannelIds.size).toBe(0);
      } finally {
        await relayed.close();
        await relay.cut();
      }
    });

    it.skipIf(!restartCommand)(
      'reconnects after a real restart; the channel it had ends exactly once (needs ASTERISK_RESTART_COMMAND)',
      async () => {
        const started = next(client, 'StasisStart');
        const channel = await client.channels.externalMedia({
          externalHost: '127.0.0.1:40998',
          format: 'ulaw',
        });
        await started;
        const log: string[] = [];
        client.on('disconnected', (i) => {
          log.push(`disconnected:${i.code}`);
        });
        client.on('StasisEnd', (e) => {
          if (e.channel.id === channel.id) log.push('StasisEnd');
        });
        client.on('channelLost', (id) => {
          if (id === channel.id) log.push('channelLost');
        });
        const reconnected = next(client, 'reconnected', () => true, 60_000);
        await promisify(exec)(restartCommand ?? '');
        await reconnected;
        // A graceful `core restart now` hangs the channel up first (ChannelHangupRequest{cause:4,
        // soft:true}, StasisEnd) and then drops the socket (1006). Had the StasisEnd been lost, the
        // resync would have reported channelLost instead. Either way the owner hears of it once.
        const ends = log.filter((l) => l === 'StasisEnd' || l === 'channelLost');
        expect(ends).toHaveLength(1);
        expect(log).toContain('disconnected:1006');
        expect(client.stasisChannelIds.has(channel.id)).toBe(false);
        expect((await client.applications.get(app)).name).toBe(app);
        expect(errors).toEqual([]);
      },
      70_000,
    );
  },
);
