import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, InvalidInputError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import type { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { rtpRange } from './support/test-ports.js';
import {
  deferred,
  nextServerEvent,
  RecordingTts,
  startVoiceHarness,
  type VoiceHarness,
} from './support/voice-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(options: Parameters<typeof startVoiceHarness>[0] = {}): Promise<VoiceHarness> {
  const h = await startVoiceHarness(options);
  cleanups.push(() => h.close());
  return h;
}

function dialplanOf(sim: Simulator, exten: string): { priority: number; appData: string }[] {
  return sim.pbx.dialplan
    .dump()
    .filter((d) => d.context === 'asteramisk-call' && d.exten === exten)
    .map((d) => ({ priority: d.priority, appData: d.step.appData }));
}

describe('Server', () => {
  it('registers a number over AMI and removes exactly its own step on unregister and close', async () => {
    const h = await harness();
    await h.server.registerExtension('1000', { voice: async () => {} });
    await h.server.registerExtension('1001', { voice: async () => {} });
    expect(dialplanOf(h.sim, '1000')).toEqual([{ priority: 1, appData: `${h.server.appName},call` }]);
    await h.server.unregisterExtension('1000');
    expect(dialplanOf(h.sim, '1000')).toEqual([]);
    await h.server.close();
    expect(dialplanOf(h.sim, '1001')).toEqual([]);
  });

  it('stacks behind another instance serving the same number, and takes its calls when it is over capacity', async () => {
    const h = await harness({ server: { maxConcurrentCalls: 1 } });
    const second = await Server.create({
      ...h.sim.connectionOptions(),
      appName: 'second-instance',
      logger: silentLogger,
      tts: new RecordingTts(),
      stt: false,
      ttsCacheDirectory: false,
      ...rtpRange(100),
    });
    cleanups.push(() => second.close());
    const holdFirst = deferred<void>();
    const secondGot = deferred<string>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await holdFirst.promise;
      },
    });
    await second.registerExtension('1000', { voice: async (ui) => secondGot.resolve(ui.remoteNumber) });
    expect(dialplanOf(h.sim, '1000').map((d) => d.priority)).toEqual([1, 2]);

    await h.sim.call({ from: 'alice', to: '1000' });
    await h.sim.call({ from: 'bob', to: '1000' });
    expect(await secondGot.promise).toBe('bob');
    holdFirst.resolve();
    await second.close();
    expect(dialplanOf(h.sim, '1000').map((d) => d.priority)).toEqual([1]);
  });

  it('lets a call to a number without a voice handler continue in the dialplan', async () => {
    const h = await harness({ server: { dialplan: 'static', appName: 'static-app' } });
    h.sim.addExtension('asteramisk-call', '_X.', 1, 'Stasis', 'static-app,call');
    const served = deferred<string>();
    await h.server.registerExtension('5000', { voice: async (ui) => served.resolve(ui.localNumber) });
    expect(dialplanOf(h.sim, '5000')).toEqual([]);
    await h.sim.call({ from: 'alice', to: '5000' });
    expect(await served.promise).toBe('5000');
    const declined = nextServerEvent(h.server, 'callDeclined');
    const stray = await h.sim.call({ from: 'alice', to: '6000' });
    expect((await declined)[0]).toMatchObject({ number: '6000', reason: 'no handler for this number' });
    expect((await stray.ended()).cause).toBe(16);
  });

  it('registers its numbers again after Asterisk restarts', async () => {
    const h = await harness();
    await h.server.registerExtension('1000', { voice: async () => {} });
    const reregistered = nextServerEvent(h.server, 'reregistered');
    await h.sim.restart();
    expect(dialplanOf(h.sim, '1000')).toEqual([]);
    expect((await reregistered)[0]).toMatchObject({ numbers: ['1000'], attempts: 1 });
    // Registering it again adds nothing: the registrar knows the step is there.
    await h.server.registerExtension('1000', { voice: async () => {} });
    expect(dialplanOf(h.sim, '1000')).toHaveLength(1);
  });

  it('refuses an unsafe number and a config without credentials', async () => {
    const h = await harness();
    await expect(h.server.registerExtension('10\r\n00', { voice: async () => {} })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(
      Server.create({ ariUser: 'x', ariPassword: '', amiUser: 'y', amiPassword: 'z' }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      Server.create({
        ...h.sim.connectionOptions(),
        tts: 'openai',
        openaiApiKey: undefined,
        logger: silentLogger,
      }),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('synthesizes a repeated prompt once, and once across a restart with a disk cache', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'asteramisk-tts-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const tts = new RecordingTts();
    const h = await harness({ server: { tts, ttsCacheDirectory: dir } });
    const done = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.say('Cached prompt');
        await ui.say('Cached prompt');
        done.resolve();
      },
    });
    await h.sim.call({ from: 'alice', to: '1000' });
    await done.promise;
    expect(tts.calls).toBe(1);
    await h.server.close();

    const restarted = await Server.create({
      ...h.sim.connectionOptions(),
      appName: 'after-restart',
      logger: silentLogger,
      tts,
      stt: false,
      ttsCacheDirectory: dir,
      ...rtpRange(100),
    });
    cleanups.push(() => restarted.close());
    const again = deferred<void>();
    await restarted.registerExtension('1001', {
      voice: async (ui) => {
        await ui.say('Cached prompt');
        again.resolve();
      },
    });
    await h.sim.call({ from: 'alice', to: '1001' });
    await again.promise;
    expect(tts.calls).toBe(1);
  });
});

describe('DialplanRegistrar', () => {
  it('joins two concurrent registrations of the same step instead of stacking a second priority', async () => {
    const h = await harness();
    const registrar = (
      h.server as unknown as {
        nodes: { registrar: import('../src/asterisk/dialplan-registrar.js').DialplanRegistrar }[];
      }
    ).nodes[0]!.registrar;
    const [a, b] = await Promise.all([
      registrar.add('asteramisk-call', '3000', 'Stasis', 'x,call'),
      registrar.add('asteramisk-call', '3000', 'Stasis', 'x,call'),
    ]);
    expect(a).toBe(b);
    expect(dialplanOf(h.sim, '3000')).toEqual([{ priority: 1, appData: 'x,call' }]);
  });
});

describe('text intake', () => {
  it('subscribes to PJSIP endpoints only once a number has a text handler', async () => {
    const h = await harness();
    await h.server.registerExtension('1000', { voice: async () => {} });
    expect(h.sim.pbx.applicationJson(h.server.appName).endpoint_ids).toEqual([]);
    expect(await h.sim.sendText({ from: 'alice', to: '1000', body: 'hi' })).toBe(404);
    await h.server.registerExtension('2000', { text: async () => {} });
    expect(h.sim.pbx.applicationJson(h.server.appName).endpoint_ids).toEqual(['PJSIP']);
    expect(await h.sim.sendText({ from: 'alice', to: '2000', body: 'hi' })).toBe(202);
  });
});
