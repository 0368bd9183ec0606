import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AriClient } from '../../src/asterisk/ari-client.js';
import { HangupError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import { OfflineTtsEngine } from '../../src/tts/offline-tts-engine.js';
import { FLOW_NUMBER, flowHandler } from '../support/random-hangups.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { nextServerEvent } from '../support/voice-harness.js';
import { ariPass, ariPort, ariUser, host, realConnectionOptions, sipProxy } from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * Callers who hang up at random moments, on a real Asterisk 22: sipp places 60 calls as alice to
 * the random-hang-up flow (test/support/random-hangups.ts: answer, media set-up, say over RTP,
 * gather, play), each hanging up 0–4 s after the answer (random-hangup-caller.xml). Afterwards
 * nothing of ours may be left on the PBX (channels, bridges, the dialplan step stays until close)
 * or in the process (calls, UDP sockets). The simulator runs the same with every verb and 600
 * calls (test/random-hangup.test.ts), and 10,000 in bench/random-hangup.ts.
 */
const haveSipp = sippAvailable();
realAsteriskAvailable('random-hangup.real.test.ts', {
  ok: haveSipp,
  needs: 'sipp on the PATH (Debian: apt-get install sip-tester)',
});

const CALLS = 60;

function udpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

describe.skipIf(!host || !haveSipp)(
  'random hang-ups against a real Asterisk 22, called by sipp (requires ASTERISK_HOST, ASTERISK_ARI/AMI_USER/PASS, and sipp on the PATH)',
  () => {
    const appName = `asteramisk-hangup-real-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    let server: Server;
    let spy: AriClient;

    beforeAll(async () => {
      spy = new AriClient({
        url: `http://${host}:${ariPort}`,
        username: ariUser,
        password: ariPass,
        app: `${appName}-spy`,
      });
      await spy.connect();
      const rtpPortMin = 44000 + (process.pid % 20) * 100;
      server = await Server.create({
        ...realConnectionOptions(),
        appName,
        tts: new OfflineTtsEngine({ msPerChar: 60 }),
        stt: false,
        rtpPortMin,
        rtpPortMax: rtpPortMin + 99,
        logger: silentLogger,
      });
      await server.registerExtension(FLOW_NUMBER, { voice: flowHandler });
    }, 30_000);

    afterAll(async () => {
      await server?.close();
      await spy?.close();
    });

    it(`${CALLS} callers hanging up at random moments leave nothing behind`, async () => {
      const udpBefore = udpSockets();
      const outcomes: string[] = [];
      let started = 0;
      server.on('callStarted', () => {
        started++;
      });
      server.on('callEnded', (_ui, outcome) => {
        const error = outcome.error;
        outcomes.push(!error ? 'returned' : error instanceof HangupError ? 'hangup' : String(error));
      });
      const phone = await SippPhone.call({
        to: FLOW_NUMBER,
        proxy: sipProxy,
        localAddress: '127.0.0.1',
        scenario: 'random-hangup-caller.xml',
        calls: { total: CALLS, rate: 10, limit: 20 },
        timeoutSeconds: 90,
      });
      try {
        const sipp = await phone.finished(100_000);
        while (server.activeCalls > 0) await nextServerEvent(server, 'callEnded');
        // Every call that reached the handler ended as a hang-up or a normal return, nothing else.
        expect(started, sipp.screen).toBeGreaterThanOrEqual(CALLS * 0.9);
        expect(outcomes.filter((o) => o !== 'hangup' && o !== 'returned')).toEqual([]);
        expect(outcomes.filter((o) => o === 'hangup').length).toBeGreaterThan(CALLS / 2);
        // Nothing of ours left on the PBX: no bridge we named, no externalMedia channel.
        const bridges = await spy.bridges.list();
        expect(bridges.filter((b) => b.name?.startsWith('asteramisk-'))).toEqual([]);
        const channels = await spy.channels.list();
        expect(channels.filter((c) => c.name.startsWith('UnicastRTP/'))).toEqual([]);
        expect(
          channels.filter((c) => c.caller.number === 'alice' || c.name.startsWith('PJSIP/alice')),
        ).toEqual([]);
        expect(udpSockets()).toBe(udpBefore);
      } finally {
        await phone.dispose();
      }
    }, 150_000);
  },
);
