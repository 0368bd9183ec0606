import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmiClient } from '../src/asterisk/ami-client.js';
import { AriClient } from '../src/asterisk/ari-client.js';
import { Communicator } from '../src/communicator.js';
import { resolveConfig } from '../src/config.js';
import { AsteriskConnectionError, AuthenticationError, TlsError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { Simulator, type SimulatorOptions } from '../src/sandbox/simulator.js';
import { Server, type ServerOptions } from '../src/server.js';
import { textLogger } from './support/capturing-logger.js';
import { testPortRange } from './support/test-ports.js';
import { generateLocalhostTls, type TlsMaterial } from './support/tls-cert.js';
import { deferred, RecordingTts } from './support/voice-harness.js';
import { catchError, within } from './support/within.js';

/**
 * ARI over https/wss and AMI over TLS against the simulator listening with a certificate signed by
 * a CA generated here: the library trusts it only through `tlsCaFile`, verifies the certificate's
 * name, and says in a TlsError (never an AuthenticationError, never with a secret) why it refused.
 */

const ARI_PASSWORD = 'ari-pass-s3cret-tls';
const AMI_PASSWORD = 'ami-pass-s3cret-tls';
const SECRETS = [ARI_PASSWORD, AMI_PASSWORD, Buffer.from(`asteramisk:${ARI_PASSWORD}`).toString('base64')];

let dir: string;
let good: TlsMaterial;
let other: TlsMaterial;
let caFile: string;
let otherCaFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'asteramisk-tls-'));
  [good, other] = await Promise.all([generateLocalhostTls(), generateLocalhostTls()]);
  caFile = join(dir, 'ca.pem');
  otherCaFile = join(dir, 'other-ca.pem');
  await writeFile(caFile, good.ca);
  await writeFile(otherCaFile, other.ca);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function expectNoSecret(...texts: string[]): void {
  for (const text of texts) for (const secret of SECRETS) expect(text).not.toContain(secret);
}

async function startSim(tls: SimulatorOptions['tls'], extra: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await Simulator.start({
    timeScale: 0.02,
    ariPassword: ARI_PASSWORD,
    amiPassword: AMI_PASSWORD,
    amiLoginFailureDelayMs: 0,
    ...(tls ? { tls } : {}),
    ...extra,
  });
  cleanups.push(() => sim.close());
  return sim;
}

function serverOptions(sim: Simulator, logger: Logger, more: Partial<ServerOptions> = {}): ServerOptions {
  const { min: rtpPortMin } = testPortRange(20);
  return {
    ...sim.connectionOptions(),
    appName: `tls-${Math.random().toString(36).slice(2, 8)}`,
    logger,
    tts: new RecordingTts(),
    stt: false,
    ttsCacheDirectory: false,
    rtpPortMin,
    rtpPortMax: rtpPortMin + 19,
    textRateLimit: { messages: 100, perMs: 1000 },
    ...more,
  };
}

describe('TLS: a Server and a Communicator over https/wss and AMI/TLS', () => {
  it('runs a call (say, gather) and a text end to end, trusting the simulator only through tlsCaFile', async () => {
    const sim = await startSim({ cert: good.cert, key: good.key });
    expect(sim.ariUrl).toMatch(/^https:/);
    expect(sim.connectionOptions()).toMatchObject({ ariTls: true, amiTls: true });
    const { logger, lines } = textLogger();
    const tts = new RecordingTts();
    const server = await Server.create(serverOptions(sim, logger, { tlsCaFile: caFile, tts }));
    cleanups.push(() => server.close());

    const gathered = deferred<string>();
    const texted = deferred<string>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Welcome over TLS');
        gathered.resolve(await ui.gather('Enter your code', { numDigits: 3 }));
      },
      text: async (ui) => {
        const name = await ui.prompt('What is your name?');
        await ui.say(`Hello ${name}`);
        texted.resolve(name);
      },
    });

    const phone = await sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(10);
    await phone.press('123');
    expect(await within(gathered.promise, 5000, 'the gathered digits')).toBe('123');
    expect((await phone.ended()).cause).toBe(16);
    expect(tts.said).toEqual(['Welcome over TLS', 'Enter your code']);

    expect(await sim.sendText({ from: 'bob', to: '1000', body: 'hi' })).toBe(202);
    expect((await sim.nextSentText((t) => t.toUser === 'bob')).body).toBe('What is your name?');
    await sim.sendText({ from: 'bob', to: '1000', body: 'Bob' });
    expect((await sim.nextSentText((t) => t.toUser === 'bob')).body).toBe('Hello Bob');
    expect(await texted.promise).toBe('Bob');

    // A Communicator of the same process joins the Server's TLS connection and places a call.
    const communicator = await Communicator.create({
      ...serverOptions(sim, logger, { tlsCaFile: caFile }),
      appName: undefined,
      systemPhoneNumber: '5550100',
    });
    cleanups.push(() => communicator.close());
    const calling = communicator.makeCall('bob');
    const bob = await sim.nextIncomingCall('bob');
    const ui = await calling;
    await ui.say('Your order has shipped');
    expect(bob.heardMs).toBeGreaterThan(0);
    await ui.hangup();

    expectNoSecret(...lines, inspect(server, { depth: 8 }), inspect(communicator, { depth: 8 }));
    expect(lines.join('\n')).toContain('asteramisk connected');
  });

  it('refuses a PBX whose certificate is signed by a CA it does not trust, naming the certificate, not the password', async () => {
    const sim = await startSim({ cert: good.cert, key: good.key });
    for (const more of [{ tlsCaFile: otherCaFile }, {}]) {
      const { logger, lines } = textLogger();
      const error = await catchError(Server.create(serverOptions(sim, logger, more)));
      expect(error).toBeInstanceOf(TlsError);
      expect(error).toBeInstanceOf(AsteriskConnectionError);
      expect(error).not.toBeInstanceOf(AuthenticationError);
      const tls = error as TlsError;
      expect(tls.reason).toBe('unknown-ca');
      expect(tls.code).toBe('TLS');
      expect(tls.message).toMatch(/certificate is not signed by a trusted CA/);
      expect(tls.message).toContain('ASTERISK_TLS_CA_FILE');
      expect(tls.message).toMatch(/^TLS connection to (ARI|AMI|the ARI events websocket) /);
      expectNoSecret(tls.message, inspect(tls, { depth: 8 }), String(tls.stack), ...lines);
    }
    // Nothing was left connected, and no login was tried (the certificate check comes first).
    expect(sim.pbx.channels.size).toBe(0);

    // A process-wide NODE_TLS_REJECT_UNAUTHORIZED=0 (someone else's shortcut) does not turn it off.
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const error = await catchError(Server.create(serverOptions(sim, textLogger().logger, {})));
      expect((error as TlsError).reason).toBe('unknown-ca');
      const ami = new AmiClient({
        host: '127.0.0.1',
        port: sim.amiPort,
        username: 'asteramisk',
        password: AMI_PASSWORD,
        tls: true,
      });
      expect(((await catchError(ami.connect())) as TlsError).reason).toBe('unknown-ca');
      await ami.close();
      const ari = new AriClient({
        url: sim.ariUrl,
        username: 'asteramisk',
        password: ARI_PASSWORD,
        app: 'nrej',
      });
      expect(((await catchError(ari.asterisk.ping())) as TlsError).reason).toBe('unknown-ca');
      expect(((await catchError(ari.connect())) as TlsError).reason).toBe('unknown-ca');
      await ari.close();
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    }
  });

  it('reads tlsCaFile at creation: a missing file is a ConfigError naming it, before any connection', async () => {
    const sim = await startSim({ cert: good.cert, key: good.key });
    const missing = join(dir, 'nope.pem');
    const error = await catchError(
      Server.create(serverOptions(sim, textLogger().logger, { tlsCaFile: missing })),
    );
    expect((error as Error).name).toBe('ConfigError');
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain('does not exist');
  });

  it('says (info) when TLS options are set but ARI and AMI are plain (they are not used)', async () => {
    const sim = await startSim(undefined);
    const { logger, lines } = textLogger();
    const server = await Server.create(serverOptions(sim, logger, { tlsCaFile: caFile }));
    cleanups.push(() => server.close());
    expect(lines.filter((l) => l.startsWith('info') && l.includes('TLS options are set'))).toHaveLength(1);
  });
});

describe('TLS: AMI and ARI each on their own', () => {
  it('AMI over TLS: connects with the CA, runs an action, receives an event; refuses another CA', async () => {
    const sim = await startSim({ cert: good.cert, key: good.key, ari: false });
    expect(sim.connectionOptions()).toMatchObject({ ariTls: false, amiTls: true });
    sim.addExtension('asteramisk-call', '5000', 1, 'Hangup');
    const { logger, lines } = textLogger();
    const options = {
      host: '127.0.0.1',
      port: sim.amiPort,
      username: 'asteramisk',
      password: AMI_PASSWORD,
      logger,
    };
    const ami = new AmiClient({ ...options, tls: { ca: good.ca } });
    cleanups.push(() => ami.close());
    await ami.connect();
    expect(ami.greeting).toMatch(/Asterisk Call Manager/);
    expect((await ami.action({ Action: 'Ping' })).fields.Ping).toBe('Pong');
    const newChannel = new Promise((resolve) => ami.once('Newchannel', resolve));
    await sim.call({ from: 'alice', to: '5000' });
    await within(newChannel, 3000, 'Newchannel over AMI/TLS');

    const refused = new AmiClient({ ...options, tls: { ca: other.ca } });
    const error = await catchError(refused.connect());
    await refused.close();
    expect(error).toBeInstanceOf(TlsError);
    expect((error as TlsError).reason).toBe('unknown-ca');
    expect((error as TlsError).message).toContain(`AMI at 127.0.0.1:${sim.amiPort}`);
    // A plain client at the TLS port is told it may be one, instead of only timing out.
    const plain = new AmiClient({ ...options, connectTimeoutMs: 300 });
    const plainError = await catchError(plain.connect());
    await plain.close();
    expect((plainError as Error).message).toMatch(/did not greet .*a TLS port\?/);

    // The whole library with AMI on TLS and ARI plain.
    const server = await Server.create(serverOptions(sim, logger, { tlsCaFile: caFile }));
    cleanups.push(() => server.close());
    await server.registerExtension('1000', { voice: async (ui) => ui.answer() });
    const phone = await sim.call({ from: 'alice', to: '1000' });
    expect((await phone.ended()).cause).toBe(16);
    expectNoSecret(...lines, (error as Error).message, (plainError as Error).message);
  });

  it('ARI over https/wss: REST and an event with the CA; refuses another CA on REST and on the websocket', async () => {
    const sim = await startSim({ cert: good.cert, key: good.key, ami: false });
    expect(sim.connectionOptions()).toMatchObject({ ariTls: true, amiTls: false });
    const { logger, lines } = textLogger();
    const options = {
      url: sim.ariUrl,
      username: 'asteramisk',
      password: ARI_PASSWORD,
      app: 'tls-ari',
      logger,
    };
    const ari = new AriClient({ ...options, tls: { ca: good.ca } });
    cleanups.push(() => ari.close());
    await ari.connect();
    const info = await ari.asterisk.ping();
    expect(info).toBeDefined();
    const event = new Promise((resolve) => ari.once('ChannelUserevent', resolve));
    await ari.events.userEvent('over-wss', { variables: { a: '1' } });
    expect(await within(event, 3000, 'ChannelUserevent over wss')).toMatchObject({ eventname: 'over-wss' });

    const refused = new AriClient({ ...options, app: 'tls-ari-2', tls: { ca: other.ca } });
    const wsError = await catchError(refused.connect());
    const restError = await catchError(refused.asterisk.ping());
    await refused.close();
    for (const error of [wsError, restError]) {
      expect(error).toBeInstanceOf(TlsError);
      expect((error as TlsError).reason).toBe('unknown-ca');
      expectNoSecret((error as Error).message, inspect(error, { depth: 8 }));
    }
    expect((wsError as Error).message).toContain('events websocket wss://127.0.0.1');
    expect((restError as Error).message).toContain(`ARI at 127.0.0.1:${sim.ariPort}`);

    // A plain client at the https port is told it may be a TLS port.
    const plain = new AriClient({ ...options, url: sim.ariUrl.replace('https:', 'http:'), app: 'tls-ari-3' });
    const plainError = await catchError(plain.connect());
    await plain.close();
    expect(plainError).not.toBeInstanceOf(TlsError);
    expect((plainError as Error).message).toContain('set ASTERISK_ARI_TLS=true');

    const server = await Server.create(serverOptions(sim, logger, { tlsCaFile: caFile }));
    cleanups.push(() => server.close());
    await server.registerExtension('1000', { voice: async (ui) => ui.answer() });
    const phone = await sim.call({ from: 'alice', to: '1000' });
    expect((await phone.ended()).cause).toBe(16);
    expectNoSecret(...lines);
  });
});

describe('TLS: what is verified', () => {
  it('refuses a certificate for another name; tlsServerName accepts it when the name is the expected one', async () => {
    const named = await generateLocalhostTls({ dnsNames: ['pbx.example.test'], ipAddresses: [] });
    const namedCaFile = join(dir, 'named-ca.pem');
    await writeFile(namedCaFile, named.ca);
    const sim = await startSim({ cert: named.cert, key: named.key });

    // By IP (the certificate has no IP), and by a name it does not list.
    for (const more of [{}, { tlsServerName: 'other.example.test' }]) {
      const error = await catchError(
        Server.create(serverOptions(sim, textLogger().logger, { tlsCaFile: namedCaFile, ...more })),
      );
      expect(error).toBeInstanceOf(TlsError);
      expect((error as TlsError).reason).toBe('hostname-mismatch');
      expect((error as Error).message).toMatch(/certificate is not issued for/);
      expect((error as Error).message).toContain('ASTERISK_TLS_SERVER_NAME');
    }
    // Each client on its own, too.
    const ami = new AmiClient({
      host: '127.0.0.1',
      port: sim.amiPort,
      username: 'asteramisk',
      password: AMI_PASSWORD,
      tls: { ca: named.ca },
    });
    expect(((await catchError(ami.connect())) as TlsError).reason).toBe('hostname-mismatch');
    await ami.close();
    const ari = new AriClient({
      url: sim.ariUrl,
      username: 'asteramisk',
      password: ARI_PASSWORD,
      app: 'mismatch',
      tls: { ca: named.ca },
    });
    expect(((await catchError(ari.asterisk.ping())) as TlsError).reason).toBe('hostname-mismatch');
    expect(((await catchError(ari.connect())) as TlsError).reason).toBe('hostname-mismatch');
    await ari.close();

    // Connecting by IP to the certificate's name: ARI (undici and ws) and AMI all check that name.
    const server = await Server.create(
      serverOptions(sim, textLogger().logger, {
        tlsCaFile: namedCaFile,
        tlsServerName: 'pbx.example.test',
      }),
    );
    cleanups.push(() => server.close());
    await server.registerExtension('1000', { voice: async (ui) => ui.answer() });
    expect((await (await sim.call({ from: 'alice', to: '1000' })).ended()).cause).toBe(16);
  });

  it('names an expired certificate and a port that does not speak TLS', async () => {
    const hour = 3600_000;
    const expired = await generateLocalhostTls({
      leafValidity: {
        notBeforeDate: new Date(Date.now() - 48 * hour),
        notAfterDate: new Date(Date.now() - hour),
      },
    });
    const sim = await startSim({ cert: expired.cert, key: expired.key });
    const ami = new AmiClient({
      host: '127.0.0.1',
      port: sim.amiPort,
      username: 'asteramisk',
      password: AMI_PASSWORD,
      tls: { ca: expired.ca },
    });
    const error = (await catchError(ami.connect())) as TlsError;
    await ami.close();
    expect([error.reason, error.tlsCode]).toEqual(['expired', 'CERT_HAS_EXPIRED']);
    expect(error.message).toMatch(/certificate has expired/);

    const plain = await startSim(undefined);
    const tlsToPlainAmi = new AmiClient({
      host: '127.0.0.1',
      port: plain.amiPort,
      username: 'asteramisk',
      password: AMI_PASSWORD,
      tls: { ca: good.ca },
    });
    const amiError = (await catchError(tlsToPlainAmi.connect())) as TlsError;
    await tlsToPlainAmi.close();
    expect(amiError.reason).toBe('not-tls');
    const tlsToPlainAri = new AriClient({
      url: plain.ariUrl.replace('http:', 'https:'),
      username: 'asteramisk',
      password: ARI_PASSWORD,
      app: 'plain',
      tls: { ca: good.ca },
    });
    const ariError = (await catchError(tlsToPlainAri.asterisk.ping())) as TlsError;
    await tlsToPlainAri.close();
    expect(ariError).toBeInstanceOf(TlsError);
    expect(ariError.reason).toBe('not-tls');
  });

  it('keeps secrets out of inspect, JSON and String of a TLS config', () => {
    const config = resolveConfig(
      { amiTls: true, ariTls: true, tlsCaFile: caFile, tlsServerName: 'pbx.example.test' },
      {
        ASTERISK_ARI_USER: 'asteramisk',
        ASTERISK_ARI_PASS: ARI_PASSWORD,
        ASTERISK_AMI_USER: 'asteramisk',
        ASTERISK_AMI_PASS: AMI_PASSWORD,
      },
    );
    const shown = [inspect(config), JSON.stringify(config), String(config)].join('\n');
    expectNoSecret(shown);
    expect(shown).toContain(caFile);
    expect(shown).toContain('pbx.example.test');
    expect([config.ariPort, config.amiPort]).toEqual([8089, 5039]);
  });
});
