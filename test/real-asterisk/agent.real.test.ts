import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_NUMBER, voiceAgent } from '../../examples/openai-agent.js';
import type { AgentResult } from '../../src/agent/agent-options.js';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import { AriClient } from '../../src/asterisk/ari-client.js';
import { silentLogger } from '../../src/logger.js';
import { decodeMulaw } from '../../src/media/g711.js';
import { Server } from '../../src/server.js';
import { toneUlaw } from '../support/agent-harness.js';
import { FAKE_REALTIME_API_KEY, type FakeRealtime, startFakeRealtime } from '../support/fake-realtime.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { toneShare } from '../support/tone-analysis.js';
import { nextServerEvent } from '../support/voice-harness.js';
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
 * examples/openai-agent.ts against a real Asterisk 22 with a real SIP caller (sipp as alice,
 * test/real-asterisk/sipp/ivr-caller.xml) and the project's fake OpenAI Realtime model over TLS:
 * the caller's tone reaches the model through the PBX and our RTP leg, the model's audio reaches
 * the caller (sipp echoes it back, so the model hears its own tone), and the end_call tool hangs
 * the SIP call up. Runs only when ASTERISK_HOST is set (plus ASTERISK_ARI/AMI_USER/PASS), with
 * sipp on the PATH (root), and a PJSIP endpoint `alice` whose calls reach `asteramisk-call`.
 */
const haveSipp = sippAvailable();
realAsteriskAvailable('agent.real.test.ts', {
  ok: haveSipp,
  needs: 'sipp on the PATH (Debian: apt-get install sip-tester)',
});

/** Whether some 500 ms window of the µ-law audio from `fromByte` on is mostly a tone of `hz`. */
function holdsTone(ulaw: Buffer, hz: number, fromByte = 0): boolean {
  const pcm = decodeMulaw(ulaw.subarray(fromByte));
  for (let start = 0; start + 4000 <= pcm.length; start += 400) {
    if (toneShare(pcm.subarray(start, start + 4000), hz) > 0.8) return true;
  }
  return false;
}

describe.skipIf(!host || !haveSipp)(
  'examples/openai-agent.ts against a real Asterisk 22, called by sipp, with the fake model (requires ASTERISK_HOST, ASTERISK_ARI/AMI_USER/PASS, and sipp on the PATH)',
  () => {
    const appName = `asteramisk-agent-real-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    let server: Server;
    let ami: AmiClient;
    let fake: FakeRealtime;
    const results: AgentResult[] = [];

    beforeAll(async () => {
      fake = await startFakeRealtime();
      ami = new AmiClient({ host: host!, port: amiPort, username: amiUser, password: amiPass });
      await ami.connect();
      const rtpPortMin = 42000 + (process.pid % 40) * 100;
      server = await Server.create({
        ...realConnectionOptions(),
        appName,
        tts: false,
        stt: false,
        rtpPortMin,
        rtpPortMax: rtpPortMin + 99,
        logger: silentLogger,
      });
      const connection = {
        client: new OpenAI({ apiKey: FAKE_REALTIME_API_KEY, baseURL: fake.baseURL }),
        websocket: fake.wsOptions,
      };
      await server.registerExtension(AGENT_NUMBER, {
        voice: async (ui) => {
          ui.on('agent', (event) => {
            if (event.type === 'ended') results.push({ reason: event.reason } as AgentResult);
          });
          await voiceAgent(ui, { connection, minBargeInMs: 5000 });
        },
      });
    }, 30_000);

    afterAll(async () => {
      await server?.close();
      await ami?.close();
      await fake?.close();
    });

    it('caller audio reaches the model, the model’s audio reaches the caller, end_call hangs up', async () => {
      const started = nextServerEvent(server, 'callStarted');
      const phone = await SippPhone.call({
        to: AGENT_NUMBER,
        proxy: sipProxy,
        localAddress: '127.0.0.1',
        tone: { ms: 2000, hz: 440 },
      });
      try {
        const [ui] = await within(started, 10_000, 'the call to reach the handler');
        phone.channelName = ui.channelName;
        const conn = await fake.nextConnection({ timeoutMs: 10_000 });
        const session = (await conn.waitFor('session.update')).session as {
          audio: { input: { format: { type: string } }; output: { format: { type: string } } };
        };
        expect(session.audio.input.format.type).toBe('audio/pcmu');

        // The greeting: 1 s of 1000 Hz from the model.
        const greeting = conn.startResponse({
          request: await conn.waitFor('response.create', undefined, { timeoutMs: 10_000 }),
        });
        await greeting.audio(toneUlaw(1000, 1000));
        greeting.done();

        // The caller talks: sipp plays 2 s of 440 Hz; it must reach the model through the PBX.
        const before = conn.audio.length;
        await phone.command(ami, 'tone');
        await within(
          (async () => {
            while (!holdsTone(conn.audio, 440, before)) await conn.waitForAudio(conn.audio.length + 800);
          })(),
          15_000,
          "the caller's 440 Hz at the model",
        );

        // sipp echoes what it receives: the model hears its own 1000 Hz back, so it reached the caller.
        await phone.command(ami, 'echo on');
        const echoFrom = conn.audio.length;
        const answer = conn.startResponse();
        await answer.audio(toneUlaw(1500, 1000));
        answer.done();
        await within(
          (async () => {
            while (!holdsTone(conn.audio, 1000, echoFrom)) await conn.waitForAudio(conn.audio.length + 800);
          })(),
          15_000,
          "the model's 1000 Hz echoed back by the caller",
        );
        await phone.command(ami, 'echo off');

        // The model ends the call: goodbye, then Asterisk sends BYE to the caller.
        const ended = nextServerEvent(server, 'callEnded');
        const last = conn.startResponse();
        last.functionCall('end_call', {}, 'call_end');
        last.done();
        const goodbye = conn.startResponse({
          request: await conn.waitFor('response.create', (e) => JSON.stringify(e).includes('Goodbye')),
        });
        await goodbye.audio(toneUlaw(500, 700));
        goodbye.done();
        await within(ended, 15_000, 'callEnded');
        const sipp = await phone.finished(15_000);
        expect(sipp.code, sipp.stderr).toBe(0);
        expect(sipp.messages).toMatch(/^BYE sip:alice@/m);
        expect(results.map((r) => r.reason)).toEqual(['end-call']);
        await within(conn.closed, 5000, 'the model connection to close');
      } finally {
        await phone.dispose();
      }
    }, 90_000);

    it('30 agent calls from sipp at 10/s, hung up at random moments: every session ends cleanly', async () => {
      const LOAD_NUMBER = '3100';
      const outcomes: string[] = [];
      const connection = {
        client: new OpenAI({ apiKey: FAKE_REALTIME_API_KEY, baseURL: fake.baseURL }),
        websocket: fake.wsOptions,
      };
      await server.registerExtension(LOAD_NUMBER, {
        voice: async (ui) => {
          const result = await ui.connectOpenAIAgent({ instructions: 'load', greeting: true, connection });
          outcomes.push(result.reason);
        },
      });
      // Every greeting is answered with 3 s of speech, faster than real time as the model sends it.
      fake.onResponse = async (_conn, response) => {
        await response.audio(toneUlaw(3000, 800), { chunkBytes: 1600 });
      };
      const spy = new AriClient({
        url: `http://${host}:${ariPort}`,
        username: ariUser,
        password: ariPass,
        app: `${appName}-spy`,
      });
      await spy.connect();
      const before = await spyCounts();
      const connectionsBefore = fake.connections.length;
      const phone = await SippPhone.call({
        to: LOAD_NUMBER,
        proxy: sipProxy,
        localAddress: '127.0.0.1',
        scenario: 'random-hangup-caller.xml',
        calls: { total: 30, rate: 10, limit: 30 },
        timeoutSeconds: 60,
      });
      try {
        await phone.finished(70_000);
        while (server.activeCalls > 0) await nextServerEvent(server, 'callEnded');
        await fake.idle({ timeoutMs: 10_000 });
        expect(outcomes.length).toBeGreaterThanOrEqual(27);
        expect(outcomes.filter((r) => r !== 'caller-hangup')).toEqual([]);
        // Each call had its own model session, and every one of them is closed.
        expect(fake.connections.length - connectionsBefore).toBeGreaterThanOrEqual(27);
        expect(fake.openSockets).toBe(0);
        expect(await spyCounts()).toEqual(before);
      } finally {
        fake.onResponse = undefined;
        await server.unregisterExtension(LOAD_NUMBER);
        await phone.dispose();
        await spy.close();
      }

      /** Our bridges and externalMedia channels on the PBX. */
      async function spyCounts(): Promise<{ bridges: number; rtpLegs: number }> {
        const bridges = (await spy.bridges.list()).filter((b) => b.name?.startsWith('asteramisk-'));
        const channels = (await spy.channels.list()).filter((c) => c.name.startsWith('UnicastRTP/'));
        return { bridges: bridges.length, rtpLegs: channels.length };
      }
    }, 120_000);
  },
);
