/**
 * Secrets never leave the process: every log line (pino at `trace`, without any redaction of its
 * own) of a Server and Communicator session with a wrong ARI password, a wrong AMI secret, an
 * OpenAI TTS error that echoes the key, and normal calls; plus util.inspect (all depths, hidden
 * properties), JSON.stringify and String() of the config, the Server, the Communicator and every
 * error the session produced. Each secret is searched for in all of it.
 */

import { inspect } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AriClient } from '../src/asterisk/ari-client.js';
import { Communicator } from '../src/communicator.js';
import { resolveConfig } from '../src/config.js';
import { CallFailedError } from '../src/errors.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { startFakeOpenAi } from './support/fake-openai.js';
import { testPortRange } from './support/test-ports.js';
import { deferred } from './support/voice-harness.js';
import { within } from './support/within.js';

const ARI_PASS = 'ari-Secret-7f3a9c-pass';
const AMI_PASS = 'ami-Secret-51be20-pass';
const OPENAI_KEY = 'sk-test-Secret-c0ffee-4242424242';
const WRONG_ARI_PASS = 'wrong-ari-Secret-aa11bb';
const WRONG_AMI_PASS = 'wrong-ami-Secret-cc22dd';
const INJECTED_AMI_PASS = 'inj-Secret-ee33ff\r\nAction: Originate';
/** What must appear nowhere; also the distinctive middle of each, in case of partial echoes. */
const SECRETS = [
  ARI_PASS,
  AMI_PASS,
  OPENAI_KEY,
  WRONG_ARI_PASS,
  WRONG_AMI_PASS,
  'inj-Secret-ee33ff',
  '7f3a9c',
  '51be20',
  'c0ffee-4242',
  'aa11bb',
  'cc22dd',
  // Basic credentials as they go over the wire.
  Buffer.from(`asterisk:${ARI_PASS}`).toString('base64'),
  Buffer.from(`asterisk:${WRONG_ARI_PASS}`).toString('base64'),
];

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Every way a value is commonly turned into text. */
function renderings(value: unknown): string[] {
  const out = [
    inspect(value),
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true }),
    String(value),
    `${value as string}`,
  ];
  try {
    out.push(JSON.stringify(value) ?? '');
  } catch (error) {
    out.push(String(error)); // circular structures: the message must not leak either
  }
  if (value instanceof Error) {
    out.push(value.message, value.stack ?? '');
    for (let cause = value.cause; cause !== undefined; cause = (cause as Error).cause)
      out.push(...renderings(cause));
  }
  return out;
}

describe('secrets', () => {
  it('appear in no log line, error, inspect, JSON or String of a whole session', async () => {
    const captured: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void captured.push(line) });
    const sim = await Simulator.start({
      timeScale: 0.02,
      ariUser: 'asterisk',
      ariPassword: ARI_PASS,
      amiUser: 'manager',
      amiPassword: AMI_PASS,
    });
    cleanups.push(() => sim.close());
    const fake = await startFakeOpenAi({ apiKey: OPENAI_KEY, msPerChar: 1 });
    cleanups.push(() => fake.close());
    const previousBase = process.env.OPENAI_BASE_URL;
    process.env.OPENAI_BASE_URL = fake.baseURL;
    cleanups.push(() => {
      if (previousBase === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = previousBase;
    });

    const { min: rtpPortMin } = testPortRange(20);
    const options = {
      ...sim.connectionOptions(),
      logger,
      openaiApiKey: OPENAI_KEY,
      tts: 'openai' as const,
      stt: 'openai' as const,
      ttsCacheDirectory: false as const,
      rtpPortMin,
      rtpPortMax: rtpPortMin + 19,
    };
    const errors: unknown[] = [];
    const fail = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (error) {
        errors.push(error);
        return;
      }
      throw new Error('expected a rejection');
    };

    // Wrong ARI password, wrong AMI secret, a secret that would inject an AMI action, bad config.
    await fail(Server.create({ ...options, ariPassword: WRONG_ARI_PASS }));
    await fail(Server.create({ ...options, amiPassword: WRONG_AMI_PASS }));
    await fail(Server.create({ ...options, amiPassword: INJECTED_AMI_PASS }));
    await fail(Server.create({ ...options, ariPort: 'x' as unknown as number }));
    await fail(Server.create({ ...options, ariPassword: 42 as unknown as string }));
    await fail(Server.create({ ...options, amiPassword: '' }));
    expect(errors.map((e) => (e as Error).name)).toEqual([
      'AuthenticationError',
      'AuthenticationError',
      'InvalidInputError',
      'ConfigError',
      'ConfigError',
      'ConfigError',
    ]);

    // A working session: the first synthesis fails with a 401 that echoes the key.
    const server = await Server.create(options);
    cleanups.push(() => server.close());
    fake.failNext(401, 1, `Incorrect API key provided: ${OPENAI_KEY}. You can find your API key at …`);
    const handled: string[] = [];
    const callDone = deferred<void>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        try {
          await ui.say('Welcome');
        } catch (error) {
          errors.push(error); // the TTS error, as the handler sees it
        }
        const code = await ui.gather('Enter your code', { numDigits: 2 });
        await ui.say(`You entered ${code}`);
        handled.push(code);
        callDone.resolve();
      },
    });
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await within(phone.waitForAudio(10), 10_000, 'the prompt');
    await phone.press('42');
    await within(callDone.promise, 10_000, 'the call');
    await within(phone.ended(), 5000, 'the hang-up');
    expect(handled).toEqual(['42']);
    expect(errors.map((e) => (e as Error).name).at(-1)).toBe('SpeechEngineError');

    // ARI's own errors over REST: a 404 with the right password, a 401 with a wrong one.
    const ari = new AriClient({
      url: sim.ariUrl,
      username: 'asterisk',
      password: ARI_PASS,
      app: 'probe',
      logger,
    });
    const badAri = new AriClient({
      url: sim.ariUrl,
      username: 'asterisk',
      password: WRONG_ARI_PASS,
      app: 'probe',
      logger,
    });
    cleanups.push(
      () => ari.close(),
      () => badAri.close(),
    );
    await fail(ari.channels.get('no-such-channel'));
    await fail(badAri.channels.list());
    expect(errors.slice(-2).map((e) => (e as Error).name)).toEqual([
      'AriNotFoundError',
      'AuthenticationError',
    ]);

    // A Communicator in the same process: a call that connects and one that fails.
    const communicator = await Communicator.create(options);
    cleanups.push(() => communicator.close());
    const callee = sim.nextIncomingCall('bob');
    const call = await communicator.makeCall('bob', { timeout: 5 });
    await callee;
    await call.say('Your order has shipped.');
    await call.hangup();
    sim.setEndpointBehaviour('1001', { onCall: 'busy' });
    await fail(communicator.makeCall('1001', { timeout: 5 }));
    expect(errors.at(-1)).toBeInstanceOf(CallFailedError);
    expect(fake.requests.length).toBeGreaterThan(1);

    // Everything that could show a secret, rendered every usual way.
    const texts = [
      ...captured,
      ...renderings(server.config),
      ...renderings(resolveConfig(options)),
      ...renderings(server),
      ...renderings(communicator),
      ...renderings(ari),
      ...renderings(badAri),
      ...errors.flatMap((error) => renderings(error)),
    ];
    await server.close();
    await communicator.close();
    texts.push(...captured);
    expect(captured.length).toBeGreaterThan(30);
    expect(captured.some((l) => l.includes('"level":10') || l.includes('"level":20'))).toBe(true);
    for (const secret of SECRETS) {
      const leaks = texts.filter((t) => t.includes(secret));
      expect(
        leaks.map((t) => t.slice(Math.max(0, t.indexOf(secret) - 200), t.indexOf(secret) + 100)),
        secret,
      ).toEqual([]);
    }
  }, 30_000);
});
