import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remind } from '../../examples/outbound-call.js';
import { Communicator } from '../../src/communicator.js';
import { CallFailedError, HangupError, InvalidInputError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { type RawAri, type RawEvent, rawAri } from '../support/raw-ari.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { RecordingTts } from '../support/voice-harness.js';
import { within } from '../support/within.js';
import { displayNameOf, holdPhones, SipPhone, uriOf, userOf } from './sip-phone.js';

/**
 * Outbound calls (Communicator.makeCall, examples/outbound-call.ts) through a real Asterisk 22, with
 * a SIP phone of our own as `bob` on 127.0.0.1:5062 that answers, is busy or keeps ringing, and
 * presses keys as RFC 4733 telephone-events. Two cases run again with sipp as the phone
 * (sipp/uas-answer.xml, sipp/uas-busy.xml) when sipp is installed. They run only when
 * ASTERISK_HOST is set, with ASTERISK_ARI_USER/PASS and ASTERISK_AMI_USER/PASS, against a PBX
 * configured like /opt/ast22: endpoint `bob` with its static contact on that port, no `pstn`
 * endpoint. Nothing is added to the dialplan.
 */
const host = process.env.ASTERISK_HOST;
realAsteriskAvailable('outbound.real.test.ts');
const HERE = dirname(fileURLToPath(import.meta.url));
const hasSipp = spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error === undefined;

const OUR_NUMBER = '5550100';
const OUR_NAME = 'Shop';
const MESSAGE = 'Your appointment is tomorrow at 10.';

/**
 * Runs sipp as bob with one of our scenarios (`-m 1`: one call, then it exits 0 if the call went as
 * scripted). Resolves once sipp holds bob's port.
 */
async function sippAsBob(
  scenario: string,
): Promise<{ done: Promise<{ code: number | null; output: string }> }> {
  const dir = mkdtempSync(join(tmpdir(), 'asteramisk-sipp-uas-'));
  const args = ['-sf', join(HERE, 'sipp', scenario), '-i', '127.0.0.1', '-p', '5062', '-mi', '127.0.0.1'];
  args.push('-mp', '39390', '-m', '1', '-nostdin', '-timeout', '30', '-trace_err', '127.0.0.1:5060');
  const child = spawn('sipp', args, { cwd: dir });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const done = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.once('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, output });
    }),
  );
  // Bound once our own bind of the port fails.
  for (let i = 0; i < 100 && !(await portTaken(5062)); i++) await new Promise((r) => setTimeout(r, 50));
  return { done };
}

function portTaken(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(true);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(false)));
  });
}

describe.skipIf(!host)(
  'outbound calls against a real Asterisk 22 (requires ASTERISK_HOST, ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS)',
  () => {
    let release: () => void = () => {};
    let bob: SipPhone | undefined;
    let c: Communicator;
    let tts: RecordingTts;
    /** A second app that sees bob's channels (endpoint subscription): their hangup causes. */
    let observer: RawAri;

    beforeAll(async () => {
      release = await holdPhones(['bob']);
      bob = await SipPhone.open({ user: 'bob', port: 5062, displayName: 'Bob' });
      tts = new RecordingTts(20);
      c = await Communicator.create({
        appName: `asteramisk-realout-${process.pid}`,
        logger: silentLogger,
        tts,
        stt: false,
        ttsCacheDirectory: false,
        systemPhoneNumber: OUR_NUMBER,
        systemName: OUR_NAME,
        rtpPortMin: 39100,
        rtpPortMax: 39199,
        textRateLimit: { messages: 100, perMs: 1000 },
      });
      const url = `http://${host}:${process.env.ASTERISK_ARI_PORT ?? '8088'}`;
      const app = `asteramisk-realout-observer-${process.pid}`;
      observer = await rawAri(
        url,
        process.env.ASTERISK_ARI_USER ?? '',
        process.env.ASTERISK_ARI_PASS ?? '',
        app,
      );
      const sub = await observer.rest('POST', `/applications/${app}/subscription`, {
        eventSource: 'endpoint:PJSIP/bob',
      });
      expect(sub.status).toBe(200);
    }, 240_000);

    afterAll(async () => {
      await c?.close();
      await bob?.close();
      observer?.close();
      release();
    });

    function phone(): SipPhone {
      if (!bob) throw new Error('bob is not open');
      return bob;
    }

    /** The ChannelDestroyed of the first of bob's channels to end from now on. */
    function nextDestroyed(): Promise<RawEvent> {
      const from = observer.events.length;
      const destroyed = observer.waitFor(
        (e) => e.type === 'ChannelDestroyed' && observer.events.indexOf(e) >= from,
      );
      return within(destroyed, 10_000, "ChannelDestroyed of bob's channel");
    }

    it('calls bob: rings with our caller ID, plays a sound and speech, texts into the call, hangs up', async () => {
      phone().onInvite = 'answer';
      const calling = c.makeCall('bob');
      const call = await phone().nextCall();
      // What bob's phone shows: the caller ID name and number in From.
      expect(call.invite.uri).toBe('sip:bob@127.0.0.1:5062');
      expect(displayNameOf(call.from)).toBe(OUR_NAME);
      expect(uriOf(call.from)).toBe(`sip:${OUR_NUMBER}@127.0.0.1`);
      expect(call.invite.body.toString()).toMatch(/^a=rtpmap:0 PCMU\/8000$/m);
      const ui = await within(calling, 10_000, 'the answered call');
      expect([ui.answered, ui.remoteNumber, ui.localNumber]).toEqual([true, 'bob', OUR_NUMBER]);

      await ui.play('sound:beep'); // 0.4 s of 1 kHz on this PBX: 20 packets
      expect(call.audiblePackets).toBeGreaterThanOrEqual(15);
      const afterBeep = call.audiblePackets;
      await ui.say('Your order has shipped.');
      expect(tts.said.at(-1)).toBe('Your order has shipped.');
      expect(call.audiblePackets - afterBeep).toBeGreaterThanOrEqual(10);

      await ui.sendText('Order 4711 🍕 shipped');
      const text = await phone().nextText();
      expect([text.inDialog, text.body, text.contentType]).toEqual([
        true,
        'Order 4711 🍕 shipped',
        'text/plain;charset=UTF-8',
      ]);
      expect(uriOf(text.from)).toBe(`sip:${OUR_NUMBER}@127.0.0.1`);
      // The longest in-call text: AMI SendText carries it on one line of at most 1024 bytes.
      const longest = `${'é'.repeat(506)}!`;
      await ui.sendText(longest);
      expect((await phone().nextText()).bytes.equals(Buffer.from(longest))).toBe(true);
      await expect(ui.sendText(`${longest}!`)).rejects.toBeInstanceOf(InvalidInputError);

      const keys: string[] = [];
      ui.on('dtmf', (digit) => keys.push(digit));
      await call.press('42');
      await within(
        (async () => {
          while (keys.length < 2) await new Promise((r) => setTimeout(r, 20));
        })(),
        3000,
        'two key presses',
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(keys.join('')).toBe('42');

      const destroyed = nextDestroyed();
      await ui.hangup();
      expect(await within(call.ended, 5000, "bob's call to end")).toBe('remote-bye');
      expect((await destroyed).cause).toBe(16);
    }, 30_000);

    it('ends the VoiceUI when bob hangs up: a say in progress rejects with HangupError', async () => {
      phone().onInvite = 'answer';
      const calling = c.makeCall('bob');
      const call = await phone().nextCall();
      const ui = await within(calling, 10_000, 'the answered call');
      const saying = ui.say('This is a long message that bob will not wait for, because he hangs up now.');
      await new Promise((r) => setTimeout(r, 300));
      const destroyed = nextDestroyed();
      await call.hangup();
      expect(await saying.catch((e: unknown) => e)).toBeInstanceOf(HangupError);
      expect(ui.active).toBe(false);
      const event = await destroyed;
      // A BYE (no Reason header) once the call's media bridge exists: 16, Normal Clearing. (Before
      // any say, with the channel in no bridge, Asterisk 22 reports cause 0, Unknown.)
      expect([event.cause, event.cause_txt]).toEqual([16, 'Normal Clearing']);
    }, 30_000);

    it('rejects a busy callee with CallFailedError busy, cause 17', async () => {
      phone().onInvite = 'busy';
      const destroyed = nextDestroyed();
      const error = await c.makeCall('bob').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CallFailedError);
      expect([(error as CallFailedError).reason, (error as CallFailedError).hangupCause]).toEqual([
        'busy',
        17,
      ]);
      expect((await phone().nextCall()).outcome).toBe('busy');
      const event = await destroyed;
      expect([event.cause, event.cause_txt, event.tech_cause]).toEqual([17, 'User busy', 486]);
    }, 30_000);

    it('rejects an unanswered call after its timeout with CallFailedError no-answer, cause 19', async () => {
      phone().onInvite = 'ring';
      const destroyed = nextDestroyed();
      const started = Date.now();
      const error = await c.makeCall('bob', { timeout: 2 }).catch((e: unknown) => e);
      const took = Date.now() - started;
      expect(error).toBeInstanceOf(CallFailedError);
      expect([(error as CallFailedError).reason, (error as CallFailedError).hangupCause]).toEqual([
        'no-answer',
        19,
      ]);
      expect(took).toBeGreaterThanOrEqual(1900);
      expect(took).toBeLessThan(5000);
      // Asterisk gave up with CANCEL.
      const call = await phone().nextCall();
      expect(await within(call.ended, 5000, 'the CANCEL')).toBe('cancelled');
      const event = await destroyed;
      expect([event.cause, event.cause_txt, event.tech_cause]).toEqual([19, 'User alerting, no answer', 480]);
    }, 30_000);

    it('reports a number behind a missing trunk as unreachable', async () => {
      const error = await c.makeCall('+15550100299').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CallFailedError);
      expect((error as CallFailedError).reason).toBe('unreachable');
      expect((error as CallFailedError).message).toContain('Allocation failed');
    }, 30_000);

    it('examples/outbound-call.ts: bob confirms with 1 (RFC 4733)', async () => {
      phone().onInvite = 'answer';
      const question = 'Will you be there? Press 1 for yes or 2 for no.';
      const said = tts.said.length;
      const outcome = remind(c, { to: 'bob', message: MESSAGE });
      const call = await phone().nextCall();
      await within(
        (async () => {
          while (!tts.said.slice(said).includes(question)) await new Promise((r) => setTimeout(r, 20));
        })(),
        10_000,
        'the question',
      );
      await new Promise((r) => setTimeout(r, 300));
      await call.press('1');
      expect(await within(outcome, 15_000, 'the reminder')).toBe('confirmed');
      expect(tts.said.slice(said)).toEqual([MESSAGE, question, 'Great, see you then.']);
      expect(await within(call.ended, 5000, "bob's call to end")).toBe('remote-bye');
    }, 30_000);

    it('examples/outbound-call.ts: texts bob when he is busy', async () => {
      phone().onInvite = 'busy';
      expect(await within(remind(c, { to: 'bob', message: MESSAGE }), 15_000, 'the reminder')).toBe('texted');
      const text = await phone().nextText();
      expect(text.inDialog).toBe(false);
      expect(text.body).toBe(`${MESSAGE} (We tried to call: busy.)`);
      expect(uriOf(text.from)).toBe(`sip:${OUR_NUMBER}@${host}`);
      expect(userOf(text.to)).toBe('bob');
    }, 30_000);

    describe.skipIf(!hasSipp)('with sipp as bob', () => {
      beforeAll(async () => {
        // sipp needs bob's port; holdPhones keeps other test files off it meanwhile.
        await bob?.close();
        bob = undefined;
      });

      afterAll(async () => {
        bob = await SipPhone.open({ user: 'bob', port: 5062, displayName: 'Bob' });
      });

      it('is answered by sipp/uas-answer.xml, plays a sound, hangs up', async () => {
        const sipp = await sippAsBob('uas-answer.xml');
        const ui = await within(c.makeCall('bob'), 10_000, 'sipp to answer');
        await ui.play('sound:beep');
        await ui.hangup();
        const result = await within(sipp.done, 10_000, 'sipp to exit');
        expect(result.code, result.output).toBe(0);
      }, 30_000);

      it('is busy with sipp/uas-busy.xml: CallFailedError busy, cause 17', async () => {
        const sipp = await sippAsBob('uas-busy.xml');
        const error = await c.makeCall('bob').catch((e: unknown) => e);
        expect([(error as CallFailedError).reason, (error as CallFailedError).hangupCause]).toEqual([
          'busy',
          17,
        ]);
        const result = await within(sipp.done, 10_000, 'sipp to exit');
        expect(result.code, result.output).toBe(0);
      }, 30_000);
    });
  },
);
