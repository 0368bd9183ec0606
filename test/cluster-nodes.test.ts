import { afterEach, describe, expect, it } from 'vitest';
import { Communicator } from '../src/communicator.js';
import { silentLogger } from '../src/logger.js';
import type { SimPhone } from '../src/sandbox/sim-phone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server, type ServerHealth } from '../src/server.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { rtpRange } from './support/test-ports.js';
import { nextServerEvent } from './support/voice-harness.js';

/**
 * One Server and one Communicator on two Asterisk nodes (two simulators): calls and texts from
 * both are served, each call stays on its node, a node that goes down only takes its own calls
 * with it and is served again when it returns; outbound calls go to the least busy live node.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function twoNodes(): Promise<[Simulator, Simulator]> {
  const nodes = [await Simulator.start(), await Simulator.start()] as [Simulator, Simulator];
  for (const sim of nodes) cleanups.push(() => sim.close());
  return nodes;
}

const nodeOf = (sim: Simulator) => {
  const { asteriskHost, ariPort, amiPort } = sim.connectionOptions();
  return { asteriskHost, ariPort, amiPort };
};

async function answered(phone: SimPhone): Promise<SimPhone> {
  await phone.waitForAnswer();
  return phone;
}

function healthWhere(server: Server, check: (h: ServerHealth) => boolean): Promise<ServerHealth> {
  if (check(server.health())) return Promise.resolve(server.health());
  return new Promise((resolve) => {
    const onHealth = (h: ServerHealth) => {
      if (!check(h)) return;
      server.off('health', onHealth);
      resolve(h);
    };
    server.on('health', onHealth);
  });
}

describe('one Server on two Asterisk nodes', () => {
  it('takes calls and texts from both; a node down takes only its own calls, and is served again when back', async () => {
    const [one, two] = await twoNodes();
    const shared = one.connectionOptions();
    const server = await Server.create({
      ...shared,
      asterisks: [nodeOf(one), nodeOf(two)],
      appName: 'two-nodes',
      tts: false,
      stt: false,
      logger: silentLogger,
      ...rtpRange(200),
    });
    cleanups.push(() => server.close());
    const calls: VoiceUI[] = [];
    await server.registerExtension('1000', {
      voice: async (ui) => {
        calls.push(ui);
        await ui.answer();
        await ui.sleep(3600);
      },
      text: async (ui) => {
        await ui.say(`hello ${ui.remoteNumber}`);
      },
    });
    const health = server.health();
    expect(health.ready).toBe(true);
    expect(health.nodes?.map((n) => n.registered)).toEqual([['1000'], ['1000']]);

    const a = await answered(await one.call({ from: '+15550001', to: '1000' }));
    const b = await answered(await two.call({ from: '+15550002', to: '1000' }));
    expect(calls.map((c) => c.remoteNumber).sort()).toEqual(['+15550001', '+15550002']);

    // Texts from both nodes, answered through the node they came from.
    await one.sendText({ from: 'alice', to: '1000', body: 'hi' });
    expect((await one.nextSentText()).body).toBe('hello alice');
    await two.sendText({ from: 'bob', to: '1000', body: 'hi' });
    expect((await two.nextSentText()).body).toBe('hello bob');

    // Node one goes down for a while: its call ends; node two's call goes on.
    const ended = nextServerEvent(server, 'callEnded');
    const down = healthWhere(server, (h) => h.nodes?.[0]?.ari === 'down');
    const restarted = one.restart({ downMs: 600 });
    await a.ended();
    expect((await ended)[0].remoteNumber).toBe('+15550001');
    const degraded = await down;
    expect(degraded.ready).toBe(false);
    expect(degraded.nodes?.[1]).toMatchObject({ ari: 'up', ami: 'up', registered: ['1000'] });
    expect(b.hungUp).toBe(false);
    const c = await answered(await two.call({ from: '+15550003', to: '1000' }));
    expect(c.hungUp).toBe(false);

    // Back: the number is registered on it again, and it takes calls.
    await restarted;
    await healthWhere(server, (h) => h.ready);
    const d = await answered(await one.call({ from: '+15550004', to: '1000' }));
    expect(calls.at(-1)?.remoteNumber).toBe('+15550004');
    expect([b, c, d].every((p) => !p.hungUp)).toBe(true);
  }, 30_000);

  it('a Communicator calls out through the node with the fewest calls, skipping a node that is down', async () => {
    const [one, two] = await twoNodes();
    const communicator = await Communicator.create({
      ...one.connectionOptions(),
      asterisks: [nodeOf(one), nodeOf(two)],
      appName: 'two-nodes-out',
      tts: false,
      stt: false,
      logger: silentLogger,
      ...rtpRange(200),
    });
    cleanups.push(() => communicator.close());
    // Each call is placed through the node with the fewest calls of this process.
    const atOne = one.nextIncomingCall();
    const first = await communicator.makeCall('bob');
    await atOne;
    const atTwo = two.nextIncomingCall();
    const second = await communicator.makeCall('bob');
    await atTwo;
    await first.hangup();
    await second.hangup();

    // Node one down: calls go through node two; a node can also be named.
    const restarted = one.restart({ downMs: 1500 });
    cleanups.push(() => restarted);
    // The Communicator has no event for a node's state: look until its ARI socket has seen the close.
    while (communicator.nodes()[0]!.up) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(communicator.nodes().map((n) => n.up)).toEqual([false, true]);
    const viaTwo = two.nextIncomingCall();
    const skipped = await communicator.makeCall('bob');
    await viaTwo;
    await skipped.hangup();
    const named = two.nextIncomingCall();
    const chosen = await communicator.makeCall('bob', { node: 1 });
    await named;
    await chosen.hangup();
  }, 30_000);
});
