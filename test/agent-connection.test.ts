import OpenAI, { AzureOpenAI } from 'openai';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  RealtimeEvent,
  RealtimeSessionConfig,
  RealtimeTransport,
} from '../src/agent/realtime-transport.js';
import { decodeMulaw, encodeMulaw } from '../src/media/g711.js';
import {
  type AgentHarness,
  callAgent,
  playGreeting,
  startAgentHarness,
  tonePcm,
  toneUlaw,
} from './support/agent-harness.js';
import { FAKE_REALTIME_API_KEY } from './support/fake-realtime.js';
import { deferred } from './support/voice-harness.js';

let h: AgentHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const INSTRUCTIONS = 'You are a test agent.';
/** Every variable the default connection reads, cleared unless a test sets it. */
const CONNECTION_ENV = [
  'OPENAI_API_KEY',
  'OPENAI_BASE_URL',
  'OPENAI_API_VERSION',
  'AZURE_OPENAI_ENDPOINT',
  'AZURE_OPENAI_API_KEY',
] as const;

/** Runs `fn` with the connection variables set to `vars` (the others unset), restoring them after. */
async function withEnv<T>(
  vars: Partial<Record<(typeof CONNECTION_ENV)[number], string>>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = CONNECTION_ENV.map((name) => [name, process.env[name]] as const);
  for (const name of CONNECTION_ENV) {
    const value = vars[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('how the agent reaches the model', () => {
  it('an AzureOpenAI client: the Azure URL with the model as deployment, and an api-key header', async () => {
    h = await startAgentHarness();
    const client = new AzureOpenAI({
      endpoint: h.fake.azureEndpoint,
      apiKey: FAKE_REALTIME_API_KEY,
      apiVersion: '2025-08-28',
      deployment: 'the-client-default',
    });
    const call = await callAgent(h, {
      instructions: INSTRUCTIONS,
      model: 'my-realtime-deployment',
      greeting: true,
      connection: { client, websocket: h.fake.wsOptions },
    });
    const conn = await h.fake.nextConnection();
    expect(conn.request).toMatchObject({
      flavor: 'azure',
      path: '/openai/realtime',
      model: 'my-realtime-deployment',
      apiVersion: '2025-08-28',
      auth: 'api-key',
      authorized: true,
    });
    expect(conn.request.headers.authorization).toBeUndefined();
    await playGreeting(conn, call.phone);
    await call.phone.hangup();
    expect((await call.result).reason).toBe('caller-hangup');
    expect(conn.errors).toEqual([]);
  });

  it('no client: the config key and OPENAI_BASE_URL, with a Bearer header', async () => {
    h = await startAgentHarness({ server: { openaiApiKey: FAKE_REALTIME_API_KEY } });
    const harness = h;
    await withEnv({ OPENAI_BASE_URL: harness.fake.baseURL }, async () => {
      const call = await callAgent(harness, {
        instructions: INSTRUCTIONS,
        greeting: true,
        connection: { websocket: harness.fake.wsOptions },
      });
      const conn = await harness.fake.nextConnection();
      expect(conn.request).toMatchObject({
        flavor: 'openai',
        path: '/v1/realtime',
        model: 'gpt-realtime',
        auth: 'bearer',
        authorized: true,
      });
      expect(conn.request.headers.authorization).toBe(`Bearer ${FAKE_REALTIME_API_KEY}`);
      await playGreeting(conn, call.phone);
      await call.phone.hangup();
      expect((await call.result).reason).toBe('caller-hangup');
    });
  });

  it('no client: AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY select Azure', async () => {
    h = await startAgentHarness();
    const harness = h;
    await withEnv(
      {
        AZURE_OPENAI_ENDPOINT: harness.fake.azureEndpoint,
        AZURE_OPENAI_API_KEY: FAKE_REALTIME_API_KEY,
        OPENAI_API_VERSION: '2025-08-28',
      },
      async () => {
        const call = await callAgent(harness, {
          instructions: INSTRUCTIONS,
          greeting: true,
          connection: { websocket: harness.fake.wsOptions },
        });
        const conn = await harness.fake.nextConnection();
        expect(conn.request).toMatchObject({
          flavor: 'azure',
          model: 'gpt-realtime',
          apiVersion: '2025-08-28',
          auth: 'api-key',
          authorized: true,
        });
        await playGreeting(conn, call.phone);
        await call.phone.hangup();
        expect((await call.result).reason).toBe('caller-hangup');
      },
    );
  });

  it('the API key appears in no log line, at trace level, for a good and a refused connection', async () => {
    const logged: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logged.push(line) });
    h = await startAgentHarness({ server: { logger, openaiApiKey: FAKE_REALTIME_API_KEY } });
    const harness = h;
    const wrongKey = 'sk-wrong-secret-9876543210';
    await withEnv({ OPENAI_BASE_URL: harness.fake.baseURL }, async () => {
      // A whole call with the config's key: greeting, a tool, end_call.
      const good = await callAgent(harness, {
        instructions: INSTRUCTIONS,
        greeting: true,
        tools: [
          { name: 'look_up_order', description: 'Order status', handler: () => ({ status: 'shipped' }) },
        ],
        connection: { websocket: harness.fake.wsOptions },
      });
      const conn = await harness.fake.nextConnection();
      await playGreeting(conn, good.phone);
      const tool = conn.startResponse();
      tool.functionCall('look_up_order', {}, 'call_L');
      tool.functionCall('end_call', {}, 'call_E');
      tool.done();
      expect((await good.result).reason).toBe('end-call');
      await good.phone.ended();

      // The same key, refused by the service; then a wrong key, refused as such.
      harness.fake.refuseNext(401);
      const refused = await callAgent(harness, {
        instructions: INSTRUCTIONS,
        connection: { websocket: harness.fake.wsOptions },
      });
      expect((await refused.result).reason).toBe('model-error');
      await refused.phone.hangup();
      const wrong = await callAgent(harness, {
        instructions: INSTRUCTIONS,
        connection: {
          client: new OpenAI({ apiKey: wrongKey, baseURL: harness.fake.baseURL }),
          websocket: harness.fake.wsOptions,
        },
      });
      const wrongResult = await wrong.result;
      expect(wrongResult.reason).toBe('model-error');
      expect(wrongResult.error?.message).not.toContain(wrongKey);
      await wrong.phone.hangup();
    });
    expect(harness.fake.attempts.map((a) => a.status)).toEqual([101, 401, 401]);
    const all = logged.join('');
    // The log saw the calls, the tool and both refusals…
    expect(all).toContain('"level":20'); // debug lines were written
    expect(logged.filter((line) => line.includes('HTTP 401')).length).toBeGreaterThanOrEqual(2);
    // …and neither key, whole.
    expect(all).not.toContain(FAKE_REALTIME_API_KEY);
    expect(all).not.toContain(wrongKey);
  });

  it('a model the service does not know: model-error naming the model and the service’s reason', async () => {
    h = await startAgentHarness();
    h.fake.refuseNext(404, {
      body: {
        error: {
          message: "The model 'gpt-nope' does not exist or you do not have access to it.",
          type: 'invalid_request_error',
          param: null,
          code: 'model_not_found',
        },
      },
    });
    const call = await callAgent(h, { instructions: INSTRUCTIONS, model: 'gpt-nope' });
    const result = await call.result;
    expect(result.reason).toBe('model-error');
    expect(result.error?.name).toBe('RealtimeConnectionError');
    expect(result.error?.message).toMatch(/gpt-nope/);
    expect(result.error?.message).toMatch(/404/);
    expect(result.error?.message).toMatch(/does not exist/);
    expect(h.fake.attempts[0]?.model).toBe('gpt-nope');
    await h.fake.idle(); // the refused request left nothing open
    await call.phone.hangup();
  });

  it('a model that accepts the socket but refuses the session: model-error with the service’s reason', async () => {
    h = await startAgentHarness();
    h.fake.holdSessionUpdates = true;
    const call = await callAgent(h, { instructions: INSTRUCTIONS, model: 'gpt-nope' });
    const conn = await h.fake.nextConnection();
    await conn.waitFor('session.update');
    conn.sendError({ code: 'model_not_found', message: "The model 'gpt-nope' does not exist." });
    const result = await call.result;
    expect(result.reason).toBe('model-error');
    expect(result.error?.message).toMatch(/refused the session: The model 'gpt-nope' does not exist/);
    await conn.closed;
    await call.phone.hangup();
  });
});

/**
 * A stand-in for another realtime provider, written against RealtimeTransport only: it greets
 * with a tone of its own and counts the caller's audio. Events go out asynchronously, as from a
 * socket.
 */
class ToneProvider implements RealtimeTransport {
  readonly greeting = toneUlaw(400, 500);
  config: RealtimeSessionConfig | undefined;
  readonly heard: Buffer[] = [];
  readonly closed = deferred<void>();
  readonly #listeners = new Set<(event: RealtimeEvent) => void>();
  #responses = 0;
  #heardWaiter: { bytes: number; resolve: () => void } | undefined;

  async connect(config: RealtimeSessionConfig): Promise<void> {
    this.config = config;
  }

  appendAudio(ulaw: Uint8Array): void {
    this.heard.push(Buffer.from(ulaw));
    const waiter = this.#heardWaiter;
    if (waiter && Buffer.concat(this.heard).length >= waiter.bytes) {
      this.#heardWaiter = undefined;
      waiter.resolve();
    }
  }

  /** Resolves once at least `bytes` of caller audio came in. */
  waitForAudio(bytes: number): Promise<Buffer> {
    return new Promise((resolve) => {
      const done = (): void => resolve(Buffer.concat(this.heard));
      if (Buffer.concat(this.heard).length >= bytes) done();
      else this.#heardWaiter = { bytes, resolve: done };
    });
  }

  createResponse(): void {
    const responseId = `tone_${++this.#responses}`;
    const itemId = `${responseId}_item`;
    const events: RealtimeEvent[] = [{ type: 'responseStarted', responseId }];
    for (let offset = 0; offset < this.greeting.length; offset += 800)
      events.push({
        type: 'audio',
        responseId,
        itemId,
        ulaw: this.greeting.subarray(offset, offset + 800),
        receivedAt: performance.now(),
      });
    events.push(
      { type: 'assistantText', responseId, itemId, text: 'Hello from another provider.', final: true },
      { type: 'responseDone', responseId, status: 'completed', usage: { totalTokens: 7 } },
    );
    const next = (): void => {
      const event = events.shift();
      if (!event) return;
      for (const listener of this.#listeners) listener(event);
      setImmediate(next);
    };
    setImmediate(next);
  }

  cancelResponse(): void {}
  truncate(): void {}
  addUserText(): void {}
  addToolResult(): void {}

  onEvent(listener: (event: RealtimeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#listeners.clear();
    this.closed.resolve();
  }
}

describe('another provider through connection.transport', () => {
  it('VoiceUI plays its audio and sends it the caller’s, with no OpenAI involved', async () => {
    h = await startAgentHarness();
    const provider = new ToneProvider();
    const call = await callAgent(h, {
      instructions: INSTRUCTIONS,
      model: 'tone-1',
      voice: 'low',
      greeting: true,
      connection: { transport: () => provider },
    });
    await call.phone.waitForAudio(400);
    expect(call.phone.heard().audio.subarray(0, provider.greeting.length)).toEqual(
      decodeMulaw(provider.greeting),
    );
    const speech = tonePcm(200);
    await call.phone.speak(speech);
    expect((await provider.waitForAudio(speech.length)).includes(encodeMulaw(speech))).toBe(true);
    await call.phone.hangup();
    const result = await call.result;
    expect(result.reason).toBe('caller-hangup');
    expect(result.transcript.map((l) => l.text)).toEqual(['Hello from another provider.']);
    expect(result.usage).toMatchObject({ responses: 1, totalTokens: 7 });
    expect(provider.config).toMatchObject({ model: 'tone-1', voice: 'low', modality: 'audio' });
    await provider.closed.promise;
    expect(h.fake.attempts).toEqual([]);
  });
});
