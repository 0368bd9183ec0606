import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AmiClient,
  type AmiClientOptions,
  type AmiDisconnectInfo,
  type AmiEvent,
} from '../src/asterisk/ami-client.js';
import { type AmiMessage, AmiParser, serializeAction } from '../src/asterisk/ami-codec.js';
import {
  AmiActionError,
  AsteriskConnectionError,
  AuthenticationError,
  InvalidInputError,
  TimeoutError,
} from '../src/errors.js';
import type { LogFields, Logger } from '../src/logger.js';
import {
  type AmiRequest,
  AmiServer,
  type AmiServerOptions,
  type AmiSessionContext,
  amiError,
  amiSuccess,
} from '../src/sandbox/ami-server.js';

const USER = 'asteramisk-test';
const SECRET = 'S3cr3t-ami-never-logged';

// ---- helpers ---------------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

/** A logger that keeps every line, to check what reaches logs. */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (fields: LogFields, message?: string): void => {
      lines.push(
        JSON.stringify({ level, message, fields }, (_k, v: unknown) => (v instanceof Error ? String(v) : v)),
      );
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

const serverLog = captureLogger();
const clientLog = captureLogger();

async function startServer(options: Partial<AmiServerOptions> = {}, port = 0): Promise<AmiServer> {
  const server = new AmiServer({
    users: { [USER]: SECRET },
    loginFailureDelayMs: 20,
    logger: serverLog.logger,
    ...options,
  });
  await server.listen(port);
  cleanups.push(() => server.close());
  return server;
}

function newClient(port: number, options: Partial<AmiClientOptions> = {}): AmiClient {
  const client = new AmiClient({
    host: '127.0.0.1',
    port,
    username: USER,
    password: SECRET,
    logger: clientLog.logger,
    actionTimeoutMs: 2_000,
    reconnectBackoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

async function connected(server: AmiServer, options: Partial<AmiClientOptions> = {}): Promise<AmiClient> {
  const client = newClient(server.port, options);
  await client.connect();
  return client;
}

/** Resolves with the arguments of the next `name` event of the client. */
function next<T = void>(client: AmiClient, name: string): Promise<T> {
  return new Promise<T>((resolve) => client.once(name, ((arg: T) => resolve(arg)) as (e: AmiEvent) => void));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A raw TCP AMI connection for checking the server's bytes. */
class RawAmi {
  readonly socket: Socket;
  readonly parser = new AmiParser({ expectGreeting: true });
  readonly received: AmiMessage[] = [];
  readonly ended: Promise<void>;
  private waiters: (() => void)[] = [];
  private greeted!: () => void;
  readonly greeting = new Promise<void>((resolve) => {
    this.greeted = resolve;
  });

  constructor(port: number) {
    this.socket = tcpConnect({ host: '127.0.0.1', port });
    this.socket.on('error', () => undefined);
    this.ended = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      this.received.push(...this.parser.push(chunk));
      if (this.parser.greeting !== undefined) this.greeted();
      for (const w of this.waiters.splice(0)) w();
    });
    cleanups.push(async () => this.socket.destroy());
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Waits until `count` messages have been received in total and returns them all. */
  async messages(count: number): Promise<AmiMessage[]> {
    while (this.received.length < count) {
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        this.ended.then(() => {
          throw new Error(`connection closed after ${this.received.length} of ${count} messages`);
        }),
      ]);
    }
    return this.received.slice(0, count);
  }

  async login(events = 'off'): Promise<void> {
    await this.greeting;
    const before = this.received.length;
    this.send(serializeAction({ Action: 'Login', Username: USER, Secret: SECRET, Events: events }));
    await this.messages(before + 1);
  }
}

// ---- client ----------------------------------------------------------------------------------

describe('AmiClient against AmiServer (real TCP)', () => {
  it('connects, logs in, pings and receives events', async () => {
    const server = await startServer();
    const client = newClient(server.port);
    const booted = next<AmiEvent>(client, 'FullyBooted');
    const isConnected = next(client, 'connected');
    await client.connect();
    await isConnected;
    expect(client.connected).toBe(true);
    expect(client.greeting).toBe('Asterisk Call Manager/11.0.0');
    expect((await booted).fields.Status).toBe('Fully Booted');

    const pong = await client.action({ Action: 'Ping' });
    expect(pong.response).toBe('Success');
    expect(pong.fields.Ping).toBe('Pong');
    expect(pong.fields.Timestamp).toMatch(/^\d+\.\d{6}$/);

    const viaEvent: AmiEvent[] = [];
    client.on('event', (e) => viaEvent.push(e));
    const hangup = next<AmiEvent>(client, 'Hangup');
    expect(
      server.publishEvent([
        ['Event', 'Hangup'],
        ['Privilege', 'call,all'],
        ['Channel', 'PJSIP/alice-00000001'],
        ['Cause', '16'],
        ['Cause-txt', 'Normal Clearing'],
      ]),
    ).toBe(1);
    const e = await hangup;
    expect(e.name).toBe('Hangup');
    expect(e.fields.Channel).toBe('PJSIP/alice-00000001');
    expect(e.message.get('cause-TXT')).toBe('Normal Clearing');
    expect(e.fields.Timestamp).toMatch(/^\d+\.\d{6}$/);
    expect(viaEvent.map((x) => x.name)).toEqual(['Hangup']);
  });

  it('with events off, the server sends it no events', async () => {
    const server = await startServer();
    const client = await connected(server, { events: false });
    expect(server.publishEvent({ Event: 'Hangup', Privilege: 'call,all' })).toBe(0);
    // Event classes: only `user` events get through.
    const userOnly = await connected(server, { events: ['user'] });
    expect(server.publishEvent({ Event: 'UserEvent', Privilege: 'user,all', UserEvent: 'X' })).toBe(1);
    expect(userOnly.connected && client.connected).toBe(true);
  });

  it('matches 3 concurrent actions to their own responses, answered out of order', async () => {
    const server = await startServer();
    const answered: string[] = [];
    server.registerAction('SlowEcho', async (req) => {
      await delay(Number(req.get('DelayMs')));
      answered.push(req.get('Echo')!);
      return amiSuccess('echo', { Echo: req.get('Echo')! });
    });
    const client = await connected(server);
    const [a, b, c] = await Promise.all([
      client.action({ Action: 'SlowEcho', Echo: 'first', DelayMs: 150 }),
      client.action({ Action: 'SlowEcho', Echo: 'second', DelayMs: 10 }),
      client.action({ Action: 'SlowEcho', Echo: 'third', DelayMs: 70 }),
    ]);
    expect(answered).toEqual(['second', 'third', 'first']);
    expect([a.fields.Echo, b.fields.Echo, c.fields.Echo]).toEqual(['first', 'second', 'third']);
    expect(new Set([a.actionId, b.actionId, c.actionId]).size).toBe(3);
  });

  it('rejects Response: Error with AmiActionError carrying the message and all fields', async () => {
    const server = await startServer();
    server.registerAction('Hangup', (req) =>
      req.get('Channel')
        ? amiError('No such channel', { Channel: req.get('Channel')! })
        : amiError('No channel specified'),
    );
    const client = await connected(server);
    const err = await client.action({ Action: 'Hangup', Channel: 'PJSIP/nosuch-0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmiActionError);
    expect((err as AmiActionError).action).toBe('Hangup');
    expect((err as AmiActionError).message).toContain('No such channel');
    expect((err as AmiActionError).response.Message).toBe('No such channel');
    expect((err as AmiActionError).response.Channel).toBe('PJSIP/nosuch-0');

    const bogus = await client.action({ Action: 'BogusAction' }).catch((e: unknown) => e);
    expect((bogus as AmiActionError).response.Message).toBe(
      'Invalid/unknown command: BogusAction. Use Action: ListCommands to show available commands.',
    );
  });

  it('rejects with TimeoutError when no response comes, and keeps working', async () => {
    const server = await startServer();
    server.registerAction('Never', () => null);
    const client = await connected(server);
    const started = Date.now();
    const err = await client.action({ Action: 'Never' }, { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');
  });

  it('refuses CR/LF in a value or key with InvalidInputError, and nothing reaches the socket', async () => {
    const server = await startServer();
    const seen: string[] = [];
    server.on('action', (req) => seen.push(req.action));
    const client = await connected(server);
    const bytesBefore = server.stats.bytesReceived;
    const actionsBefore = server.stats.actionsReceived;

    const attempts = [
      { Action: 'Setvar', Variable: 'X', Value: 'a\r\nAction: Logoff' },
      { Action: 'Setvar', Variable: 'X', Value: 'a\nAction: Logoff' },
      { Action: 'Originate', Channel: 'PJSIP/bob', Variable: ['A=1', 'B=2\r\n'] },
      { Action: 'Setvar', 'Value\r\nAction': 'Logoff' },
      { Action: 'Setvar', 'Bad:Key': 'x' },
      { Action: 'Ping\r\nAction: Logoff' },
    ];
    for (const fields of attempts) {
      await expect(client.action(fields)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(client.originate({ Channel: 'PJSIP/bob\nAction: Logoff' })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(client.command('core show version\r\nAction: Logoff')).rejects.toBeInstanceOf(
      InvalidInputError,
    );

    // TCP keeps order: once this Ping is answered, anything sent before it has arrived.
    const pong = await client.action({ Action: 'Ping' });
    const pingBytes = Buffer.byteLength(serializeAction({ Action: 'Ping', ActionID: pong.actionId }));
    expect(server.stats.actionsReceived - actionsBefore).toBe(1);
    expect(server.stats.bytesReceived - bytesBefore).toBe(pingBytes);
    expect(seen.filter((a) => a !== 'Login')).toEqual(['Ping']);
    expect(client.connected).toBe(true);
  });

  it('refuses a password with CR/LF at construction, without showing it', async () => {
    const server = await startServer();
    let error: unknown;
    try {
      newClient(server.port, { password: 'hunter2-pw\r\nAction: Originate' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toContain('Secret');
    expect((error as Error).message).not.toContain('hunter2');
    expect(server.stats.connections).toBe(0);
  });

  it('rejects a wrong password with exactly one AuthenticationError and does not retry', async () => {
    const server = await startServer();
    const client = newClient(server.port, { password: 'wrong-password-xyz' });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const results = await Promise.allSettled([client.connect()]);
    expect(results[0]!.status).toBe('rejected');
    const reason = (results[0] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(AuthenticationError);
    expect(reason.message).toContain('Authentication failed');
    expect(reason.message).not.toContain('wrong-password-xyz');
    expect(client.state).toBe('failed');
    await expect(client.action({ Action: 'Ping' })).rejects.toBeInstanceOf(AuthenticationError);
    // Proving an absence needs time: 20 backoff periods would have retried several times.
    await delay(400);
    expect(server.stats.loginAttempts).toBe(1);
    expect(server.stats.connections).toBe(1);
    expect(errors).toHaveLength(0);
  });

  it('Asterisk answers a failed login after about 1 s by default', async () => {
    const server = await startServer({ loginFailureDelayMs: undefined });
    const client = newClient(server.port, { password: 'nope' });
    const started = Date.now();
    await expect(client.connect()).rejects.toBeInstanceOf(AuthenticationError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('rejects a refused port with AsteriskConnectionError', async () => {
    const client = newClient(await freePort());
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AsteriskConnectionError);
    expect(err).not.toBeInstanceOf(AuthenticationError);
    expect((err as Error).message).toContain('ECONNREFUSED');
    await expect(client.action({ Action: 'Ping' })).rejects.toBeInstanceOf(AsteriskConnectionError);
  });

  it('says so when the port is not AMI', async () => {
    const http = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => http.close(resolve)));
    const client = newClient((http.address() as { port: number }).port);
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AsteriskConnectionError);
    expect((err as Error).message).toContain('not an AMI port');
  });

  it('collects list actions until the …Complete event', async () => {
    const server = await startServer();
    server.registerAction('CoreShowChannels', () => ({
      message: 'Channels will follow',
      list: {
        items: [
          [
            ['Event', 'CoreShowChannel'],
            ['Channel', 'PJSIP/alice-1'],
          ],
          [
            ['Event', 'CoreShowChannel'],
            ['Channel', 'PJSIP/bob-2'],
          ],
        ],
        completeEvent: 'CoreShowChannelsComplete',
      },
    }));
    const client = await connected(server);
    const emitted: string[] = [];
    client.on('event', (e) => emitted.push(e.name));
    const res = await client.action({ Action: 'CoreShowChannels' });
    expect(res.message).toBe('Channels will follow');
    expect(res.events.map((e) => e.fields.Channel)).toEqual(['PJSIP/alice-1', 'PJSIP/bob-2']);
    expect(res.events.every((e) => e.actionId === res.actionId)).toBe(true);
    expect(res.complete?.name).toBe('CoreShowChannelsComplete');
    expect(res.complete?.fields.ListItems).toBe('2');
    await client.action({ Action: 'Ping' });
    expect(emitted).toEqual([]);
  });

  it('command() returns every output line; errors carry the CLI text', async () => {
    const server = await startServer();
    server.setCliHandler((command) =>
      command === 'show table'
        ? { ok: true, lines: ['Name       State   ', '', '   indented', 'done: 2 rows', ' '] }
        : undefined,
    );
    const client = await connected(server);
    expect(await client.command('core show version')).toEqual([
      'Asterisk 22.10.1 built by root @ localhost on a x86_64 running Linux on 2026-11-23 08:26:59 UTC',
    ]);
    expect(await client.command('show table')).toEqual([
      'Name       State   ',
      '',
      '   indented',
      'done: 2 rows',
      ' ',
    ]);
    const uptime = await client.command('core show uptime');
    expect(uptime[0]).toMatch(/^System uptime: \d+ seconds?$/);

    const err = await client.command('no such cli command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmiActionError);
    expect((err as Error).message).toContain(
      "No such command 'no such cli command' (type 'core show help no such' for other possible commands)",
    );
    const missing = await client.action({ Action: 'Command' }).catch((e: unknown) => e);
    expect((missing as AmiActionError).response.Message).toBe('No command provided');
  });

  it('originate() resolves with the OriginateResponse of its ActionID, which is also emitted', async () => {
    const server = await startServer();
    server.registerAction('Originate', (req, ctx) => {
      if (!req.get('Channel')) return amiError('Channel not specified');
      if (req.get('Async') !== 'true') return amiError('test server only does Async');
      const ok = req.get('Channel') === 'PJSIP/bob';
      return {
        message: 'Originate successfully queued',
        after: () => {
          // Another session's originate must not be confused with ours.
          server.publishEvent([
            ['Event', 'OriginateResponse'],
            ['Privilege', 'call,all'],
            ['ActionID', 'someone-else-1'],
            ['Response', 'Success'],
          ]);
          setTimeout(() => {
            ctx.sendEvent([
              ['Event', 'OriginateResponse'],
              ['Privilege', 'call,all'],
              ...(req.actionId ? ([['ActionID', req.actionId]] as const) : []),
              ['Response', ok ? 'Success' : 'Failure'],
              ['Channel', ok ? 'PJSIP/bob-00000001' : req.get('Channel')!],
              ['Reason', ok ? '4' : '0'],
              ['Uniqueid', req.get('ChannelId') ?? '<unknown>'],
            ]);
          }, 30);
        },
      };
    });
    const client = await connected(server);
    const seen = next<AmiEvent>(client, 'OriginateResponse');
    const ok = await client.originate({
      Channel: 'PJSIP/bob',
      Application: 'Stasis',
      Data: 'app',
      ChannelId: 'c-1',
    });
    expect(ok.fields.Response).toBe('Success');
    expect(ok.fields.Reason).toBe('4');
    expect(ok.fields.Uniqueid).toBe('c-1');
    expect((await seen).actionId).toBe('someone-else-1');

    const failed = await client.originate({ Channel: 'PJSIP/sipp', Application: 'Stasis', Data: 'app' });
    expect(failed.fields.Response).toBe('Failure');
    expect(failed.fields.Channel).toBe('PJSIP/sipp');

    const refused = await client.originate({ Application: 'Stasis' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AmiActionError);
    expect((refused as Error).message).toContain('Channel not specified');
  });

  it('reconnects after a server restart, logs in again, and does not duplicate listeners', async () => {
    const server = await startServer();
    const port = server.port;
    const client = await connected(server);
    const hangups: AmiEvent[] = [];
    client.on('Hangup', (e) => hangups.push(e));
    const order: string[] = [];
    client.on('disconnected', () => order.push('disconnected'));
    client.on('reconnected', () => order.push('reconnected'));
    const shutdownEvent = next<AmiEvent>(client, 'Shutdown');
    const disconnected = next<AmiDisconnectInfo>(client, 'disconnected');

    await server.shutdown({ restart: true });
    expect((await shutdownEvent).fields).toMatchObject({
      Privilege: 'system,all',
      Shutdown: 'Cleanly',
      Restart: 'True',
    });
    const info = await disconnected;
    expect(info.shutdown).toBe(true);
    expect(client.connected).toBe(false);

    const reconnected = next(client, 'reconnected');
    const server2 = await startServer({}, port);
    await reconnected;
    expect(order).toEqual(['disconnected', 'reconnected']);
    expect(server2.stats.loginAttempts).toBe(1);
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');

    const marker = next<AmiEvent>(client, 'UserEvent');
    server2.publishEvent({ Event: 'Hangup', Privilege: 'call,all', Channel: 'PJSIP/x-1' });
    server2.publishEvent({ Event: 'UserEvent', Privilege: 'user,all', UserEvent: 'marker' });
    await marker;
    expect(hangups).toHaveLength(1);
    expect(client.listenerCount('Hangup')).toBe(1);
  });

  it('an action issued during the outage waits and succeeds after reconnect', async () => {
    const server = await startServer();
    const port = server.port;
    const client = await connected(server, { queueWhileDisconnectedMs: 5_000 });
    const disconnected = next(client, 'disconnected');
    await server.shutdown({ restart: true });
    await disconnected;

    const pending = client.action({ Action: 'Ping' });
    const server2 = await startServer({}, port);
    const res = await pending;
    expect(res.response).toBe('Success');
    expect(server2.stats.actionsReceived).toBe(2); // Login, then the queued Ping
  });

  it('an action issued during the outage fails fast with AsteriskConnectionError after the bounded wait', async () => {
    const server = await startServer();
    const client = await connected(server, { queueWhileDisconnectedMs: 150 });
    const disconnected = next(client, 'disconnected');
    await server.shutdown({ restart: false });
    await disconnected;
    const started = Date.now();
    const err = await client.action({ Action: 'Ping' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AsteriskConnectionError);
    expect((err as Error).message).toContain('150 ms');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('rejects an action in flight when the connection dies, and does not resend it', async () => {
    const server = await startServer();
    const port = server.port;
    let received = 0;
    server.registerAction('Originate', () => {
      received++;
      return null;
    });
    const client = await connected(server);
    const arrived = new Promise<void>((resolve) => server.once('action', () => resolve()));
    const inFlight = client.action({ Action: 'Originate', Channel: 'PJSIP/bob' }).catch((e: unknown) => e);
    await arrived;
    await server.shutdown({ restart: true });
    const err = await inFlight;
    expect(err).toBeInstanceOf(AsteriskConnectionError);
    expect((err as Error).message).toContain('not resent');

    const reconnected = next(client, 'reconnected');
    const server2 = await startServer({}, port);
    const seen: string[] = [];
    server2.on('action', (req) => seen.push(req.action));
    await reconnected;
    await client.action({ Action: 'Ping' });
    expect(received).toBe(1);
    expect(seen).toEqual(['Login', 'Ping']);
  });

  it('a wrong secret at re-login emits one error, stops reconnecting and fails waiting actions', async () => {
    const server = await startServer();
    const port = server.port;
    const client = await connected(server, { queueWhileDisconnectedMs: 5_000 });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    let reconnects = 0;
    client.on('reconnected', () => reconnects++);
    const disconnected = next(client, 'disconnected');
    await server.shutdown({ restart: true });
    await disconnected;
    const waiting = client.action({ Action: 'Ping' }).catch((e: unknown) => e);

    const firstError = next<Error>(client, 'error');
    const server2 = await startServer({ users: { [USER]: 'rotated-secret' } }, port);
    expect(await firstError).toBeInstanceOf(AuthenticationError);
    expect(await waiting).toBeInstanceOf(AuthenticationError);
    expect(client.state).toBe('failed');
    // Proving an absence needs time: no second error and no further login within several backoffs.
    await delay(300);
    expect(errors).toHaveLength(1);
    expect(server2.stats.loginAttempts).toBe(1);
    expect(reconnects).toBe(0);
  });

  it('treats "Asterisk is shutting down" at login as retryable (slow restart)', async () => {
    const server = await startServer();
    const port = server.port;
    let session: AmiSessionContext | undefined;
    server.registerAction('Hello', (_req, ctx) => {
      session = ctx;
      return amiSuccess('hi');
    });
    const client = await connected(server);
    await client.action({ Action: 'Hello' });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));

    // A fresh client during the slow phase: refused, but not as bad credentials.
    const shuttingDown = server.shutdown({ restart: true, graceMs: 400 });
    const fresh = newClient(port);
    const refused = await fresh.connect().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AsteriskConnectionError);
    expect(refused).not.toBeInstanceOf(AuthenticationError);
    expect((refused as Error).message).toContain('Asterisk is shutting down');

    // The connected client loses its session during the slow phase and keeps retrying.
    const refusedLogins: AmiRequest[] = [];
    server.on('action', (req) => {
      if (req.action === 'Login') refusedLogins.push(req);
    });
    const disconnected = next(client, 'disconnected');
    session!.close();
    await disconnected;
    await shuttingDown;
    const reconnected = next(client, 'reconnected');
    await startServer({}, port);
    await reconnected;
    expect(refusedLogins.length).toBeGreaterThanOrEqual(1);
    expect(errors).toEqual([]);
  });

  it('drops a connection whose keep-alive Ping goes unanswered, then reconnects', async () => {
    const server = await startServer();
    const client = await connected(server, { keepAliveMs: 50, actionTimeoutMs: 150 });
    const disconnected = next<AmiDisconnectInfo>(client, 'disconnected');
    server.registerAction('Ping', () => null);
    expect((await disconnected).reason).toContain('keep-alive');
    const reconnected = next(client, 'reconnected');
    server.registerAction('Ping', () => amiSuccess(undefined, [['Ping', 'Pong']]));
    await reconnected;
    expect((await client.action({ Action: 'Ping' })).fields.Ping).toBe('Pong');
  });

  it('close() logs off, is idempotent, and later actions reject', async () => {
    const server = await startServer();
    const seen: string[] = [];
    server.on('action', (req) => seen.push(req.action));
    const client = await connected(server);
    let disconnects = 0;
    client.on('disconnected', () => disconnects++);
    const closing = client.close();
    expect(client.close()).toBe(closing);
    await closing;
    expect(seen).toEqual(['Login', 'Logoff']);
    expect(client.state).toBe('closed');
    expect(disconnects).toBe(0);
    await expect(client.action({ Action: 'Ping' })).rejects.toBeInstanceOf(AsteriskConnectionError);
  });

  it('two clients with their own credentials talk to two servers in one process', async () => {
    const a = await startServer({ users: { alpha: 'alpha-secret' } });
    const b = await startServer({ users: { beta: 'beta-secret' } });
    const ca = await connected(a, { username: 'alpha', password: 'alpha-secret' });
    const cb = await connected(b, { username: 'beta', password: 'beta-secret' });
    a.registerAction('Who', () => amiSuccess('a'));
    b.registerAction('Who', () => amiSuccess('b'));
    expect((await ca.action({ Action: 'Who' })).message).toBe('a');
    expect((await cb.action({ Action: 'Who' })).message).toBe('b');
  });

  it('a listener that throws does not break the connection or other listeners', async () => {
    const server = await startServer();
    const client = await connected(server);
    client.on('Hangup', () => {
      throw new Error('listener bug');
    });
    const got = next<AmiEvent>(client, 'Hangup');
    server.publishEvent({ Event: 'Hangup', Privilege: 'call,all' });
    await got;
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');
  });
});

// ---- the lead's Simulator ------------------------------------------------------------------

describe('AmiClient against the Simulator', () => {
  it('connects, sees PBX events, survives sim.restart() and delivers each event once', async () => {
    // Imported here so the AmiServer tests above still run if the simulator is mid-change.
    const { Simulator } = await import('../src/sandbox/simulator.js');
    const sim = await Simulator.start({ timeScale: 0.05, amiLoginFailureDelayMs: 10 });
    cleanups.push(() => sim.close());
    sim.addExtension('asteramisk-call', '1000', 1, 'Answer');
    sim.addExtension('asteramisk-call', '1000', 2, 'Hangup');
    const client = newClient(sim.amiPort, {
      username: sim.credentials.amiUser,
      password: sim.credentials.amiPassword,
    });
    await client.connect();
    expect((await client.command('core show version'))[0]).toMatch(/^Asterisk 22\./);

    const hangups: AmiEvent[] = [];
    client.on('Hangup', (e) => hangups.push(e));
    const firstHangup = next<AmiEvent>(client, 'Hangup');
    await sim.call({ from: 'alice', to: '1000' });
    expect((await firstHangup).fields.Channel).toMatch(/^PJSIP\/alice-/);

    const disconnected = next<AmiDisconnectInfo>(client, 'disconnected');
    const reconnected = next(client, 'reconnected');
    await sim.restart();
    expect((await disconnected).shutdown).toBe(true);
    await reconnected;
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');

    // A phone gets through once the PBX has booted (res_pjsip loaded).
    await sim.whenRunning();
    const secondHangup = next<AmiEvent>(client, 'Hangup');
    await sim.call({ from: 'bob', to: '1000' });
    expect((await secondHangup).fields.Channel).toMatch(/^PJSIP\/bob-/);
    await client.action({ Action: 'Ping' });
    expect(hangups).toHaveLength(2);
  });

  it('a wrong secret against the Simulator: one AuthenticationError, no retry', async () => {
    const { Simulator } = await import('../src/sandbox/simulator.js');
    const sim = await Simulator.start({ amiLoginFailureDelayMs: 10 });
    cleanups.push(() => sim.close());
    const client = newClient(sim.amiPort, {
      username: sim.credentials.amiUser,
      password: 'not-the-sim-secret',
    });
    await expect(client.connect()).rejects.toBeInstanceOf(AuthenticationError);
    expect(client.state).toBe('failed');
  });
});

// ---- server wire format ----------------------------------------------------------------------

describe('AmiServer wire format (as Asterisk 22)', () => {
  it('greets at once, answers before login with Permission denied and keeps the socket', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.greeting;
    expect(raw.parser.greeting).toBe('Asterisk Call Manager/11.0.0');
    raw.send('Action: Ping\r\nActionID: before\r\n\r\n');
    const [denied] = await raw.messages(1);
    expect(denied!.entries).toEqual([
      ['Response', 'Error'],
      ['ActionID', 'before'],
      ['Message', 'Permission denied'],
    ]);
    await raw.login();
    // No ActionID in the request, none in the response.
    expect(raw.received[1]!.entries).toEqual([
      ['Response', 'Success'],
      ['Message', 'Authentication accepted'],
    ]);
    expect(raw.socket.destroyed).toBe(false);
  });

  it('logs in with events: FullyBooted without Timestamp, then SuccessfulAuth with one', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.greeting;
    raw.send(
      serializeAction({ Action: 'Login', ActionID: 'l-1', Username: USER, Secret: SECRET, Events: 'on' }),
    );
    const [ok, booted, auth] = await raw.messages(3);
    expect(ok!.entries).toEqual([
      ['Response', 'Success'],
      ['ActionID', 'l-1'],
      ['Message', 'Authentication accepted'],
    ]);
    expect(booted!.entries.map(([k]) => k)).toEqual(['Event', 'Privilege', 'Uptime', 'LastReload', 'Status']);
    expect(booted!.get('Status')).toBe('Fully Booted');
    expect(auth!.entries.map(([k]) => k)).toEqual([
      'Event',
      'Privilege',
      'Timestamp',
      'EventTV',
      'Severity',
      'Service',
      'EventVersion',
      'AccountID',
      'SessionID',
      'LocalAddress',
      'RemoteAddress',
      'UsingPassword',
      'SessionTV',
    ]);
    expect(auth!.get('AccountID')).toBe(USER);
    expect(auth!.get('LocalAddress')).toBe(`IPV4/TCP/127.0.0.1/${server.port}`);
    expect(auth!.get('EventTV')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
  });

  it('answers Ping with and without ActionID, with lowercase headers, and the error messages', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.login('off');
    raw.send('Action: Ping\r\n\r\n');
    raw.send('action: ping\r\nactionid: lower\r\n\r\n');
    raw.send('ActionID: no-action\r\nFoo: bar\r\n\r\n');
    raw.send('Action: BogusAction\r\nActionID: bogus\r\n\r\n');
    raw.send('Action: Command\r\nActionID: cmd\r\n\r\n');
    raw.send('Action: CoreSettings\r\nActionID: cs\r\n\r\n');
    const [, noId, lower, noAction, bogus, cmd, settings] = await raw.messages(7);
    expect(noId!.entries.map(([k]) => k)).toEqual(['Response', 'Ping', 'Timestamp']);
    expect(lower!.get('ActionID')).toBe('lower');
    expect(noAction!.entries).toEqual([
      ['Response', 'Error'],
      ['ActionID', 'no-action'],
      ['Message', 'Missing action in request'],
    ]);
    expect(bogus!.get('Message')).toBe(
      'Invalid/unknown command: BogusAction. Use Action: ListCommands to show available commands.',
    );
    expect(cmd!.get('Message')).toBe('No command provided');
    expect(settings!.entries.map(([k]) => k)).toEqual([
      'Response',
      'ActionID',
      'AMIversion',
      'AsteriskVersion',
      'SystemName',
      'CoreMaxCalls',
      'CoreMaxLoadAvg',
      'CoreRunUser',
      'CoreRunGroup',
      'CoreMaxFilehandles',
      'CoreRealTimeEnabled',
      'CoreCDRenabled',
      'CoreHTTPenabled',
      'SoundsSearchCustomDir',
    ]);
    expect(settings!.get('AsteriskVersion')).toBe('22.10.1');
  });

  it('fails a login after the delay, then closes; Logoff says Goodbye and closes', async () => {
    const server = await startServer({ loginFailureDelayMs: 100 });
    const raw = new RawAmi(server.port);
    await raw.greeting;
    const started = Date.now();
    raw.send('Action: Login\r\nActionID: bad\r\nUsername: nosuchuser\r\nSecret: x\r\n\r\n');
    const [failed] = await raw.messages(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(failed!.entries).toEqual([
      ['Response', 'Error'],
      ['ActionID', 'bad'],
      ['Message', 'Authentication failed'],
    ]);
    await raw.ended;

    const raw2 = new RawAmi(server.port);
    await raw2.login();
    raw2.send('Action: Logoff\r\nActionID: bye\r\n\r\n');
    const [, bye] = await raw2.messages(2);
    expect(bye!.entries).toEqual([
      ['Response', 'Goodbye'],
      ['ActionID', 'bye'],
      ['Message', 'Thanks for all the fish.'],
    ]);
    await raw2.ended;
  });

  it('Events action switches events off and on', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.login('on');
    await raw.messages(3); // login response, FullyBooted, SuccessfulAuth
    raw.send('Action: Events\r\nActionID: e1\r\nEventMask: off\r\n\r\n');
    const off = (await raw.messages(4))[3]!;
    expect(off.get('Events')).toBe('Off');
    expect(server.publishEvent({ Event: 'Hangup', Privilege: 'call,all' })).toBe(0);
    raw.send('Action: Events\r\nActionID: e2\r\nEventMask: on\r\n\r\n');
    expect((await raw.messages(5))[4]!.get('Events')).toBe('On');
    expect(server.publishEvent({ Event: 'Hangup', Privilege: 'call,all' })).toBe(1);
  });

  it('survives garbage, an over-long line and a client leaving mid-action', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.greeting;
    raw.send(Buffer.from([0, 255, 254, 13, 13, 10, 58, 58, 32, 10, 10]));
    raw.send(`X-Huge: ${'y'.repeat(200_000)}\r\n\r\n`);
    raw.send('Action: Ping\r\nActionID: after-garbage\r\n\r\n');
    const replies = await raw.messages(3);
    // The garbage line `::` is a request without Action; the huge line gets Asterisk's parse error.
    expect(replies.map((m) => m.get('Message'))).toEqual([
      'Missing action in request',
      'Failed to parse message: line too long',
      'Permission denied',
    ]);

    let finish!: () => void;
    const handlerDone = new Promise<void>((resolve) => {
      finish = resolve;
    });
    server.registerAction('Slow', async () => {
      await delay(50);
      finish();
      return amiSuccess('too late');
    });
    const leaver = new RawAmi(server.port);
    await leaver.login();
    leaver.send('Action: Slow\r\nActionID: s\r\n\r\n');
    await new Promise<void>((resolve) => server.once('action', () => resolve()));
    leaver.socket.destroy();
    await handlerDone;

    const client = await connected(server);
    expect((await client.action({ Action: 'Ping' })).response).toBe('Success');
  });

  it('shutdown sends Event: Shutdown then closes every socket', async () => {
    const server = await startServer();
    const raw = new RawAmi(server.port);
    await raw.login('system');
    const before = raw.received.length;
    await server.shutdown({ restart: true });
    await raw.ended;
    const ev = raw.received[before]!;
    expect(ev.entries.map(([k]) => k)).toEqual(['Event', 'Privilege', 'Timestamp', 'Shutdown', 'Restart']);
    expect(ev.get('Restart')).toBe('True');
    expect(server.sessionCount).toBe(0);
  });
});

// Last, so it sees the log lines of every test above.
describe('logging', () => {
  it('never logs a secret', async () => {
    // Everything above used these loggers too; run the secret-heavy paths once more to be sure.
    const server = await startServer();
    const client = await connected(server);
    await client.action({ Action: 'Ping' });
    await newClient(server.port, { password: 'Wr0ng-secret-also-private' })
      .connect()
      .catch(() => undefined);
    await client.close();
    const all = [...serverLog.lines, ...clientLog.lines];
    expect(all.length).toBeGreaterThan(0);
    for (const line of all) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('Wr0ng-secret');
      expect(line).not.toContain('rotated-secret');
      expect(line).not.toContain('wrong-password-xyz');
      expect(line).not.toContain('not-the-sim-secret');
    }
  });
});
