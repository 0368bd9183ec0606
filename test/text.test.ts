import { afterEach, describe, expect, it } from 'vitest';
import { HangupError, InputTimeoutError, InvalidInputError, MessageSendError } from '../src/errors.js';
import type { TextUI } from '../src/ui/text-ui.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { deferred, nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const fast = { textRateLimit: { messages: 1000, perMs: 1000 } };

describe('inbound text conversations over SIP MESSAGE', () => {
  it('runs a multi-turn conversation: prompt, menu with a wrong reply, yes/no', async () => {
    h = await startVoiceHarness({ server: fast });
    const done = deferred<{ name: string; pick: string; sure: boolean; peer: string; local: string }>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        const name = await ui.prompt('Hi! What is your name?');
        const pick = await ui.select('Reply 1 for pizza or 2 for pasta.', { '1': 'pizza', '2': 'pasta' });
        const sure = await ui.askYesNo(`${pick} for ${name}, correct?`);
        await ui.say('Thanks!');
        done.resolve({ name, pick, sure, peer: ui.remoteNumber, local: ui.localNumber });
      },
    });
    const sim = h.sim;
    const reply = async () => (await sim.nextSentText((t) => t.toUser === 'alice')).body;
    expect(await sim.sendText({ from: 'alice', to: '1000', body: 'hello' })).toBe(202);
    expect(await reply()).toBe('Hi! What is your name?');
    await sim.sendText({ from: 'alice', to: '1000', body: 'Alice' });
    expect(await reply()).toBe('Reply 1 for pizza or 2 for pasta.');
    await sim.sendText({ from: 'alice', to: '1000', body: '7' });
    expect(await reply()).toBe(
      "That wasn't one of the choices. Please try again. Reply 1 for pizza or 2 for pasta.",
    );
    await sim.sendText({ from: 'alice', to: '1000', body: '2' });
    expect(await reply()).toBe('pasta for Alice, correct? Please reply yes or no.');
    await sim.sendText({ from: 'alice', to: '1000', body: 'Yes!' });
    expect(await reply()).toBe('Thanks!');
    // "hello" opened the conversation (ui.firstMessage); it did not answer the first question.
    const result = await done.promise;
    expect(result).toMatchObject({ name: 'Alice', pick: 'pasta', sure: true, peer: 'alice', local: '1000' });
  });

  it('keeps conversations apart: two peers interleaved, one peer with two of our numbers', async () => {
    h = await startVoiceHarness({ server: fast });
    const echo = async (ui: TextUI) => {
      let text = ui.firstMessage;
      for (let i = 0; i < 2; i++) {
        await ui.say(`${ui.localNumber} heard ${ui.remoteNumber}: ${text}`);
        if (i === 0) text = await ui.prompt('');
      }
    };
    await h.server.registerExtension('1000', { text: echo });
    await h.server.registerExtension('2000', { text: echo });
    const sim = h.sim;
    await sim.sendText({ from: 'alice', to: '1000', body: 'a1' });
    await sim.sendText({ from: 'bob', to: '1000', body: 'b1' });
    await sim.sendText({ from: 'alice', to: '2000', body: 'x1' });
    await sim.sendText({ from: 'alice', to: '1000', body: 'a2' });
    await sim.sendText({ from: 'bob', to: '1000', body: 'b2' });
    await sim.sendText({ from: 'alice', to: '2000', body: 'x2' });
    const got = new Set<string>();
    for (let i = 0; i < 6; i++) got.add((await sim.nextSentText()).body);
    expect(got).toEqual(
      new Set([
        '1000 heard alice: a1',
        '1000 heard alice: a2',
        '1000 heard bob: b1',
        '1000 heard bob: b2',
        '2000 heard alice: x1',
        '2000 heard alice: x2',
      ]),
    );
  });

  it('prompt times out with an empty reply; a menu then raises InputTimeoutError', async () => {
    h = await startVoiceHarness({ server: { ...fast, maxNoInputAttempts: 2 } });
    const outcome = deferred<[string, unknown]>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        const empty = await ui.prompt('Anyone?', { timeout: 0.05 });
        const error = await ui.menu('Pick 1', { '1': () => 1 }, { timeout: 0.05 }).catch((e: unknown) => e);
        outcome.resolve([empty, error]);
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'start' });
    const [empty, error] = await outcome.promise;
    expect(empty).toBe('');
    expect(error).toBeInstanceOf(InputTimeoutError);
  });

  it('ends an idle conversation; the next text starts a new one', async () => {
    h = await startVoiceHarness({ server: { ...fast, textIdleTimeout: 0.1 } });
    let conversations = 0;
    const firstEnded = deferred<unknown>();
    const second = deferred<string>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        conversations++;
        if (conversations === 1) {
          firstEnded.resolve(await ui.prompt('Still there?', { timeout: 30 }).catch((e: unknown) => e));
        } else {
          second.resolve(ui.firstMessage);
        }
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'one' });
    expect(await firstEnded.promise).toBeInstanceOf(HangupError);
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'two' });
    expect(await second.promise).toBe('two');
    expect(conversations).toBe(2);
  });

  it('after hangup, the next text starts a new conversation', async () => {
    h = await startVoiceHarness({ server: fast });
    const bodies: string[] = [];
    const two = deferred<void>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        bodies.push(ui.firstMessage);
        await ui.hangup();
        if (bodies.length === 2) two.resolve();
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'first' });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'second' });
    await two.promise;
    expect(bodies).toEqual(['first', 'second']);
  });

  it('carries Unicode, emoji, line breaks and ";" byte-exact both ways, and sends a 4 KB body whole', async () => {
    h = await startVoiceHarness({ server: fast });
    // Asterisk passes on inbound bodies of at most 1023 bytes, without trailing line breaks.
    const inbound = 'héllo 👋 ; \r\n'.repeat(50).trimEnd();
    const big = `${'héllo 👋 ; \r\n'.repeat(300)}`.slice(0, 4096);
    const received = deferred<string>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        received.resolve(ui.firstMessage);
        await ui.say(ui.firstMessage);
        await ui.say(big);
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: inbound });
    expect(await received.promise).toBe(inbound);
    const echoed = await h.sim.nextSentText();
    expect(Buffer.from(echoed.body).equals(Buffer.from(inbound))).toBe(true);
    expect(Buffer.from((await h.sim.nextSentText()).body).equals(Buffer.from(big))).toBe(true);
  });

  it('sends a body containing "\\r\\nAction: Originate" as text, never as an AMI action', async () => {
    h = await startVoiceHarness({ server: fast });
    const attack = 'hi\r\nAction: Originate\r\nChannel: PJSIP/bob\r\nApplication: Hangup\r\n\r\n';
    await h.server.registerExtension('1000', { text: async (ui) => ui.say(attack) });
    const channelsBefore = h.sim.pbx.channels.size;
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'go' });
    expect((await h.sim.nextSentText()).body).toBe(attack);
    expect(h.sim.pbx.channels.size).toBe(channelsBefore);
  });

  it('queues texts over the rate limit instead of dropping them', async () => {
    h = await startVoiceHarness({ server: { textRateLimit: { messages: 2, perMs: 200 } } });
    const sent = deferred<number>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        await Promise.all([1, 2, 3, 4, 5].map((n) => ui.say(`m${n}`)));
        sent.resolve(h?.sim.sentTexts().length ?? 0);
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'go' });
    expect(await sent.promise).toBe(5);
    expect(h.sim.sentTexts().map((t) => t.body)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('reports a failed MessageSend as a MessageSendError', async () => {
    h = await startVoiceHarness({ server: fast });
    const error = deferred<unknown>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        h?.sim.setEndpointBehaviour('alice', { online: false });
        error.resolve(await ui.say('anyone?').catch((e: unknown) => e));
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'hi' });
    const e = await error.promise;
    expect(e).toBeInstanceOf(MessageSendError);
    expect((e as MessageSendError).asteriskMessage).toBe('Endpoint not found');
  });

  it('answers texts beyond MAX_CONCURRENT_CONVERSATIONS with a busy reply', async () => {
    h = await startVoiceHarness({ server: { ...fast, maxConcurrentConversations: 1 } });
    const release = deferred<void>();
    await h.server.registerExtension('1000', { text: async () => release.promise });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'one' });
    const declined = nextServerEvent(h.server, 'textDeclined');
    await h.sim.sendText({ from: 'bob', to: '1000', body: 'two' });
    expect((await declined)[0]).toMatchObject({ from: 'bob', reason: 'over MAX_CONCURRENT_CONVERSATIONS' });
    expect((await h.sim.nextSentText((t) => t.toUser === 'bob')).body).toMatch(/busy/);
    release.resolve();
  });

  it('texts from a trunk are replied to the number behind it', async () => {
    h = await startVoiceHarness({ server: fast });
    await h.server.registerExtension('1000', {
      text: async (ui) => ui.say(`hello ${ui.remoteNumber}`),
    });
    await h.sim.sendText({ from: '+1-555-010-9999', to: '1000', body: 'hi' });
    const reply = await h.sim.nextSentText();
    // To the number at the trunk: `pjsip:PJSIP/+15550109999@pstn` (Request-URI user and To).
    expect(reply).toMatchObject({ endpoint: 'pstn', toUser: '+15550109999', body: 'hello +15550109999' });
  });
});

describe('bridged text conversations', () => {
  it('close() does not wait forever for a text handler that ignores the end of its conversation', async () => {
    h = await startVoiceHarness();
    const started = deferred<void>();
    let stuck: NodeJS.Timeout | undefined;
    await h.server.registerExtension('1000', {
      text: async () => {
        started.resolve();
        // Its own long work, deaf to ui.signal.
        await new Promise<void>((resolve) => {
          stuck = setTimeout(resolve, 120_000);
        });
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'hi' });
    await started.promise;
    const closed = h.server.close().then(() => 'closed');
    expect(
      await Promise.race([closed, new Promise((r) => setTimeout(() => r('still waiting'), 20_000))]),
    ).toBe('closed');
    clearTimeout(stuck);
  }, 30_000);

  it('relays texts both ways until one side ends', async () => {
    h = await startVoiceHarness({ server: fast });
    const agent = deferred<TextUI>();
    const bridged = deferred<void>();
    await h.server.registerExtension('2000', {
      text: async (ui) => {
        agent.resolve(ui);
        await ui.ended;
      },
    });
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        const other = await agent.promise;
        await ui.bridge(other);
        bridged.resolve();
        await ui.ended;
      },
    });
    await h.sim.sendText({ from: 'bob', to: '2000', body: 'agent here' });
    await agent.promise;
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'customer here' });
    await bridged.promise;
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'I need help' });
    expect(await h.sim.nextSentText((t) => t.toUser === 'bob')).toMatchObject({ body: 'I need help' });
    await h.sim.sendText({ from: 'bob', to: '2000', body: 'How can I help?' });
    expect(await h.sim.nextSentText((t) => t.toUser === 'alice')).toMatchObject({ body: 'How can I help?' });
    const agentUi = await agent.promise;
    await agentUi.hangup();
    // After the agent's side ended, the customer's texts are no longer relayed.
    const customer = h.server as unknown as {
      runtime: { conversations: { find(a: string, b: string): TextUI | undefined } };
    };
    const customerUi = customer.runtime.conversations.find('1000', 'alice')!;
    const delivered = new Promise<void>((resolve) => customerUi.on('message', () => resolve()));
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'hello?' });
    await delivered;
    expect(h.sim.sentTexts().filter((t) => t.toUser === 'bob')).toHaveLength(1);
  });
});

describe('in-call text', () => {
  it('sends text into a call and receives the caller’s texts to the call’s number', async () => {
    h = await startVoiceHarness({ server: fast });
    const got = deferred<string>();
    const started = deferred<VoiceUI>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        started.resolve(ui);
        got.resolve(await ui.textPrompt('Type your account number'));
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    const ui = await started.promise;
    const sent = await h.sim.nextSentText((t) => t.inDialog);
    expect(sent).toMatchObject({ channel: phone.channelName, body: 'Type your account number' });
    expect(phone.heard().texts).toEqual(['Type your account number']);
    await h.sim.sendText({ from: 'alice', to: '1000', body: '4711' });
    expect(await got.promise).toBe('4711');
    await expect(ui.sendText('two\nlines')).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('SIP addresses', () => {
  it('parses name-addr and bare URIs and normalises numbers', async () => {
    const { parseSipAddress, normalizeNumber } = await import('../src/ui/sip-address.js');
    expect(parseSipAddress('"Alice \\"A\\"" <sip:alice@127.0.0.1;transport=udp>;tag=abc')).toEqual({
      name: 'Alice "A"',
      uri: 'sip:alice@127.0.0.1',
      user: 'alice',
      host: '127.0.0.1',
    });
    expect(parseSipAddress('pjsip:1000@127.0.0.1')?.user).toBe('1000');
    expect(parseSipAddress('sip:%2B1555%@x')?.user).toBe('%2B1555%');
    expect(parseSipAddress('<sip:@host>')).toBeUndefined();
    expect(normalizeNumber('+1 (555) 010-9999')).toBe('+15550109999');
    expect(normalizeNumber('Alice')).toBe('alice');
  });
});
