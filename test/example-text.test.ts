import { afterEach, describe, expect, it } from 'vitest';
import { remind } from '../examples/outbound-call.js';
import { TEXT_BOT_NUMBER, textBot } from '../examples/text-bot.js';
import { Communicator } from '../src/communicator.js';
import { silentLogger } from '../src/logger.js';
import { startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
const extra: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of extra.splice(0)) await c();
  await h?.close();
  h = undefined;
});

describe('examples/text-bot.ts against the simulator', () => {
  it('takes an order over SIP MESSAGE', async () => {
    h = await startVoiceHarness({ server: { textRateLimit: { messages: 100, perMs: 1000 } } });
    await h.server.registerExtension(TEXT_BOT_NUMBER, { text: textBot });
    const sim = h.sim;
    const next = async () => (await sim.nextSentText()).body;
    await sim.sendText({ from: 'alice', to: TEXT_BOT_NUMBER, body: 'hi' });
    expect(await next()).toMatch(/^Hi Alice!/);
    expect(await next()).toBe(
      'What size?\n1. small\n2. medium\n3. large\nReply with the number of your choice.',
    );
    await sim.sendText({ from: 'alice', to: TEXT_BOT_NUMBER, body: '3' });
    expect(await next()).toBe('How many? Reply with one digit.');
    await sim.sendText({ from: 'alice', to: TEXT_BOT_NUMBER, body: 'two' });
    expect(await next()).toBe('Please reply with exactly 1 digit.');
    await sim.sendText({ from: 'alice', to: TEXT_BOT_NUMBER, body: '2' });
    expect(await next()).toBe('2 large pizzas, right? Please reply yes or no.');
    await sim.sendText({ from: 'alice', to: TEXT_BOT_NUMBER, body: 'yes' });
    expect(await next()).toBe('Ordered! 🍕 It will be there in 30 minutes.');
  });
});

describe('examples/outbound-call.ts against the simulator', () => {
  async function communicator(): Promise<Communicator> {
    h = await startVoiceHarness();
    const c = await Communicator.create({
      ...h.sim.connectionOptions(),
      logger: silentLogger,
      systemPhoneNumber: '5550100',
    });
    extra.push(() => c.close());
    return c;
  }

  it('confirms on a call', async () => {
    const c = await communicator();
    const outcome = remind(c, { to: 'bob', message: 'Your appointment is tomorrow.' });
    const bob = await h!.sim.nextIncomingCall('bob');
    await bob.press('1');
    expect(await outcome).toBe('confirmed');
    expect(h!.tts.said).toEqual([
      'Your appointment is tomorrow.',
      'Will you be there? Press 1 for yes or 2 for no.',
      'Great, see you then.',
    ]);
    expect((await bob.ended()).cause).toBe(16);
  });

  it('texts when the call is busy', async () => {
    const c = await communicator();
    h!.sim.setEndpointBehaviour('bob', { onCall: 'busy' });
    expect(await remind(c, { to: 'bob', message: 'Your appointment is tomorrow.' })).toBe('texted');
    expect(h!.sim.sentTexts().at(-1)).toMatchObject({
      endpoint: 'bob',
      body: 'Your appointment is tomorrow. (We tried to call: busy.)',
    });
  });
});
