import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IVR_NUMBER, ivr, OPERATOR } from '../../examples/ivr.js';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import type { AmiEvent } from '../../src/asterisk/ami-types.js';
import { AriClient, type AriClientEvents } from '../../src/asterisk/ari-client.js';
import { AmiActionError } from '../../src/errors.js';
import type { LogFields } from '../../src/logger.js';
import { decodeWav } from '../../src/media/wav.js';
import { Server } from '../../src/server.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { loudest, toneShare } from '../support/tone-analysis.js';
import { nextServerEvent, RecordingTts } from '../support/voice-harness.js';
import { within } from '../support/within.js';
import {
  amiPass,
  amiPort,
  amiUser,
  ariPass,
  ariPort,
  ariUser,
  host,
  realConnectionOptions,
  sipProxy,
} from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * examples/ivr.ts, unchanged, against a real Asterisk 22 with a real SIP caller: sipp plays alice
 * (test/real-asterisk/sipp/ivr-caller.xml) and presses keys as RFC 4733 events when the test tells
 * it to. Runs only when ASTERISK_HOST is set (plus ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS;
 * ASTERISK_SIP is Asterisk's SIP address, default <ASTERISK_HOST>:5060). Needs `sipp` on the PATH,
 * run as root (sipp sends DTMF and audio through a raw socket), a PJSIP endpoint `alice` matched by
 * From user without authentication whose calls reach `asteramisk-call` (as in example-configs),
 * and the sound `hello-world`.
 *
 * The test adds steps only for IVR_NUMBER in the call context (through the Server) and for the
 * operator extension, and removes both.
 */
const haveSipp = sippAvailable();
realAsteriskAvailable('voice.real.test.ts', {
  ok: haveSipp,
  needs: 'sipp on the PATH (Debian: apt-get install sip-tester)',
});

/** Milliseconds of offline speech per character: prompts of a few seconds, as a caller hears them. */
const MS_PER_CHAR = 40;
const MAIN_MENU = /^For account balance, press 1\./;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function nextAri<K extends keyof AriClientEvents>(
  client: AriClient,
  name: K,
  match: (...args: AriClientEvents[K]) => boolean,
  ms: number,
): Promise<AriClientEvents[K]> {
  return within(
    new Promise((resolve) => {
      const listener = (...args: AriClientEvents[K]): void => {
        if (!match(...args)) return;
        client.off(name, listener);
        resolve(args);
      };
      client.on(name, listener);
    }),
    ms,
    `ARI '${name}'`,
  );
}

describe.skipIf(!host || !haveSipp)(
  'examples/ivr.ts against a real Asterisk 22, called by sipp (requires ASTERISK_HOST, ASTERISK_ARI/AMI_USER/PASS, and sipp on the PATH)',
  () => {
    const appName = `asteramisk-ivr-real-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const spyApp = `${appName}-spy`;
    const tts = new RecordingTts(MS_PER_CHAR);
    const logLines: { level: string; msg: string; fields: LogFields }[] = [];
    let server: Server;
    let ami: AmiClient;
    let spy: AriClient;
    let phone: SippPhone | undefined;

    /** Resolves once the IVR has said something matching `re` `times` times. */
    async function said(re: RegExp, times = 1, ms = 30_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (tts.said.filter((t) => re.test(t)).length < times) {
        if (Date.now() > deadline) {
          throw new Error(
            `the IVR did not say ${re} ${times}× within ${ms} ms; it said ${JSON.stringify(tts.said)}`,
          );
        }
        await sleep(50);
      }
    }

    /** Starts a call from sipp and waits for the handler to get it; the spy app follows the channel. */
    async function call(): Promise<{ phone: SippPhone; channelId: string; channelName: string }> {
      const started = nextServerEvent(server, 'callStarted');
      phone = await SippPhone.call({ to: IVR_NUMBER, proxy: sipProxy, localAddress: '127.0.0.1' });
      const [ui] = await within(started, 10_000, 'the call to reach the handler');
      phone.channelName = ui.channelName;
      await spy.applications.subscribe(spyApp, `channel:${ui.channelId}`);
      return { phone, channelId: ui.channelId, channelName: ui.channelName };
    }

    beforeAll(async () => {
      ami = new AmiClient({ host: host!, port: amiPort, username: amiUser, password: amiPass });
      await ami.connect();
      spy = new AriClient({
        url: `http://${host}:${ariPort}`,
        username: ariUser,
        password: ariPass,
        app: spyApp,
      });
      await spy.connect();
      const rtpPortMin = 40000 + (process.pid % 40) * 100;
      server = await Server.create({
        ...realConnectionOptions(),
        appName,
        tts,
        stt: false,
        // Every prompt is synthesized again, so `tts.said` counts each time it is spoken.
        ttsCacheDirectory: false,
        ttsCacheBytes: 0,
        rtpPortMin,
        rtpPortMax: rtpPortMin + 99,
        logger: capturingLogger(
          logLines,
          (l) => l.level === 'warn' || l.level === 'error' || l.msg === 'Call media closing',
        ),
      });
      await server.registerExtension(IVR_NUMBER, { voice: ivr });
    }, 30_000);

    afterEach(async () => {
      await phone?.dispose();
      phone = undefined;
    });

    afterAll(async () => {
      await server?.close();
      await spy?.close();
      await ami?.close();
    });

    it('balance of 4711, opening hours and * back, then a voicemail with the caller’s tone', async () => {
      tts.said.length = 0;
      const ended = nextServerEvent(server, 'callEnded');
      const { phone, channelId } = await call();
      const recordingStarted = nextAri(
        spy,
        'RecordingStarted',
        (e) => e.recording.target_uri === `channel:${channelId}`,
        90_000,
      );

      // Each key is pressed while its prompt is playing (it interrupts the prompt, as callers do).
      await said(MAIN_MENU);
      await sleep(300);
      await phone.command(ami, 'dtmf 1');
      await said(/^Enter your account number/);
      await sleep(300);
      await phone.command(ami, 'dtmf 4711#');
      await said(MAIN_MENU, 2);
      await sleep(300);
      await phone.command(ami, 'dtmf 3');
      await said(/^For weekday hours/);
      await sleep(300);
      await phone.command(ami, 'dtmf *');
      await said(MAIN_MENU, 3);
      await sleep(300);
      await phone.command(ami, 'dtmf 2');

      const [started] = await recordingStarted;
      const name = started.recording.name;
      // What Asterisk sent the caller so far: every prompt, as RTP to sipp's media port.
      const sentToCaller = await spy.channels.rtpStatistics(channelId);
      await phone.command(ami, 'tone');
      await sleep(2300);
      await phone.command(ami, 'dtmf #');

      await said(/^Thank you\. Your message of \d+ seconds was saved\./);
      // sipp sends back what it receives: Asterisk then receives its own stream (its own SSRC) from
      // the caller, which proves the goodbye reached the phone.
      await phone.command(ami, 'echo on');
      await sleep(1000);
      const echoed = await spy.channels.rtpStatistics(channelId);

      const [, outcome] = await within(ended, 20_000, 'callEnded');
      const sipp = await phone.finished(15_000);
      try {
        expect(outcome.error).toBeUndefined();
        expect(tts.said).toEqual([
          'Thank you for calling Example Company.',
          expect.stringMatching(MAIN_MENU),
          'Enter your account number, then press pound. Press star to go back.',
          expect.stringMatching(/^The balance of account 4 7 1 1 is \d+ dollars and \d+ cents\.$/),
          expect.stringMatching(MAIN_MENU),
          'For weekday hours, press 1. For weekend hours, press 2. Press star to go back.',
          expect.stringMatching(MAIN_MENU),
          'Please leave your message after the beep. Press any key when you are done.',
          expect.stringMatching(/^Thank you\. Your message of [1-9]\d* seconds was saved\. Goodbye\.$/),
        ]);

        // The phone: the call succeeded, Asterisk hung up (BYE), every command was carried out.
        expect(sipp.code, sipp.stderr).toBe(0);
        expect(sipp.messages).toMatch(/^BYE sip:alice@/m);
        expect(sipp.log.match(/command: .*/g)).toEqual([
          'command: dtmf 1',
          'command: dtmf 4711#',
          'command: dtmf 3',
          'command: dtmf *',
          'command: dtmf 2',
          'command: tone',
          'command: dtmf #',
          'command: echo on',
        ]);

        // Audio both ways: Asterisk sent the prompts to the caller, the caller echoed the goodbye,
        // and our externalMedia socket got the echo from UNICASTRTP_LOCAL_ADDRESS:PORT only.
        expect(sentToCaller.txcount).toBeGreaterThan(300);
        expect(echoed.remote_ssrc).toBe(echoed.local_ssrc);
        expect(echoed.rxcount).toBeGreaterThan(20);
        const media = logLines.find((l) => l.msg === 'Call media closing' && l.fields.call === channelId);
        const rtp = media?.fields.rtp as
          | { sent: number; received: number; droppedForeign: number }
          | undefined;
        expect(rtp?.sent).toBeGreaterThan(300);
        expect(rtp?.received).toBeGreaterThan(20);
        expect(rtp?.droppedForeign).toBe(0);

        // The voicemail is stored, and holds the caller's 440 Hz tone.
        const stored = await spy.recordings.getStored(name);
        expect(stored.format).toBe('wav');
        const pcm = decodeWav(await spy.recordings.getStoredFile(name));
        // About 1.6 s: the 2 s tone starts a moment after the beep, and # cuts it short.
        expect(pcm.length).toBeGreaterThan(8000);
        expect(toneShare(loudest(pcm, 1000), 440)).toBeGreaterThan(0.8);
        expect(logLines.filter((l) => l.level === 'error')).toEqual([]);
      } catch (error) {
        console.error(`sipp stderr:\n${sipp.stderr}\nsipp messages (tail):\n${sipp.messages.slice(-4000)}`);
        throw error;
      } finally {
        await spy.recordings.deleteStored(name).catch(() => {});
      }
    }, 120_000);

    it('transfers to the operator on 0: the call continues in the dialplan, not in the handler', async () => {
      tts.said.length = 0;
      const steps: [string, string, string][] = [
        ['1', 'Answer', ''],
        ['2', 'Playback', 'hello-world'],
        ['3', 'Hangup', ''],
      ];
      for (const [priority, application, data] of steps) {
        await ami.action({
          Action: 'DialplanExtensionAdd',
          Context: OPERATOR.context,
          Extension: OPERATOR.extension,
          Priority: priority,
          Application: application,
          ApplicationData: data,
        });
      }
      const dialplan: string[] = [];
      const onAmi = (event: AmiEvent): void => {
        // Only the steps after the transfer: the call's own dialplan (from-sip, Stasis) came first.
        const ours = event.fields.Channel === phone?.channelName;
        if (event.name === 'Newexten' && ours && event.fields.Context === OPERATOR.context) {
          dialplan.push(`${event.fields.Context},${event.fields.Extension},${event.fields.Priority}`);
        }
      };
      ami.on('event', onAmi);
      try {
        const ended = nextServerEvent(server, 'callEnded');
        const { phone } = await call();
        await said(MAIN_MENU);
        await sleep(300);
        await phone.command(ami, 'dtmf 0');
        const [ui, outcome] = await within(ended, 20_000, 'callEnded');
        expect(outcome.error).toBeUndefined();
        expect(await ui.ended).toBe('transferred');
        expect(tts.said.at(-1)).toBe('Transferring you to an operator.');

        // The operator's dialplan answered, played hello-world (1.4 s) and hung up: sipp got the BYE.
        const sipp = await phone.finished(15_000);
        expect(sipp.code, sipp.stderr).toBe(0);
        expect(sipp.messages).toMatch(/^BYE sip:alice@/m);
        expect(dialplan).toEqual([
          `${OPERATOR.context},${OPERATOR.extension},1`,
          `${OPERATOR.context},${OPERATOR.extension},2`,
          `${OPERATOR.context},${OPERATOR.extension},3`,
        ]);
      } finally {
        ami.off('event', onAmi);
        for (const [priority] of steps) {
          await ami
            .action({
              Action: 'DialplanExtensionRemove',
              Context: OPERATOR.context,
              Extension: OPERATOR.extension,
              Priority: priority,
            })
            .catch(() => {});
        }
      }
    }, 60_000);

    it('removes its dialplan step when the server closes', async () => {
      const show = () =>
        ami
          .action({
            Action: 'ShowDialPlan',
            Context: server.config.incomingCallContext,
            Extension: IVR_NUMBER,
          })
          .then((r) => r.events.map((e) => String(e.fields.AppData)))
          .catch((error: unknown) => {
            if (error instanceof AmiActionError) return [];
            throw error;
          });
      expect(await show()).toContain(`${appName},call`);
      await server.close();
      expect(await show()).not.toContain(`${appName},call`);
    });
  },
);

describe.skipIf(!host || !haveSipp)(
  'the sipp phone of these tests, ivr-caller.xml (requires ASTERISK_HOST and sipp on the PATH)',
  () => {
    it('answers re-INVITEs (200 with SDP) and UPDATEs whenever they come, and keeps taking commands', async () => {
      // This Asterisk re-INVITEs on bridge join only for endpoints with send_pai or send_rpid, so
      // a sipp playing the PBX side checks that the phone would cope.
      const pbx = await SippPhone.serve('reinvite-pbx.xml', { timeoutSeconds: 30 });
      const phone = await SippPhone.call({
        to: IVR_NUMBER,
        proxy: `127.0.0.1:${pbx.sipPort}`,
        timeoutSeconds: 30,
      });
      try {
        const [caller, server] = await Promise.all([phone.finished(40_000), pbx.finished(40_000)]);
        expect(caller.code, caller.stderr).toBe(0);
        expect(server.code, server.stderr).toBe(0);
        expect(caller.log.match(/command: .*/g)).toEqual(['command: dtmf 1']);
        expect(server.log).toMatch(
          /answers to the re-INVITEs: m=audio \d+ RTP\/AVP 0 96 \/ m=audio \d+ RTP\/AVP 0 96/,
        );
        expect(caller.messages.match(/^(INVITE|UPDATE|MESSAGE|BYE) sip:alice@/gm)).toEqual([
          'INVITE sip:alice@',
          'UPDATE sip:alice@',
          'MESSAGE sip:alice@',
          'INVITE sip:alice@',
          'BYE sip:alice@',
        ]);
      } finally {
        await phone.dispose();
        await pbx.dispose();
      }
    }, 60_000);
  },
);
