import { afterEach, describe, expect, it } from 'vitest';
import { AmiClient } from '../src/asterisk/ami-client.js';
import { AriClient } from '../src/asterisk/ari-client.js';
import { AmiActionError, AriHttpError, AsteriskConnectionError, TimeoutError } from '../src/errors.js';
import { SimCallRejectedError, Simulator } from '../src/sandbox/simulator.js';
import { isEvent, RawAmi, type RawAmiMessage, value } from './support/raw-ami.js';
import { catchError, within } from './support/within.js';

/**
 * The simulator's restart and failure windows, as Asterisk 22.10.1 shows them on the wire:
 * the boot window after `core restart now` (AMI answers before pbx_config is loaded), the 503
 * "Shutdown in progress" of the HTTP server while it shuts down, and a frozen PBX (SIGSTOP).
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startSim(): Promise<Simulator> {
  const sim = await Simulator.start({ timeScale: 0.05, amiLoginFailureDelayMs: 10 });
  cleanups.push(() => sim.close());
  return sim;
}

async function login(sim: Simulator): Promise<RawAmi> {
  const ami = await RawAmi.connect(sim.amiPort);
  cleanups.push(() => ami.close());
  const res = await ami.send([
    ['Action', 'Login'],
    ['ActionID', 'login'],
    ['Username', sim.credentials.amiUser],
    ['Secret', sim.credentials.amiPassword],
  ]);
  expect(value(res, 'Message')).toBe('Authentication accepted');
  return ami;
}

let n = 0;
const id = () => `w${n++}`;

const addExtension = (ami: RawAmi): Promise<RawAmiMessage> =>
  ami.send([
    ['Action', 'DialplanExtensionAdd'],
    ['ActionID', id()],
    ['Context', 'boot-ctx'],
    ['Extension', '1000'],
    ['Priority', '1'],
    ['Application', 'NoOp'],
  ]);

describe('simulator: the boot window after a restart', () => {
  it('accepts AMI logins before pbx_config is loaded, refuses its actions until FullyBooted, then serves them', async () => {
    const sim = await startSim();
    const states: string[] = [];
    sim.on('state', (s: string) => states.push(s));
    // A window longer than the checks below can take, ended by hand once they are done: with a
    // short one (600 ms) they once outlasted it on a loaded machine.
    await sim.restart({ bootMs: 60_000 });
    expect(sim.state).toBe('booting');

    const ami = await login(sim);
    const refused = await addExtension(ami);
    expect(value(refused, 'Response')).toBe('Error');
    expect(value(refused, 'Message')).toBe(
      'Invalid/unknown command: DialplanExtensionAdd. Use Action: ListCommands to show available commands.',
    );
    // The core's actions answer: ShowDialPlan is pbx.c's, Ping and ListCommands the manager's.
    const show = await ami.send([
      ['Action', 'ShowDialPlan'],
      ['ActionID', id()],
      ['Context', 'boot-ctx'],
    ]);
    expect(value(show, 'Response')).toBe('Error');
    expect(value(show, 'Message')).not.toMatch(/Invalid\/unknown command/);
    const commands = await ami.send([
      ['Action', 'ListCommands'],
      ['ActionID', id()],
    ]);
    expect(commands.map(([k]) => k)).toContain('ShowDialPlan');
    expect(commands.map(([k]) => k)).not.toContain('DialplanExtensionAdd');
    // No FullyBooted after this login: Asterisk is not booted yet.
    expect(ami.messages.some(isEvent('FullyBooted'))).toBe(false);
    // And no phone gets through while res_pjsip is not loaded.
    expect(await catchError(sim.call({ from: 'alice', to: '1000' }))).toBeInstanceOf(SimCallRejectedError);

    expect(sim.state).toBe('booting');
    sim.finishBoot();
    const booted = await within(ami.waitFor(isEvent('FullyBooted')), 5000, 'FullyBooted at the end of boot');
    expect(value(booted, 'Status')).toBe('Fully Booted');
    expect(value(booted, 'Privilege')).toBe('system,all');
    // Published like any manager event, so with a Timestamp (unlike the one sent at login).
    expect(value(booted, 'Timestamp')).toMatch(/^\d+\.\d{6}$/);
    expect(sim.state).toBe('running');
    expect(value(await addExtension(ami), 'Response')).toBe('Success');
    expect(states).toEqual(['shutting-down', 'down', 'booting', 'running']);
  });

  it('a login after the boot window gets FullyBooted at once, as before', async () => {
    const sim = await startSim();
    await sim.restart({ bootMs: 50 });
    await sim.whenRunning();
    const ami = await login(sim);
    const booted = await ami.waitFor(isEvent('FullyBooted'));
    expect(value(booted, 'Timestamp')).toBeUndefined();
    expect(value(await addExtension(ami), 'Response')).toBe('Success');
  });

  it('answers ARI requests with 503 "Shutdown in progress" while it shuts down (before the ports close)', async () => {
    const sim = await startSim();
    sim.addExtension('asteramisk-call', '1000', 1, 'Stasis', 'shutdownapp');
    const ari = new AriClient({
      url: sim.ariUrl,
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
      app: 'shutdownapp',
    });
    cleanups.push(() => ari.close());
    await ari.connect();
    const started = new Promise<string>((resolve) => ari.once('StasisStart', (e) => resolve(e.channel.id)));
    await sim.call({ from: 'alice', to: '1000' });
    const channelId = await started;
    // What an app does when a restart hangs its call up: release what it holds, at once.
    const cleanup = new Promise<unknown>((resolve) =>
      ari.once('StasisEnd', () => {
        ari.bridges.destroy('some-bridge').then(resolve, resolve);
      }),
    );
    const restarted = sim.restart({ bootMs: 0, shutdownMs: 300 });
    const error = await cleanup;
    expect(error).toBeInstanceOf(AriHttpError);
    expect((error as AriHttpError).status).toBe(503);
    expect((error as Error).message).toContain('Shutdown in progress');
    await restarted;
    expect(channelId).toBeTruthy();
  });
});

describe('simulator: a frozen PBX (SIGSTOP) and its thaw', () => {
  it('holds everything back without closing: pings go unanswered, requests time out, then all resumes', async () => {
    const sim = await startSim();
    sim.addExtension('asteramisk-call', '1000', 1, 'Stasis', 'frozenapp');
    const ari = new AriClient({
      url: sim.ariUrl,
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
      app: 'frozenapp',
      requestTimeoutMs: 300,
      connectTimeoutMs: 300,
      pingIntervalMs: 100,
      pongTimeoutMs: 150,
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    const ami = new AmiClient({
      host: '127.0.0.1',
      port: sim.amiPort,
      username: sim.credentials.amiUser,
      password: sim.credentials.amiPassword,
      actionTimeoutMs: 300,
      keepAliveMs: 100,
      keepAliveTimeoutMs: 150,
      queueWhileDisconnectedMs: 300,
      reconnectBackoff: { initialMs: 50, maxMs: 200 },
    });
    cleanups.push(
      () => ari.close(),
      () => ami.close(),
    );
    await Promise.all([ari.connect(), ami.connect()]);
    const started = new Promise<string>((resolve) => ari.once('StasisStart', (e) => resolve(e.channel.id)));
    const phone = await sim.call({ from: 'alice', to: '1000' });
    const channelId = await started;

    const ariDown = new Promise((resolve) => ari.once('disconnected', resolve));
    const amiDown = new Promise((resolve) => ami.once('disconnected', resolve));
    sim.freeze();
    expect(sim.state).toBe('frozen');
    // In flight while frozen: a typed error, not a hang.
    expect(await catchError(ari.channels.get(channelId))).toBeInstanceOf(TimeoutError);
    const amiError = await catchError(ami.action({ Action: 'Ping' }));
    expect(amiError instanceof TimeoutError || amiError instanceof AsteriskConnectionError).toBe(true);
    expect(await catchError(sim.call({ from: 'bob', to: '1000' }))).toMatchObject({ sipStatus: 408 });
    // The keep-alives notice, although no socket was closed.
    await within(ariDown, 3000, 'ARI to notice the frozen PBX');
    await within(amiDown, 3000, 'AMI to notice the frozen PBX');

    const ariBack = new Promise((resolve) => ari.once('reconnected', resolve));
    const amiBack = new Promise((resolve) => ami.once('reconnected', resolve));
    sim.thaw();
    await within(ariBack, 5000, 'ARI to reconnect after the thaw');
    await within(amiBack, 5000, 'AMI to reconnect after the thaw');
    // The call survived (a stopped process keeps its calls), and both protocols answer again.
    expect((await ari.channels.get(channelId)).id).toBe(channelId);
    expect((await ami.action({ Action: 'Ping' })).response).toBe('Success');
    expect(sim.pbx.channels.has(phone.channel.id)).toBe(true);
  });

  it('a restart while frozen thaws first; an AMI action during the boot window is an AmiActionError', async () => {
    const sim = await startSim();
    const ami = new AmiClient({
      host: '127.0.0.1',
      port: sim.amiPort,
      username: sim.credentials.amiUser,
      password: sim.credentials.amiPassword,
      reconnectBackoff: { initialMs: 20, maxMs: 100 },
    });
    cleanups.push(() => ami.close());
    await ami.connect();
    sim.freeze();
    const back = new Promise((resolve) => ami.once('reconnected', resolve));
    await sim.restart({ bootMs: 60_000 }); // open for as long as the test takes (closed with the simulator)
    await within(back, 3000, 'AMI to log in during the boot window');
    const error = await catchError(
      ami.action({
        Action: 'DialplanExtensionAdd',
        Context: 'c',
        Extension: '1',
        Priority: 1,
        Application: 'NoOp',
      }),
    );
    expect(error).toBeInstanceOf(AmiActionError);
    expect((error as AmiActionError).message).toMatch(/Invalid\/unknown command/);
  });
});
