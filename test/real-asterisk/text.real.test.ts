import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEXT_BOT_NUMBER, textBot } from '../../examples/text-bot.js';
import { Communicator } from '../../src/communicator.js';
import { MessageSendError } from '../../src/index.js';
import type { Logger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import type { TextUI } from '../../src/ui/text-ui.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { within } from '../support/within.js';
import { holdPhones, type ReceivedText, SipPhone } from './sip-phone.js';

/**
 * Texts (SIP MESSAGE) through a real Asterisk 22, with a SIP phone of our own as `bob` on
 * 127.0.0.1:5062 (and as `1001` on :5063, standing in for a trunk). They run only when
 * ASTERISK_HOST is set, with ASTERISK_ARI_USER/PASS and ASTERISK_AMI_USER/PASS, against a PBX
 * configured like /opt/ast22 (see test/real-asterisk/README.md): endpoints `bob` and `1001` with
 * static contacts on those ports, identified by From user, no authentication. No dialplan is
 * needed: texts reach the app through its `endpoint:PJSIP` subscription.
 */
const host = process.env.ASTERISK_HOST;
realAsteriskAvailable('text.real.test.ts');

/** A second number of ours: echoes every text, so bodies can travel there and back. */
const ECHO_NUMBER = '1077';
/** Asking the echo number for this gets a 4 KB reply. */
const BIG_REQUEST = 'send me the big one';
const BIG_REPLY = `${'Grüße 👋🏽 — '.repeat(200)}end`;

/** What Asterisk sends for a text from our number `from` to bob, header by header. */
function expectFromUs(text: ReceivedText, from: string, to = 'bob', port = 5062): void {
  expect(text.inDialog).toBe(false);
  expect(text.requestUri).toBe(`sip:${to}@127.0.0.1:${port}`);
  expect(text.from).toMatch(new RegExp(`^<sip:${from.replace('+', '\\+')}@${host}>;tag=`));
  expect(text.to).toBe(`<sip:${to}@127.0.0.1>`);
  // Asterisk sets the type only: no charset parameter, whatever the body.
  expect(text.contentType).toBe('text/plain');
}

describe.skipIf(!host)(
  'texts against a real Asterisk 22 (requires ASTERISK_HOST, ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS)',
  () => {
    let release: () => void = () => {};
    let bob: SipPhone;
    let server: Server;
    const warnings: string[] = [];
    /** Bodies as the echo number's handler received them. */
    const echoed: string[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: (_fields, message) => warnings.push(message ?? ''),
      error: (_fields, message) => warnings.push(`error: ${message ?? ''}`),
    };

    async function echo(ui: TextUI): Promise<void> {
      const answer = async (body: string) => {
        echoed.push(body);
        await ui.say(body === BIG_REQUEST ? BIG_REPLY : body === '' ? '(empty)' : body);
      };
      await answer(ui.firstMessage);
      for await (const body of ui.inputStream()) {
        if (body === 'bye') return;
        await answer(body);
      }
    }

    /** bob texts `to`; Asterisk takes every text for a number with 202 Accepted. */
    async function bobTexts(to: string, body: string | Buffer): Promise<void> {
      const response = await bob.sendText(to, body);
      expect(`${response.status} ${response.reason}`).toBe('202 Accepted');
    }

    beforeAll(async () => {
      release = await holdPhones(['bob', '1001']);
      bob = await SipPhone.open({ user: 'bob', port: 5062, displayName: 'Bob' });
      server = await Server.create({
        appName: `asteramisk-realtext-${process.pid}`,
        logger,
        tts: false,
        stt: false,
        ttsCacheDirectory: false,
        textRateLimit: { messages: 100, perMs: 1000 },
        textReplyTimeout: 20,
      });
      await server.registerExtension(TEXT_BOT_NUMBER, { text: textBot });
      await server.registerExtension(ECHO_NUMBER, { text: echo });
    }, 240_000);

    afterAll(async () => {
      await server?.close();
      await bob?.close();
      release();
    });

    /** Waits until every conversation has ended (so the next text starts a new one). */
    async function quiet(): Promise<void> {
      await within(
        (async () => {
          while (server.activeConversations > 0) await new Promise((r) => setTimeout(r, 20));
        })(),
        5000,
        'the open conversations to end',
      );
    }

    it('runs the whole text bot conversation, every reply byte for byte', async () => {
      const next = async (expected: string) => {
        const text = await bob.nextText();
        expectFromUs(text, TEXT_BOT_NUMBER);
        expect(text.body).toBe(expected);
        expect(text.bytes.equals(Buffer.from(expected, 'utf8'))).toBe(true);
      };
      await bobTexts(TEXT_BOT_NUMBER, 'hi');
      // The display name of bob's From header, as the phone sent it.
      await next('Hi Bob! I take pizza orders. Reply "back" inside a step to go back.');
      await next('What size?\n1. small\n2. medium\n3. large\nReply with the number of your choice.');
      await bobTexts(TEXT_BOT_NUMBER, '3');
      await next('How many? Reply with one digit.');
      await bobTexts(TEXT_BOT_NUMBER, 'two');
      await next('Please reply with exactly 1 digit.');
      await bobTexts(TEXT_BOT_NUMBER, '2');
      await next('2 large pizzas, right? Please reply yes or no.');
      await bobTexts(TEXT_BOT_NUMBER, 'yes');
      await next('Ordered! 🍕 It will be there in 30 minutes.');
      await quiet();
      expect(warnings).toEqual([]);
    }, 30_000);

    it('carries Unicode, emoji, line breaks and AMI-looking text both ways unchanged', async () => {
      const bodies = [
        'Grüße, 世界! 👋🏽 ½ ≠ ∞ — "quoted" <angle> ; semi; colon: end',
        'line one\nline two\r\nline three',
        '\r\nAction: Originate\r\nChannel: PJSIP/alice\r\nApplication: Hangup',
        'Action: Originate\nChannel: PJSIP/alice\n\nAction: Logoff',
      ];
      for (const body of bodies) {
        await bobTexts(ECHO_NUMBER, body);
        const back = await bob.nextText();
        expectFromUs(back, ECHO_NUMBER);
        expect(back.body).toBe(body);
        expect(back.bytes.equals(Buffer.from(body, 'utf8'))).toBe(true);
      }
      expect(echoed.slice(-bodies.length)).toEqual(bodies);
    }, 30_000);

    it('sends a 4 KB reply as one MESSAGE, byte for byte', async () => {
      expect(Buffer.byteLength(BIG_REPLY)).toBeGreaterThan(4096);
      await bobTexts(ECHO_NUMBER, BIG_REQUEST);
      const back = await bob.nextText();
      expectFromUs(back, ECHO_NUMBER);
      expect(back.bytes.length).toBe(Buffer.byteLength(BIG_REPLY));
      expect(back.body).toBe(BIG_REPLY);
    }, 30_000);

    it('gets inbound bodies up to 1023 bytes; Asterisk empties longer ones and strips trailing line breaks', async () => {
      // res_pjsip_messaging copies an incoming body into a 1024-byte buffer: 1023 bytes fit.
      const fits = `${'é'.repeat(511)}!`; // 1023 bytes
      expect(Buffer.byteLength(fits)).toBe(1023);
      await bobTexts(ECHO_NUMBER, fits);
      expect((await bob.nextText()).body).toBe(fits);

      // 1024 bytes and more: 202 Accepted, but the event carries an empty body.
      await bobTexts(ECHO_NUMBER, 'x'.repeat(1024));
      expect((await bob.nextText()).body).toBe('(empty)');
      await bobTexts(ECHO_NUMBER, 'y'.repeat(4096));
      expect((await bob.nextText()).body).toBe('(empty)');
      expect(echoed.slice(-2)).toEqual(['', '']);
      expect(warnings.filter((w) => w.includes('1023 bytes'))).toHaveLength(2);
      warnings.length = 0;

      // Trailing CR/LF are removed by Asterisk; leading ones stay.
      await bobTexts(ECHO_NUMBER, '\nkept\r\n\r\n');
      expect((await bob.nextText()).body).toBe('\nkept');
      await bobTexts(ECHO_NUMBER, 'bye');
      await quiet();
    }, 30_000);

    it('opens a conversation with Communicator.makeText and gets the reply', async () => {
      await quiet();
      const c = await Communicator.create({ logger });
      try {
        const ui = await c.makeText('bob', { from: TEXT_BOT_NUMBER });
        const answer = ui.prompt('Rate us from 1 to 5 ⭐');
        const asked = await bob.nextText();
        expectFromUs(asked, TEXT_BOT_NUMBER);
        expect(asked.body).toBe('Rate us from 1 to 5 ⭐');
        // A phone replies to the From of what it got.
        await bobTexts(TEXT_BOT_NUMBER, '5');
        expect(await within(answer, 10_000, 'the reply')).toBe('5');
        await ui.say('Thanks!\nSee you.');
        expect((await bob.nextText()).body).toBe('Thanks!\nSee you.');
        await ui.hangup();
      } finally {
        await c.close();
      }
    }, 30_000);

    it('texts a number behind a trunk with the number in the Request-URI and To', async () => {
      // 1001 stands in for the PSTN trunk: its contact is 127.0.0.1:5063.
      const trunk = await SipPhone.open({ user: '1001', port: 5063 });
      const c = await Communicator.create({ logger, pstnEndpoint: '1001' });
      try {
        const ui = await c.makeText('+15550100200', { from: TEXT_BOT_NUMBER });
        await ui.say('Your parcel is on its way.');
        const got = await trunk.nextText();
        expect(got.requestUri).toBe('sip:+15550100200@127.0.0.1:5063');
        expect(got.to).toBe('<sip:+15550100200@127.0.0.1>');
        expect(got.from).toMatch(new RegExp(`^<sip:${TEXT_BOT_NUMBER}@${host}>;tag=`));
        expect(got.body).toBe('Your parcel is on its way.');
        await ui.hangup();
      } finally {
        await c.close();
        await trunk.close();
      }
    }, 30_000);

    it('rejects a text Asterisk cannot send with MessageSendError', async () => {
      const c = await Communicator.create({ logger, pstnEndpoint: 'no-such-trunk' });
      try {
        // Not an endpoint, so it goes through the (missing) trunk.
        const ui = await c.makeText('+15550100299', { from: TEXT_BOT_NUMBER });
        const error = await ui.say('hello?').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MessageSendError);
        expect((error as MessageSendError).message).toContain('+15550100299');
        await ui.hangup();
      } finally {
        await c.close();
      }
    }, 30_000);
  },
);
