import { afterEach, describe, expect, it } from 'vitest';
import { AmiActionError, AsteriskConnectionError, HangupError, TimeoutError } from '../src/errors.js';
import type { Simulator } from '../src/sandbox/simulator.js';
import type { Server, ServerEvents, ServerHealth } from '../src/server.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { capturingLogger, type LogLine } from './support/capturing-logger.js';
import { deferred, nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';
import { catchError, within } from './support/within.js';

/**
 * The Server across Asterisk failures, on the simulator: a restart under live calls, a long boot
 * window, a crash, a PBX that stays down, and a frozen PBX. Timings are shortened through the
 * Server's options (keep-alive, backoff caps); no assertion is on wall-clock time.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Fast failure detection and retries, so outages play out in a second instead of a minute. */
const FAST = {
  connection: {
    keepAliveIntervalMs: 100,
    keepAliveTimeoutMs: 150,
    requestTimeoutMs: 400,
    reconnectBackoff: { initialMs: 20, maxMs: 200 },
  },
  recoveryBackoff: { initialMs: 20, maxMs: 200 },
} as const;

async function harness(server: NonNullable<Parameters<typeof startVoiceHarness>[0]>['server'] = {}): Promise<{
  h: VoiceHarness;
  lines: LogLine[];
}> {
  const lines: LogLine[] = [];
  const h = await startVoiceHarness({ server: { ...FAST, logger: capturingLogger(lines), ...server } });
  cleanups.push(() => h.close());
  return { h, lines };
}

/** Every `ready`/`degraded` event of a server, in order. */
function readinessLog(server: Server): { events: string[]; last: () => ServerHealth | undefined } {
  const events: string[] = [];
  let last: ServerHealth | undefined;
  server.on('ready', (health) => {
    events.push('ready');
    last = health;
  });
  server.on('degraded', (health) => {
    events.push('degraded');
    last = health;
  });
  return { events, last: () => last };
}

function nextEvent<K extends keyof ServerEvents>(
  server: Server,
  event: K,
  what: string,
  ms = 10_000,
): Promise<ServerEvents[K]> {
  return within(nextServerEvent(server, event), ms, what);
}

/** Resolves once the server's health satisfies `pred` (checked now and on each `health` event). */
function healthWhen(server: Server, pred: (h: ServerHealth) => boolean, what: string): Promise<ServerHealth> {
  return within(
    new Promise((resolve) => {
      if (pred(server.health())) {
        resolve(server.health());
        return;
      }
      const listener = (health: ServerHealth) => {
        if (!pred(health)) return;
        server.off('health', listener);
        resolve(health);
      };
      server.on('health', listener);
    }),
    10_000,
    what,
  );
}

/** Resolves once the simulator is in `state` (now or later). */
function simState(sim: Simulator, state: string): Promise<void> {
  if (sim.state === state) return Promise.resolve();
  return within(
    new Promise((resolve) => {
      const listener = (s: string) => {
        if (s !== state) return;
        sim.off('state', listener);
        resolve();
      };
      sim.on('state', listener);
    }),
    10_000,
    `the simulator to be ${state}`,
  );
}

function dialplanOf(sim: Simulator, exten: string): string[] {
  return sim.pbx.dialplan
    .dump()
    .filter((d) => d.context === 'asteramisk-call' && d.exten === exten)
    .map((d) => `${d.priority}:${d.step.app}(${d.step.appData})`);
}

/**
 * A number whose calls answer, open the RTP leg and gather 2 digits; `inGather` resolves per call
 * once it waits for keys, `outcomes` collects how each handler ended.
 */
function gatherNumber(): {
  handler: (ui: VoiceUI) => Promise<void>;
  waiting: () => Promise<void>;
  outcomes: unknown[];
  digits: string[];
} {
  const outcomes: unknown[] = [];
  const digits: string[] = [];
  let waiters: (() => void)[] = [];
  let inGather = 0;
  return {
    outcomes,
    digits,
    handler: async (ui) => {
      try {
        await ui.answer();
        const got = ui.gather('Enter two digits', { numDigits: 2, timeout: 60 });
        inGather++;
        for (const w of waiters) w();
        waiters = [];
        digits.push(await got);
        outcomes.push('done');
      } catch (error) {
        outcomes.push(error);
        throw error;
      }
    },
    waiting: () =>
      new Promise<void>((resolve) => {
        const start = inGather;
        const check = () => (inGather > start ? resolve() : waiters.push(check));
        check();
      }),
  };
}

async function callsInGather(h: VoiceHarness, number: ReturnType<typeof gatherNumber>, count: number) {
  const phones = [];
  for (let i = 0; i < count; i++) {
    const inGather = number.waiting();
    phones.push(await h.sim.call({ from: i % 2 ? 'alice' : 'bob', to: '1000' }));
    await within(inGather, 5000, `call ${i} to reach its gather`);
  }
  return phones;
}

/** A new call to 1000 that presses 42 and ends normally. */
async function newCallSucceeds(h: VoiceHarness, number: ReturnType<typeof gatherNumber>): Promise<void> {
  // This call's end, not a late callEnded of a call from before the outage (a handler's outcome is
  // known before its call's resources are released and callEnded is emitted).
  let channelId = '';
  const ended = new Promise<{ error?: unknown }>((resolve) => {
    const onEnded = (ui: { channelId: string }, outcome: { error?: unknown }) => {
      if (ui.channelId !== channelId) return;
      h.server.off('callEnded', onEnded);
      resolve(outcome);
    };
    h.server.on('callEnded', onEnded);
  });
  const inGather = number.waiting();
  const phone = await h.sim.call({ from: 'alice', to: '1000' });
  channelId = phone.channelId;
  await within(inGather, 5000, 'the new call to reach its gather');
  await phone.press('42');
  const outcome = await within(ended, 5000, 'the new call to end');
  expect(outcome.error).toBeUndefined();
  expect(number.digits.at(-1)).toBe('42');
}

describe('Server recovery: Asterisk restarts', () => {
  it('restart under live calls: calls end with HangupError, the number and texts come back after FullyBooted, new calls work', async () => {
    const { h, lines } = await harness();
    const number = gatherNumber();
    const texts: string[] = [];
    const textDone = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: number.handler,
      text: async (ui) => {
        texts.push(await ui.prompt('Name?'));
        textDone.resolve();
      },
    });
    expect(h.server.health()).toEqual({
      ready: true,
      ari: 'up',
      ami: 'up',
      registered: ['1000'],
      pending: [],
      texts: 'up',
      state: 'serving',
    });
    const readiness = readinessLog(h.server);
    await callsInGather(h, number, 5);

    const degraded = nextEvent(h.server, 'degraded', 'degraded');
    const ready = nextEvent(h.server, 'ready', 'ready after the restart');
    const reregistered = nextEvent(h.server, 'reregistered', 'reregistered');
    const booted = new Promise<void>((resolve) => h.sim.once('fully-booted', resolve));
    const order: string[] = [];
    void booted.then(() => order.push('fully-booted'));
    void reregistered.then(() => order.push('reregistered'));
    await h.sim.restart({ bootMs: 300 });

    const [degradedHealth, reason] = await degraded;
    expect(degradedHealth.ready).toBe(false);
    expect(reason).toBeTruthy();
    // While booting: the number waits (no attempt yet), texts wait for the websocket.
    const [readyHealth] = await ready;
    expect(readyHealth).toEqual({
      ready: true,
      ari: 'up',
      ami: 'up',
      registered: ['1000'],
      pending: [],
      texts: 'up',
      state: 'serving',
    });
    expect((await reregistered)[0]).toMatchObject({ numbers: ['1000'], attempts: 1 });
    expect(order).toEqual(['fully-booted', 'reregistered']);
    expect(readiness.events).toEqual(['degraded', 'ready']);
    expect(dialplanOf(h.sim, '1000')).toEqual([`1:Stasis(${h.server.appName},call)`]);

    // Every call that was up ended with HangupError, and its media was released quietly.
    await within(
      (async () => {
        while (number.outcomes.length < 5) await nextServerEvent(h.server, 'callEnded');
      })(),
      5000,
      'the 5 calls to end',
    );
    expect(number.outcomes.every((o) => o instanceof HangupError)).toBe(true);
    expect(h.server.activeCalls).toBe(0);
    expect(
      lines.filter((l) => l.msg === 'Releasing a media resource failed').map((l) => String(l.fields.err)),
    ).toEqual([]);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    // The releases did meet the restarting PBX (503 Shutdown in progress, or a closed port): debug.
    const gone = lines.filter((l) => l.msg.startsWith('Media resource not released'));
    expect(gone.length).toBeGreaterThan(0);
    expect(gone.every((l) => l.level === 'debug')).toBe(true);

    await newCallSucceeds(h, number);
    expect(await h.sim.sendText({ from: 'bob', to: '1000', body: 'hi' })).toBe(202);
    await h.sim.sendText({ from: 'bob', to: '1000', body: 'Bob' });
    await within(textDone.promise, 5000, 'the text conversation to finish');
    expect(texts).toEqual(['Bob']);
  });

  it('a long boot window: nothing is tried before FullyBooted, then one registration each', async () => {
    const { h } = await harness();
    const number = gatherNumber();
    await h.server.registerExtension('1000', { voice: number.handler });
    await h.server.registerExtension('1001', { voice: number.handler });
    const failures: unknown[] = [];
    h.server.on('recoveryAttemptFailed', (f) => failures.push(f));
    const degraded = nextEvent(h.server, 'degraded', 'degraded');
    const reregistered = nextEvent(h.server, 'reregistered', 'reregistered');
    await h.sim.restart({ bootMs: 1500 });
    await degraded;
    await simState(h.sim, 'booting');
    // Logged in during the boot window: AMI is not `up` until Asterisk says FullyBooted.
    await healthWhen(h.server, (x) => x.ari === 'down' && x.ami === 'down', 'AMI down while booting');
    expect(h.server.health()).toMatchObject({ ready: false, pending: ['1000', '1001'], registered: [] });
    const [info] = await reregistered;
    expect(h.sim.state).toBe('running');
    expect(info.numbers.sort()).toEqual(['1000', '1001']);
    expect(info.attempts).toBe(2);
    expect(failures).toEqual([]);
    await newCallSucceeds(h, number);
  });

  it('DialplanExtensionAdd failing again and again after a restart: retried with warnings until it works', async () => {
    const { h, lines } = await harness();
    const number = gatherNumber();
    await h.server.registerExtension('1000', { voice: number.handler });
    const failures: ServerEvents['recoveryAttemptFailed'][0][] = [];
    const thirdFailure = deferred<void>();
    h.server.on('recoveryAttemptFailed', (f) => {
      failures.push(f);
      if (failures.length === 3) thirdFailure.resolve();
    });
    const reregistered = nextEvent(h.server, 'reregistered', 'reregistered');
    await h.sim.restart({ bootMs: 200 });
    // Asterisk boots without pbx_config (failed to load): its actions stay unknown.
    h.sim.unloadModule('pbx_config');
    await within(thirdFailure.promise, 10_000, 'three failed registrations');
    expect(h.server.health()).toMatchObject({ ready: false, ami: 'up', ari: 'up', pending: ['1000'] });
    h.sim.loadModule('pbx_config');
    const [info] = await reregistered;
    expect(info.numbers).toEqual(['1000']);
    expect(failures.map((f) => f.attempt)).toEqual(failures.map((_, i) => i + 1));
    for (const f of failures) {
      expect(f).toMatchObject({ what: 'registration', number: '1000' });
      expect(f.error).toBeInstanceOf(AmiActionError);
      expect(f.error.message).toMatch(/Invalid\/unknown command/);
      expect(f.retryInMs).toBeLessThanOrEqual(FAST.recoveryBackoff.maxMs);
    }
    const warnings = lines.filter((l) => l.msg === 'could not register a number again; retrying');
    expect(warnings.length).toBe(failures.length);
    expect(warnings.every((w) => w.level === 'warn' && typeof w.fields.attempt === 'number')).toBe(true);
    expect(info.attempts).toBe(failures.length + 1);
    expect(h.server.health()).toMatchObject({ ready: true, registered: ['1000'], pending: [] });
    await newCallSucceeds(h, number);
  });

  it('{ crash: true } under live calls: no goodbye events, calls end with HangupError once ARI is back, service returns', async () => {
    const { h } = await harness();
    const number = gatherNumber();
    await h.server.registerExtension('1000', { voice: number.handler });
    await callsInGather(h, number, 3);
    const ready = nextEvent(h.server, 'ready', 'ready after the crash');
    await h.sim.restart({ crash: true, bootMs: 200 });
    await ready;
    await within(
      (async () => {
        while (number.outcomes.length < 3) await nextServerEvent(h.server, 'callEnded');
      })(),
      5000,
      'the 3 calls to end',
    );
    expect(number.outcomes.map((o) => (o instanceof HangupError ? 'HangupError' : String(o)))).toEqual(
      Array(3).fill('HangupError'),
    );
    expect(dialplanOf(h.sim, '1000')).toHaveLength(1);
    await newCallSucceeds(h, number);
  });

  it('a PBX that stays down: nothing gives up; a number added meanwhile waits; all comes back', async () => {
    // Backoff caps of 200 ms instead of 10 s: 6 s down is ~30 capped retries of each connection,
    // more than a minute down with the default caps. The retry loops have no attempt limit.
    const { h, lines } = await harness();
    const number = gatherNumber();
    await h.server.registerExtension('1000', { voice: number.handler });
    const degraded = nextEvent(h.server, 'degraded', 'degraded');
    const ready = nextEvent(h.server, 'ready', 'ready after the outage', 20_000);
    const restarted = h.sim.restart({ downMs: 6000, bootMs: 200 });
    await degraded;
    await simState(h.sim, 'down');
    await healthWhen(h.server, (x) => x.ari === 'down' && x.ami === 'down', 'both connections to notice');
    expect(h.server.health()).toMatchObject({ ready: false, ari: 'down', ami: 'down', pending: ['1000'] });
    // Asterisk is unreachable: a request fails at once with a typed error.
    const error = await catchError(
      (
        h.server as unknown as {
          runtime: { connection: { ari: { asterisk: { info(): Promise<unknown> } } } };
        }
      ).runtime.connection.ari.asterisk.info(),
    );
    expect(error).toBeInstanceOf(AsteriskConnectionError);
    // Numbers registered now are kept pending, not refused: a voice one and a text one.
    await h.server.registerExtension('2000', { voice: number.handler });
    const texted = deferred<string>();
    await h.server.registerExtension('3000', { text: async (ui) => texted.resolve(ui.firstMessage) });
    expect(h.server.health()).toMatchObject({ pending: ['1000', '2000'], texts: 'pending' });
    await restarted;
    const [health] = await ready;
    expect(health.registered.sort()).toEqual(['1000', '2000']);
    expect(health.texts).toBe('up');
    expect(dialplanOf(h.sim, '2000')).toHaveLength(1);
    expect(await h.sim.sendText({ from: 'bob', to: '3000', body: 'still there?' })).toBe(202);
    expect(await within(texted.promise, 5000, 'the text to reach its handler')).toBe('still there?');
    // The AMI client kept trying the whole time (one warning per failed attempt).
    const amiRetries = lines.filter((l) => l.msg === 'AMI reconnect attempt failed; retrying').length;
    expect(amiRetries).toBeGreaterThanOrEqual(10);
    await newCallSucceeds(h, number);
  }, 30_000);
});

describe('Server recovery: a PBX that stops answering without closing anything', () => {
  it('notices a frozen PBX within the keep-alive bound, fails ARI requests with a typed error, recovers on thaw', async () => {
    const { h } = await harness();
    const failure = deferred<unknown>();
    const proceed = deferred<void>();
    const resumed = deferred<string>();
    const asked = deferred<void>();
    const recovered = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        asked.resolve();
        await proceed.promise;
        failure.resolve(await catchError(ui.getVariable('CALLERID(num)')));
        // Once Asterisk answers again, the call (which a stopped process kept) goes on.
        await recovered.promise;
        resumed.resolve(await ui.gather('Enter two digits', { numDigits: 2, timeout: 60 }));
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await asked.promise;

    const degraded = nextEvent(h.server, 'degraded', 'degraded while frozen');
    h.sim.freeze();
    proceed.resolve();
    expect(await within(failure.promise, 5000, 'the request to fail')).toBeInstanceOf(TimeoutError);
    const [health] = await degraded;
    expect(health.ready).toBe(false);
    await healthWhen(h.server, (x) => x.ari === 'down' && x.ami === 'down', 'both connections seen dead');

    const ready = nextEvent(h.server, 'ready', 'ready after the thaw');
    h.sim.thaw();
    const [back] = await ready;
    expect(back).toMatchObject({ ari: 'up', ami: 'up', registered: ['1000'], pending: [] });
    // The step survived (no restart): adopted, not stacked twice.
    expect(dialplanOf(h.sim, '1000')).toEqual([`1:Stasis(${h.server.appName},call)`]);
    recovered.resolve();
    await within(phone.waitForAudio(10), 5000, 'the prompt of the gather');
    await phone.press('77');
    expect(await within(resumed.promise, 5000, 'the call to go on')).toBe('77');
  });
});
