import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import { silentLogger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import { detectPocketsphinx } from '../../src/stt/pocketsphinx-stt-engine.js';
import { detectEspeak, EspeakTtsEngine } from '../../src/tts/espeak-tts-engine.js';
import { OfflineTtsEngine } from '../../src/tts/offline-tts-engine.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { deferred, nextServerEvent } from '../support/voice-harness.js';
import { within } from '../support/within.js';
import { amiPass, amiPort, amiUser, host, realConnectionOptions, sipProxy } from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * Local speech recognition through a real Asterisk 22: sipp calls, espeak-ng's "yes" or "no" goes
 * from the phone over RTP through the PBX to the app's externalMedia leg, pocketsphinx recognises
 * it, and askYesNo({ speech: true }) answers. Runs with ASTERISK_HOST, sipp, espeak-ng and
 * pocketsphinx (Debian: sip-tester espeak-ng pocketsphinx pocketsphinx-en-us).
 */
const tools = Boolean((await detectEspeak()) && (await detectPocketsphinx()) && sippAvailable());
const run = realAsteriskAvailable('speech.real.test.ts', {
  ok: tools,
  needs: 'sipp, espeak-ng and pocketsphinx on the PATH',
});

const NUMBER = '2150';

describe.runIf(run)('askYesNo by voice through a real Asterisk, with local speech', () => {
  let server: Server;
  let ami: AmiClient;
  let phone: SippPhone | undefined;
  const answers: ReturnType<typeof deferred<boolean>>[] = [];

  beforeAll(async () => {
    ami = new AmiClient({ host: host!, port: amiPort, username: amiUser, password: amiPass });
    await ami.connect();
    const rtpPortMin = 30000 + (process.pid % 40) * 100;
    server = await Server.create({
      ...realConnectionOptions(),
      appName: `asteramisk-speech-real-${process.pid}`,
      // A short beep stands in for the question: what matters here is the answer's way back.
      tts: new OfflineTtsEngine({ msPerChar: 10 }),
      stt: 'pocketsphinx',
      ttsCacheDirectory: false,
      rtpPortMin,
      rtpPortMax: rtpPortMin + 99,
      logger: silentLogger,
    });
    await server.registerExtension(NUMBER, {
      voice: async (ui) => {
        const answer = answers.shift();
        answer?.resolve(await ui.askYesNo('Do you want to continue?', { speech: true, timeout: 15 }));
      },
    });
  }, 30_000);

  afterEach(async () => {
    await phone?.dispose();
    phone = undefined;
  });

  afterAll(async () => {
    await server?.close();
    await ami?.close();
  });

  for (const [word, expected] of [
    ['yes', true],
    ['no', false],
  ] as const) {
    it(`the caller says "${word}" (espeak-ng, from sipp) → askYesNo returns ${expected}`, async () => {
      const spoken = await new EspeakTtsEngine().synthesize(word);
      const pcm = new Int16Array(spoken.length + 8000); // then a second of silence
      pcm.set(spoken);
      const answer = deferred<boolean>();
      answers.push(answer);
      const started = nextServerEvent(server, 'callStarted');
      phone = await SippPhone.call({ to: NUMBER, proxy: sipProxy, tone: { pcm } });
      const [ui] = await within(started, 10_000, 'the call to reach the handler');
      phone.channelName = ui.channelName;
      // Speak once the question is being asked (the handler answered and opened its media leg).
      const asked = new Promise<void>((resolve) => {
        const off = ui.on('activity', (a) => {
          if (a.type === 'said') {
            off();
            resolve();
          }
        });
      });
      await within(asked, 10_000, 'the question');
      await phone.command(ami, 'tone');
      expect(await within(answer.promise, 20_000, 'the answer')).toBe(expected);
    }, 60_000);
  }
});
