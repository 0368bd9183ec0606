import { afterEach, describe, expect, it, vi } from 'vitest';
import { Communicator } from '../src/communicator.js';
import { CallFailedError, InvalidInputError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { rtpRange } from './support/test-ports.js';
import { RecordingTts, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function standalone(): Promise<{ sim: Simulator; c: Communicator; tts: RecordingTts }> {
  const sim = await Simulator.start({ timeScale: 0.02 });
  cleanups.push(() => sim.close());
  const tts = new RecordingTts();
  const c = await Communicator.create({
    ...sim.connectionOptions(),
    logger: silentLogger,
    tts,
    stt: false,
    ttsCacheDirectory: false,
    systemPhoneNumber: '5550100',
    systemName: 'Shop',
    ...rtpRange(100),
    textRateLimit: { messages: 100, perMs: 1000 },
  });
  cleanups.push(() => c.close());
  return { sim, c, tts };
}

describe('Communicator: outbound calls', () => {
  it('calls an endpoint and resolves with a VoiceUI once answered', async () => {
    const { sim, c, tts } = await standalone();
    const calling = c.makeCall('bob');
    const bob = await sim.nextIncomingCall('bob');
    const ui = await calling;
    expect([ui.remoteNumber, ui.localNumber, ui.answered]).toEqual(['bob', '5550100', true]);
    expect(bob.channel.caller).toEqual({ name: 'Shop', number: '5550100' });
    await ui.say('Your order has shipped');
    expect(tts.said).toEqual(['Your order has shipped']);
    expect(bob.heardMs).toBeGreaterThan(0);
    await ui.hangup();
    expect((await bob.ended()).cause).toBe(16);
  });

  it('calls a number through the PSTN endpoint', async () => {
    const { sim, c } = await standalone();
    const calling = c.makeCall('+15550100200');
    const callee = await sim.nextIncomingCall('pstn');
    expect(callee.number).toBe('+15550100200');
    const ui = await calling;
    await ui.hangup();
  });

  it('rejects busy, no answer and timeout with CallFailedError carrying the cause', async () => {
    const { sim, c } = await standalone();
    sim.setEndpointBehaviour('bob', { onCall: 'busy' });
    const busy = await c.makeCall('bob').catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(CallFailedError);
    expect([(busy as CallFailedError).reason, (busy as CallFailedError).hangupCause]).toEqual(['busy', 17]);

    sim.setEndpointBehaviour('bob', { onCall: 'no-answer' });
    const noAnswer = await c.makeCall('bob', { timeout: 0.2 }).catch((e: unknown) => e);
    expect([(noAnswer as CallFailedError).reason, (noAnswer as CallFailedError).hangupCause]).toEqual([
      'no-answer',
      19,
    ]);

    sim.setEndpointBehaviour('bob', { online: false });
    const offline = await c.makeCall('bob').catch((e: unknown) => e);
    expect((offline as CallFailedError).reason).toBe('unreachable');
    expect(sim.pbx.channels.size).toBe(0);
  });

  it('cancels a ringing call when its signal aborts', async () => {
    const { sim, c } = await standalone();
    sim.setEndpointBehaviour('bob', { onCall: 'no-answer' });
    const controller = new AbortController();
    const calling = c.makeCall('bob', { signal: controller.signal });
    await new Promise<void>((resolve) => sim.pbx.once('ringing', () => resolve()));
    controller.abort();
    const error = await calling.catch((e: unknown) => e);
    expect((error as CallFailedError).reason).toBe('cancelled');
    await new Promise<void>((resolve) =>
      sim.pbx.channels.size === 0 ? resolve() : sim.pbx.once('hangup', () => resolve()),
    );
    expect(sim.pbx.channels.size).toBe(0);
  });

  it('refuses numbers and dial strings that could inject dialplan syntax', async () => {
    const { c } = await standalone();
    for (const bad of ['bob&PJSIP/alice', 'PJSIP/bob', '1000,1', 'a b', '']) {
      await expect(c.makeCall(bad)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(c.makeCall('bob', { dialString: 'PJSIP/bob&PJSIP/alice' })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(c.makeCall('bob', { callerIdName: 'x" <1>' })).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('Communicator: outbound texts', () => {
  it('opens a conversation and receives the replies', async () => {
    const { sim, c } = await standalone();
    const ui = await c.makeText('alice');
    const answer = ui.prompt('Rate us from 1 to 5');
    const asked = await sim.nextSentText();
    expect(asked).toMatchObject({ endpoint: 'alice', body: 'Rate us from 1 to 5' });
    expect(asked.from).toContain('5550100');
    await sim.sendText({ from: 'alice', to: '5550100', body: '5' });
    expect(await answer).toBe('5');
    await ui.hangup();
  });
});

describe('Communicator alongside a Server', () => {
  let h: VoiceHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('shares the Server’s ARI connection (one Stasis app)', async () => {
    h = await startVoiceHarness();
    const c = await Communicator.create({ ...h.sim.connectionOptions(), logger: silentLogger });
    cleanups.push(() => c.close());
    expect(h.sim.pbx.appNames()).toEqual([h.server.appName]);
    const calling = c.makeCall('1001');
    await h.sim.nextIncomingCall('1001');
    const ui = await calling;
    await ui.say('hello');
    expect(h.tts.said).toContain('hello');
    await ui.hangup();
  });
});

describe('Communicator: call files', () => {
  it('places a call through the outgoing spool and reports an unanswered one from the archive', async () => {
    const { mkdtemp, readFile, readdir, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const spool = await mkdtemp(join(tmpdir(), 'asteramisk-spool-'));
    cleanups.push(() => rm(spool, { recursive: true, force: true }));
    const sim = await Simulator.start({ timeScale: 0.02, spoolDirectory: spool });
    cleanups.push(() => sim.close());
    const c = await Communicator.create({
      ...sim.connectionOptions(),
      logger: silentLogger,
      tts: false,
      stt: false,
      systemPhoneNumber: '5550100',
      callFiles: { outgoing: join(spool, 'outgoing'), done: join(spool, 'outgoing_done') },
    });
    cleanups.push(() => c.close());

    const calling = c.makeCall('bob', { timeout: 5 });
    await sim.nextIncomingCall('bob');
    const ui = await calling;
    expect(ui.remoteNumber).toBe('bob');
    // pbx_spool moves the file into outgoing_done first and appends its Status afterwards; the
    // file system offers no event for the append, so this polls (vi.waitFor) for it.
    const file = await vi.waitFor(async () => {
      const [archived] = await readdir(join(spool, 'outgoing_done'));
      const text = await readFile(join(spool, 'outgoing_done', archived!), 'utf8');
      expect(text).toMatch(/^Status: Completed$/m);
      return text;
    });
    expect(file).toMatch(/^Channel: PJSIP\/bob$/m);
    expect(file).toMatch(/^Application: Stasis$/m);
    await ui.hangup();

    sim.setEndpointBehaviour('bob', { onCall: 'busy' });
    const failed = await c.makeCall('bob', { timeout: 5 }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CallFailedError);
    expect((failed as CallFailedError).reason).toBe('no-answer');
    expect((await readdir(join(spool, 'outgoing'))).filter((n) => n.endsWith('.call'))).toEqual([]);
  });
});
