import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.js';
import type { LogFields, Logger } from '../src/logger.js';
import { Simulator } from '../src/sandbox/simulator.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { TEXT_LIMITS } from './fixtures/asterisk22-facts.js';
import { RawAmi, value } from './support/raw-ami.js';
import { rawAri } from './support/raw-ari.js';
import { deferred, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

/** The simulator keeps Asterisk 22's size limits on texts (see TEXT_LIMITS). */
let sim: Simulator;
let ami: RawAmi;
let n = 0;
const id = () => `limits${n++}`;

beforeAll(async () => {
  sim = await Simulator.start({ timeScale: 0.05 });
  ami = await RawAmi.connect(sim.amiPort);
  await ami.send([
    ['Action', 'Login'],
    ['ActionID', 'login'],
    ['Username', sim.credentials.amiUser],
    ['Secret', sim.credentials.amiPassword],
  ]);
});

afterAll(async () => {
  ami?.close();
  await sim?.close();
});

describe('simulator: the size limits of a real Asterisk 22 on texts', () => {
  it('empties inbound bodies over 1023 bytes and strips trailing line breaks', async () => {
    const ari = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'limits');
    try {
      await ari.rest('POST', '/applications/limits/subscription', { eventSource: 'endpoint:PJSIP' });
      const fits = `${'é'.repeat(511)}!`;
      expect(Buffer.byteLength(fits)).toBe(TEXT_LIMITS.inboundBodyBytes);
      const bodies = [fits, `${fits}x`, '\nkept\r\n\r\n'];
      for (const body of bodies) expect(await sim.sendText({ from: 'alice', to: '1000', body })).toBe(202);
      const messages: { body: string; variables: Record<string, string> }[] = [];
      for (const _ of bodies) messages.push((await ari.next('TextMessageReceived')).message as never);
      expect(messages.map((m) => m.body)).toEqual([fits, '', '\nkept']);
      expect(messages.map((m) => m.variables['Content-Length'])).toEqual(['1023', '1024', '9']);
    } finally {
      ari.close();
    }
  });

  it('answers an AMI line over 1024 bytes with a parse error, ActionID kept and nothing run', async () => {
    const send = (bodyBytes: number) =>
      ami.send([
        ['Action', 'MessageSend'],
        ['ActionID', id()],
        ['Destination', 'pjsip:bob'],
        ['From', 'sip:1000@127.0.0.1'],
        ['Base64Body', Buffer.from('y'.repeat(bodyBytes)).toString('base64')],
      ]);
    const before = sim.sentTexts().length;
    const fits = await send(TEXT_LIMITS.messageSendBase64BodyBytes);
    expect(value(fits, 'Message')).toBe('Message successfully sent');
    const tooLong = await send(TEXT_LIMITS.messageSendBase64BodyBytes + 1);
    expect([value(tooLong, 'Response'), value(tooLong, 'Message')]).toEqual([
      'Error',
      TEXT_LIMITS.amiLineTooLong,
    ]);
    expect(sim.sentTexts().length).toBe(before + 1);
    const ping = await ami.send([
      ['Action', 'Ping'],
      ['ActionID', id()],
    ]);
    expect(value(ping, 'Ping')).toBe('Pong');
  });

  it('refuses an ARI request line over 4093 bytes and a body over 40960 bytes', async () => {
    const auth = `Basic ${Buffer.from(`${sim.credentials.ariUser}:${sim.credentials.ariPassword}`).toString('base64')}`;
    const put = (query: string, body?: string) =>
      fetch(`${sim.ariUrl}/ari/endpoints/sendMessage?${query}`, {
        method: 'PUT',
        headers: { Authorization: auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        ...(body ? { body } : {}),
      });
    // `PUT /ari/endpoints/sendMessage?to=pjsip:bob&body=… HTTP/1.1`
    const fixed = 'PUT /ari/endpoints/sendMessage?to=pjsip:bob&body= HTTP/1.1'.length;
    const longest = await put(`to=pjsip:bob&body=${'a'.repeat(TEXT_LIMITS.ariRequestLine - fixed)}`);
    expect(longest.status).toBe(202);
    const tooLong = await put(`to=pjsip:bob&body=${'a'.repeat(TEXT_LIMITS.ariRequestLine - fixed + 1)}`);
    expect(tooLong.status).toBe(TEXT_LIMITS.ariRequestLineTooLong.status);
    expect(await tooLong.text()).toContain(`<p>${TEXT_LIMITS.ariRequestLineTooLong.text}</p>`);

    const json = (bytes: number) => {
      const empty = JSON.stringify({ to: 'pjsip:bob', body: '' }).length;
      return JSON.stringify({ to: 'pjsip:bob', body: 'b'.repeat(bytes - empty) });
    };
    expect((await put('', json(TEXT_LIMITS.ariBodyBytes))).status).toBe(202);
    expect(sim.sentTexts().at(-1)?.body.length).toBeGreaterThan(40_000);
    const tooLarge = await put('', json(TEXT_LIMITS.ariBodyBytes + 1));
    expect([tooLarge.status, await tooLarge.json()]).toEqual([
      TEXT_LIMITS.ariBodyTooLarge.status,
      TEXT_LIMITS.ariBodyTooLarge.body,
    ]);
  });

  it('sends to a number behind a trunk with the dial-string destination', async () => {
    const sent = await ami.send([
      ['Action', 'MessageSend'],
      ['ActionID', id()],
      ['Destination', 'pjsip:PJSIP/+15550100200@pstn'],
      ['From', 'sip:1000@127.0.0.1'],
      ['Body', 'parcel'],
    ]);
    expect(value(sent, 'Message')).toBe('Message successfully sent');
    expect(sim.sentTexts().at(-1)).toMatchObject({
      endpoint: 'pstn',
      toUser: '+15550100200',
      body: 'parcel',
    });
  });
});

describe('the library within those limits', () => {
  let h: VoiceHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('sends a 4 KB text in one MESSAGE and warns about an inbound text Asterisk emptied', async () => {
    const warnings: LogFields[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: (fields) => warnings.push(fields),
      error: () => {},
    };
    h = await startVoiceHarness({ server: { logger, textRateLimit: { messages: 100, perMs: 1000 } } });
    const big = '👋🏽 grüße\n'.repeat(400);
    const got = deferred<string>();
    await h.server.registerExtension('1000', {
      text: async (ui) => {
        got.resolve(ui.firstMessage);
        await ui.say(big);
      },
    });
    await h.sim.sendText({ from: 'alice', to: '1000', body: 'z'.repeat(2000) });
    expect(await got.promise).toBe('');
    expect(warnings).toContainEqual(expect.objectContaining({ from: 'alice', to: '1000', bytes: 2000 }));
    expect((await h.sim.nextSentText()).body).toBe(big);
  });

  it('refuses an in-call text longer than one AMI line before sending it', async () => {
    h = await startVoiceHarness();
    const started = deferred<VoiceUI>();
    const done = deferred<void>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        started.resolve(ui);
        await done.promise;
      },
    });
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    const ui = await started.promise;
    const longest = `${'é'.repeat((TEXT_LIMITS.sendTextMessageBytes - 1) / 2)}!`;
    expect(Buffer.byteLength(longest)).toBe(TEXT_LIMITS.sendTextMessageBytes);
    await ui.sendText(longest);
    expect((await h.sim.nextSentText((t) => t.inDialog)).body).toBe(longest);
    await expect(ui.sendText(`${longest}!`)).rejects.toBeInstanceOf(InvalidInputError);
    done.resolve();
    await phone.ended();
  });
});
