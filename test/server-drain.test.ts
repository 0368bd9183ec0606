import { afterEach, describe, expect, it } from 'vitest';
import { HangupError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import type { Simulator } from '../src/sandbox/simulator.js';
import { type DrainResult, Server, type ServerHealth } from '../src/server.js';
import { rtpRange } from './support/test-ports.js';
import { deferred, nextServerEvent, RecordingTts, startVoiceHarness } from './support/voice-harness.js';
import { within } from './support/within.js';

/**
 * Graceful drain: `close({ drainSeconds })` and SIGTERM in serveForever. The dialplan steps go
 * first, calls and conversations in progress get to finish, what is left at the deadline is hung
 * up, nothing new is taken meanwhile and no inbound text is accepted and then dropped.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(server: NonNullable<Parameters<typeof startVoiceHarness>[0]>['server'] = {}) {
  const h = await startVoiceHarness({ server });
  cleanups.push(() => h.close());
  return h;
}

/** Resolves once the server reports (a `health` event, or now) that none of its steps is in place. */
function stepsRemoved(server: Server): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      if (server.health().registered.length === 0) {
        resolve();
        return;
      }
      const listener = (health: ServerHealth) => {
        if (health.registered.length > 0) return;
        server.off('health', listener);
        resolve();
      };
      server.on('health', listener);
    }),
    5000,
    'the dialplan steps to be removed',
  );
}

function dialplanOf(sim: Simulator, exten: string): string[] {
  return sim.pbx.dialplan
    .dump()
    .filter((d) => d.context === 'asteramisk-call' && d.exten === exten)
    .map((d) => `${d.priority}:${d.step.appData}`);
}

/** Calls that wait in their handler until the test lets each go (or forever). */
function heldCalls() {
  const releases = new Map<string, () => void>();
  const started: string[] = [];
  const outcomes = new Map<string, unknown>();
  const onStart: (() => void)[] = [];
  return {
    started,
    outcomes,
    release: (from: string) => releases.get(from)?.(),
    handler: async (ui: import('../src/ui/voice-ui.js').VoiceUI) => {
      const hold = deferred<void>();
      releases.set(ui.remoteNumber, hold.resolve);
      await ui.answer();
      started.push(ui.remoteNumber);
      for (const f of onStart.splice(0)) f();
      try {
        // A call the test never releases stays here until it is hung up.
        await Promise.race([hold.promise, ui.sleep(3600)]);
        await ui.say('Goodbye');
        outcomes.set(ui.remoteNumber, 'finished');
      } catch (error) {
        outcomes.set(ui.remoteNumber, error);
        throw error;
      }
    },
    waitStarted: (count: number) =>
      within(
        new Promise<void>((resolve) => {
          const check = () => (started.length >= count ? resolve() : onStart.push(check));
          check();
        }),
        5000,
        `${count} calls to start`,
      ),
  };
}

describe('Server drain', () => {
  it('removes the dialplan steps first, lets handlers finish, hangs up the rest at the deadline', async () => {
    const h = await harness();
    const calls = heldCalls();
    await h.server.registerExtension('1000', { voice: calls.handler });
    const alice = await h.sim.call({ from: 'alice', to: '1000' });
    const bob = await h.sim.call({ from: 'bob', to: '1000' });
    await calls.waitStarted(2);

    const health: string[] = [];
    h.server.on('degraded', (x) => health.push(`degraded:${x.state}`));
    const draining = nextServerEvent(h.server, 'draining');
    const drained = nextServerEvent(h.server, 'drained');
    const closed = h.server.close({ drainSeconds: 1 });
    expect((await draining)[0]).toEqual({ drainSeconds: 1, activeCalls: 2, activeConversations: 0 });
    expect(h.server.health()).toMatchObject({ ready: false, state: 'draining' });
    // While both calls are still up, the step is already gone: new calls go elsewhere.
    await stepsRemoved(h.server);
    expect(dialplanOf(h.sim, '1000')).toEqual([]);
    expect(h.server.activeCalls).toBe(2);
    await expect(h.sim.call({ from: '1001', to: '1000' })).rejects.toMatchObject({ sipStatus: 404 });

    // Alice's handler finishes on its own during the drain; bob's never does.
    calls.release('alice');
    const [result] = await drained;
    expect(result).toMatchObject({
      callsFinished: 1,
      callsHungUp: 1,
      conversationsFinished: 0,
      conversationsEnded: 0,
    } satisfies Partial<DrainResult>);
    await closed;
    expect(calls.outcomes.get('alice')).toBe('finished');
    expect(calls.outcomes.get('bob')).toBeInstanceOf(HangupError);
    expect((await alice.ended()).cause).toBe(16);
    expect((await bob.ended()).cause).toBe(16);
    expect(h.sim.pbx.channels.size).toBe(0);
    expect(h.sim.pbx.bridges.size).toBe(0);
    expect(health).toEqual(['degraded:draining']);
    expect(h.server.health()).toMatchObject({ state: 'closed', ready: false });
  });

  it('a call that still reaches a draining server continues in the dialplan', async () => {
    const h = await harness({ dialplan: 'static', appName: 'drain-static' });
    h.sim.addExtension('asteramisk-call', '5000', 1, 'Stasis', 'drain-static,call');
    h.sim.addExtension('asteramisk-call', '5000', 2, 'Hangup');
    const calls = heldCalls();
    await h.server.registerExtension('5000', { voice: calls.handler });
    await h.sim.call({ from: 'alice', to: '5000' });
    await calls.waitStarted(1);
    const draining = nextServerEvent(h.server, 'draining');
    const closed = h.server.close({ drainSeconds: 30 });
    await draining;
    const declined = nextServerEvent(h.server, 'callDeclined');
    const late = await h.sim.call({ from: 'bob', to: '5000' });
    expect((await declined)[0]).toMatchObject({ number: '5000', reason: 'server is draining' });
    // Priority 2 of the dialplan (the fallback) hangs it up.
    expect((await late.ended()).cause).toBe(16);
    calls.release('alice');
    await closed;
    expect(calls.outcomes.get('alice')).toBe('finished');
  });

  it('the next instance takes new calls while the first one drains its own', async () => {
    const h = await harness();
    const second = await Server.create({
      ...h.sim.connectionOptions(),
      appName: 'drain-second',
      logger: silentLogger,
      tts: new RecordingTts(),
      stt: false,
      ttsCacheDirectory: false,
      ...rtpRange(100),
    });
    cleanups.push(() => second.close());
    const first = heldCalls();
    await h.server.registerExtension('1000', { voice: first.handler });
    const secondGot = deferred<string>();
    await second.registerExtension('1000', { voice: async (ui) => secondGot.resolve(ui.remoteNumber) });
    expect(dialplanOf(h.sim, '1000')).toEqual([`1:${h.server.appName},call`, '2:drain-second,call']);
    await h.sim.call({ from: 'alice', to: '1000' });
    await first.waitStarted(1);

    const draining = nextServerEvent(h.server, 'draining');
    const closed = h.server.close({ drainSeconds: 30 });
    await draining;
    await stepsRemoved(h.server);
    // Its priority 1 became a pass-through, so calls still start and reach priority 2.
    expect(dialplanOf(h.sim, '1000')).toEqual([
      '1:asteramisk: an instance left; on to the next priority',
      '2:drain-second,call',
    ]);
    await h.sim.call({ from: 'bob', to: '1000' });
    expect(await within(secondGot.promise, 5000, 'the second instance to take the call')).toBe('bob');
    first.release('alice');
    await closed;
    expect(first.outcomes.get('alice')).toBe('finished');
    // The last one to leave takes the placeholder with it.
    await second.close();
    expect(dialplanOf(h.sim, '1000')).toEqual([]);
  });

  it('texts: open conversations still get their texts and finish, new ones are declined with a reply, the rest end at the deadline', async () => {
    const h = await harness({ textIdleTimeout: 600 });
    const finished: string[] = [];
    const errors: unknown[] = [];
    const started = deferred<void>();
    let open = 0;
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        open++;
        if (open === 2) started.resolve();
        try {
          if (ui.remoteNumber === 'alice') {
            const name = await ui.prompt('Your name?');
            await ui.say(`Bye ${name}`);
            finished.push(ui.remoteNumber);
          } else {
            // Never finishes by itself: waits for a reply that never comes.
            await ui.prompt('Anything else?', { timeout: 3600 });
          }
        } catch (error) {
          errors.push(error);
          throw error;
        }
      },
    });
    const reply = (to: string) => h.sim.nextSentText((t) => t.toUser === to);
    expect(await h.sim.sendText({ from: 'alice', to: '1000', body: 'hi' })).toBe(202);
    expect((await reply('alice')).body).toBe('Your name?');
    await h.sim.sendText({ from: 'bob', to: '1000', body: 'hi' });
    await within(started.promise, 5000, 'both conversations to start');

    const declined = nextServerEvent(h.server, 'textDeclined');
    const drained = nextServerEvent(h.server, 'drained');
    const closed = h.server.close({ drainSeconds: 1 });
    // A text opening a new conversation during the drain: declined, and told so.
    await h.sim.sendText({ from: '1001', to: '1000', body: 'hello?' });
    expect((await declined)[0]).toMatchObject({ from: '1001', reason: 'server is draining' });
    expect((await reply('1001')).body).toMatch(/busy/i);
    // A text of a conversation in progress still reaches it.
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'Alice' });
    expect((await reply('alice')).body).toBe('Bye Alice');
    const [result] = await drained;
    expect(result).toMatchObject({ conversationsFinished: 1, conversationsEnded: 1 });
    await closed;
    expect(finished).toEqual(['alice']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HangupError);
  });

  it('serveForever: SIGTERM starts the drain, a second SIGTERM hangs up what is left at once', async () => {
    const h = await harness({ drainSeconds: 3600 });
    const calls = heldCalls();
    await h.server.registerExtension('1000', { voice: calls.handler });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await calls.waitStarted(1);
    const serving = h.server.serveForever();
    const draining = nextServerEvent(h.server, 'draining');
    process.emit('SIGTERM', 'SIGTERM');
    expect((await draining)[0]).toMatchObject({ drainSeconds: 3600, activeCalls: 1 });
    await stepsRemoved(h.server);
    expect(dialplanOf(h.sim, '1000')).toHaveLength(0);
    const drained = nextServerEvent(h.server, 'drained');
    process.emit('SIGTERM', 'SIGTERM');
    expect((await within(drained, 5000, 'the second signal to end the drain'))[0]).toMatchObject({
      callsHungUp: 1,
    });
    await within(serving, 5000, 'serveForever to resolve');
    expect(calls.outcomes.get('alice')).toBeInstanceOf(HangupError);
    expect((await phone.ended()).cause).toBe(16);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});
