/**
 * The fake OpenAI Realtime server, driven by the real `openai` SDK client (`OpenAIRealtimeWS`) over TLS:
 * proves the fake is faithful enough for agent tests to rely on it.
 */
import { randomBytes } from 'node:crypto';
import { AzureOpenAI, OpenAI } from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FAKE_REALTIME_API_KEY,
  type FakeRealtime,
  type FakeRealtimeConnection,
  startFakeRealtime,
  textEchoResponder,
} from './support/fake-realtime.js';
import { generateLocalhostTls } from './support/tls-cert.js';
import { within } from './support/within.js';

type ServerEventOf<T extends RealtimeServerEvent['type']> = Extract<RealtimeServerEvent, { type: T }>;

/** Everything a client saw, with awaitable lookups (past or future), so no test needs a sleep. */
function observe(rt: OpenAIRealtimeWS) {
  const events: RealtimeServerEvent[] = [];
  const errors: Error[] = [];
  const checks = new Set<() => void>();
  const recheck = () => {
    for (const check of [...checks]) check();
  };
  rt.on('event', (e) => {
    events.push(e);
    recheck();
  });
  // Binding 'error' also keeps the SDK from turning errors into unhandled rejections.
  rt.on('error', (e) => {
    errors.push(e);
    recheck();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    rt.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const until = <T>(probe: () => T | undefined, what: string): Promise<T> =>
    within(
      new Promise<T>((resolve) => {
        const check = () => {
          const value = probe();
          if (value === undefined) return;
          checks.delete(check);
          resolve(value);
        };
        checks.add(check);
        check();
      }),
      5000,
      what,
    );
  return {
    events,
    errors,
    closed,
    /** The `nth` server event of `type` matching `predicate`. */
    event<T extends RealtimeServerEvent['type']>(
      type: T,
      predicate: (e: ServerEventOf<T>) => boolean = () => true,
      nth = 1,
    ): Promise<ServerEventOf<T>> {
      return until(
        () =>
          events.filter((e): e is ServerEventOf<T> => e.type === type && predicate(e as ServerEventOf<T>))[
            nth - 1
          ],
        `server event ${type}`,
      );
    },
    error(): Promise<Error> {
      return until(() => errors[0], 'a client error');
    },
    ofType<T extends RealtimeServerEvent['type']>(type: T): ServerEventOf<T>[] {
      return events.filter((e): e is ServerEventOf<T> => e.type === type);
    },
  };
}

let fake: FakeRealtime;
const opened: OpenAIRealtimeWS[] = [];

/** Observes a client from its creation (so no error goes unhandled) and closes it after the test. */
function track(rt: OpenAIRealtimeWS): ReturnType<typeof observe> {
  opened.push(rt);
  return observe(rt);
}

beforeEach(async () => {
  fake = await startFakeRealtime();
});

afterEach(async () => {
  for (const rt of opened.splice(0)) rt.socket.terminate();
  await fake.close();
  expect(fake.openSockets).toBe(0);
  expect(fake.responderErrors).toEqual([]);
});

/** An OpenAI-flavoured client connected to the fake, plus the fake's side of the connection. */
async function connect(
  opts: { apiKey?: string } = {},
): Promise<{ rt: OpenAIRealtimeWS; seen: ReturnType<typeof observe>; conn: FakeRealtimeConnection }> {
  const client = new OpenAI({ apiKey: opts.apiKey ?? fake.apiKey, baseURL: fake.baseURL });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: fake.ca } }, client);
  const seen = track(rt);
  const conn = await fake.nextConnection();
  await seen.event('session.created');
  return { rt, seen, conn };
}

/** Switches the session to G.711 µ-law both ways, as the telephony agent does. */
async function useUlaw(rt: OpenAIRealtimeWS, seen: ReturnType<typeof observe>): Promise<void> {
  rt.send({
    type: 'session.update',
    session: {
      type: 'realtime',
      audio: { input: { format: { type: 'audio/pcmu' } }, output: { format: { type: 'audio/pcmu' } } },
    },
  });
  await seen.event('session.updated');
}

describe('fake Realtime server: transport', () => {
  it('serves wss with the generated CA and records the OpenAI URL shape', async () => {
    const { rt, seen, conn } = await connect();

    const created = (await seen.event('session.created')).session;
    expect(created).toMatchObject({ type: 'realtime', model: 'gpt-realtime', id: conn.session.id });
    expect(conn.session.id).toMatch(/^sess_[A-Za-z0-9]{20}$/);
    expect((await seen.event('session.created')).event_id).toMatch(/^event_[A-Za-z0-9]{20}$/);
    expect(rt.url.toString()).toBe(`wss://127.0.0.1:${fake.port}/v1/realtime?model=gpt-realtime`);
    expect(fake.attempts).toHaveLength(1);
    expect(conn.request).toMatchObject({
      path: '/v1/realtime',
      query: { model: 'gpt-realtime' },
      flavor: 'openai',
      model: 'gpt-realtime',
      auth: 'bearer',
      authorized: true,
      status: 101,
    });
    expect(fake.openSockets).toBe(1);
  });

  it('fails the TLS handshake for a client without the CA, or with another CA', async () => {
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL });
    const otherCa = (await generateLocalhostTls()).ca;
    const untrusting = track(new OpenAIRealtimeWS({ model: 'gpt-realtime' }, client));
    const wrongCa = track(new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: otherCa } }, client));

    for (const seen of [untrusting, wrongCa]) {
      const error = await seen.error();
      expect((error.cause as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      expect((await within(seen.closed)).code).toBe(1006);
    }
    expect(fake.attempts).toEqual([]);
    expect(fake.connections).toEqual([]);
    await fake.idle();
  });

  it('accepts the Azure URL shape with an api-key header', async () => {
    const azure = new AzureOpenAI({
      endpoint: fake.azureEndpoint,
      apiKey: fake.apiKey,
      apiVersion: '2025-08-28',
      deployment: 'my-realtime',
    });
    const rt = await OpenAIRealtimeWS.azure(azure, { options: { ca: fake.ca } });
    const seen = track(rt);
    const conn = await fake.nextConnection();

    expect((await seen.event('session.created')).session).toMatchObject({ model: 'my-realtime' });
    expect(conn.request).toMatchObject({
      path: '/openai/realtime',
      query: { 'api-version': '2025-08-28', deployment: 'my-realtime' },
      flavor: 'azure',
      model: 'my-realtime',
      apiVersion: '2025-08-28',
      auth: 'api-key',
      authorized: true,
    });
    expect(conn.request.headers.authorization).toBeUndefined();

    // deploymentName overrides the client's deployment.
    const other = track(
      await OpenAIRealtimeWS.azure(azure, { deploymentName: 'other', options: { ca: fake.ca } }),
    );
    expect((await other.event('session.created')).session).toMatchObject({ model: 'other' });
    expect((await fake.nextConnection()).request.model).toBe('other');
  });

  it('refuses a wrong key with 401, and refuseNext() with the chosen status', async () => {
    const wrong = track(
      new OpenAIRealtimeWS(
        { model: 'gpt-realtime', options: { ca: fake.ca } },
        new OpenAI({ apiKey: 'sk-wrong-key-000000', baseURL: fake.baseURL }),
      ),
    );
    const error = await wrong.error();
    expect(error.message).toContain('401');
    expect(fake.attempts[0]).toMatchObject({ status: 401, auth: 'bearer', authorized: false });

    fake.refuseNext(503);
    const refused = track(
      new OpenAIRealtimeWS(
        { model: 'gpt-realtime', options: { ca: fake.ca } },
        new OpenAI({ apiKey: FAKE_REALTIME_API_KEY, baseURL: fake.baseURL }),
      ),
    );
    expect((await refused.error()).message).toContain('503');
    expect(fake.attempts[1]).toMatchObject({ status: 503, authorized: true });
    expect(fake.connections).toEqual([]);

    await fake.idle(); // refused upgrades leave no socket behind

    // The refusal was one-shot: the next client gets in.
    const { conn } = await connect();
    expect(conn.request.status).toBe(101);
  });

  it('drop() kills the socket without a close frame; the client sees 1006', async () => {
    const { seen, conn } = await connect();
    conn.drop();
    expect((await within(seen.closed)).code).toBe(1006);
    expect((await within(conn.closed)).code).toBe(1006);
    expect(conn.isOpen).toBe(false);
    await fake.idle();
    expect(fake.openSockets).toBe(0);
    await expect(conn.waitFor('response.create', undefined, { timeoutMs: 100 })).rejects.toThrow(/closed/);
  });

  it('close(code, reason) sends a close frame; fake.close() leaves nothing open', async () => {
    const first = await connect();
    first.conn.close(4000, 'bye');
    expect(await within(first.seen.closed)).toEqual({ code: 4000, reason: 'bye' });

    const second = await connect();
    await fake.close();
    expect(fake.openSockets).toBe(0);
    expect((await within(second.seen.closed)).code).toBe(1006);
    await expect(fake.nextConnection()).rejects.toThrow(/closed/);
  });
});

describe('fake Realtime server: protocol', () => {
  it('merges session.update and answers session.updated with the full session', async () => {
    const { rt, seen, conn } = await connect();
    const sessionId = conn.session.id;
    rt.send({
      type: 'session.update',
      session: {
        type: 'realtime',
        instructions: 'Be brief.',
        audio: {
          input: { format: { type: 'audio/pcmu' } },
          output: { format: { type: 'audio/pcmu' }, voice: 'marin' },
        },
      },
    });

    const updated = (await seen.event('session.updated')).session;
    expect(updated).toEqual(conn.session);
    expect(conn.session).toMatchObject({
      id: sessionId,
      type: 'realtime',
      model: 'gpt-realtime',
      instructions: 'Be brief.',
      output_modalities: ['audio'],
      audio: {
        // Formats are replaced whole; sibling config (turn detection, speed) is kept.
        input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } },
        output: { format: { type: 'audio/pcmu' }, voice: 'marin', speed: 1 },
      },
    });
    expect(conn.session.audio?.input?.format).toEqual({ type: 'audio/pcmu' });
    expect(await conn.waitFor('session.update')).toMatchObject({ session: { instructions: 'Be brief.' } });
    expect(conn.errors).toEqual([]);
  });

  it('collects appended audio byte-exact, with per-append timestamps', async () => {
    const { rt, conn } = await connect();
    const chunks = Array.from({ length: 25 }, (_, i) => randomBytes(160 + i));
    for (const chunk of chunks)
      rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
    const expected = Buffer.concat(chunks);

    const audio = await conn.waitForAudio(expected.length);
    expect(audio.equals(expected)).toBe(true);
    expect(conn.audio.equals(expected)).toBe(true);
    expect(conn.appends.map((a) => a.bytes)).toEqual(chunks.map((c) => c.length));
    expect(conn.appends.map((a) => a.offset)).toEqual(
      chunks.map((_, i) => chunks.slice(0, i).reduce((n, c) => n + c.length, 0)),
    );
    for (let i = 1; i < conn.appends.length; i++) {
      expect(conn.appends[i]!.at).toBeGreaterThanOrEqual(conn.appends[i - 1]!.at);
    }
    expect(conn.errors).toEqual([]);
  });

  it('streams a scripted audio response to the client in GA event order', async () => {
    const { rt, seen, conn } = await connect();
    await useUlaw(rt, seen);
    rt.send({ type: 'response.create' });
    const request = await conn.waitFor('response.create');

    const ulaw = randomBytes(1234);
    const response = conn.startResponse({ request });
    response.transcript('Hello there.');
    await response.audio(ulaw, { chunkBytes: 160 });
    const final = response.done();

    const done = await seen.event('response.done');
    expect(done.response).toEqual(final);
    const deltas = seen.ofType('response.output_audio.delta');
    expect(deltas).toHaveLength(Math.ceil(1234 / 160));
    expect(Buffer.concat(deltas.map((d) => Buffer.from(d.delta, 'base64'))).equals(ulaw)).toBe(true);
    const itemId = response.messageItemId!;
    expect(itemId).toMatch(/^item_/);
    expect(response.id).toMatch(/^resp_/);
    for (const d of deltas) {
      expect(d).toMatchObject({
        response_id: response.id,
        item_id: itemId,
        output_index: 0,
        content_index: 0,
      });
    }

    const types = seen.events.map((e) => e.type).filter((t) => t !== 'response.output_audio.delta');
    expect(types).toEqual([
      'session.created',
      'session.updated',
      'response.created',
      'response.output_item.added',
      'conversation.item.added',
      'response.content_part.added',
      'response.output_audio_transcript.delta',
      'response.output_audio_transcript.delta',
      'response.output_audio.done',
      'response.output_audio_transcript.done',
      'response.content_part.done',
      'response.output_item.done',
      'conversation.item.done',
      'response.done',
    ]);
    expect((await seen.event('response.output_audio_transcript.done')).transcript).toBe('Hello there.');
    expect(done.response).toMatchObject({
      id: response.id,
      status: 'completed',
      conversation_id: conn.conversationId,
      output: [{ id: itemId, type: 'message', role: 'assistant', status: 'completed' }],
      usage: {
        total_tokens: expect.any(Number),
        input_tokens: expect.any(Number),
        output_tokens: expect.any(Number),
      },
    });
    expect(done.response.output?.[0]).toMatchObject({
      content: [{ type: 'output_audio', transcript: 'Hello there.' }],
    });
    const usage = done.response.usage!;
    expect(usage.total_tokens).toBe(usage.input_tokens! + usage.output_tokens!);
    expect(await response.finished).toEqual(final);
    expect(conn.errors).toEqual([]);
  });

  it('answers response.cancel with response.done cancelled, and truncate with truncated', async () => {
    const { rt, seen, conn } = await connect();
    await useUlaw(rt, seen);
    const response = conn.startResponse();
    await response.audio(Buffer.alloc(1600, 0xff)); // 200 ms of µ-law silence
    rt.send({ type: 'response.cancel' });

    const done = await seen.event('response.done');
    expect(done.response).toMatchObject({
      id: response.id,
      status: 'cancelled',
      status_details: { type: 'cancelled', reason: 'client_cancelled' },
      output: [{ status: 'incomplete' }],
    });
    expect(response.status).toBe('cancelled');
    expect(response.active).toBe(false);
    // The "model" has stopped: later output is dropped.
    await response.audio(Buffer.alloc(800));
    expect(seen.ofType('response.output_audio.delta')).toHaveLength(2);

    const itemId = response.messageItemId!;
    rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 120 });
    const truncated = await seen.event('conversation.item.truncated');
    expect(truncated).toMatchObject({ item_id: itemId, content_index: 0, audio_end_ms: 120 });
    expect(await conn.waitFor('conversation.item.truncate')).toMatchObject({ audio_end_ms: 120 });

    // Like the real API: nothing left to cancel, or truncating past the audio, is an error event.
    rt.send({ type: 'response.cancel', event_id: 'evt_client_1' });
    rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 5000 });
    await seen.event('error', undefined, 2);
    expect(conn.errors.map((e) => e.error)).toMatchObject([
      { type: 'invalid_request_error', code: 'response_cancel_not_active', event_id: 'evt_client_1' },
      { type: 'invalid_request_error', param: 'audio_end_ms', message: expect.stringContaining('120ms') },
    ]);
    expect(seen.errors).toHaveLength(2);
  });

  it('stops streaming audio as soon as a mid-stream response.cancel arrives', async () => {
    const { rt, seen, conn } = await connect();
    await useUlaw(rt, seen);
    rt.on('response.output_audio.delta', () => {
      if (seen.ofType('response.output_audio.delta').length === 1) rt.send({ type: 'response.cancel' });
    });
    const response = conn.startResponse();
    await response.audio(Buffer.alloc(160 * 500, 0xff), { chunkBytes: 160 }); // 10 s in 20 ms chunks

    const done = await seen.event('response.done');
    expect(done.response.status).toBe('cancelled');
    const deltas = seen.ofType('response.output_audio.delta').length;
    expect(deltas).toBeGreaterThanOrEqual(1);
    expect(deltas).toBeLessThan(500);
    // Nothing of the response follows its response.done: a round trip flushes anything in flight.
    rt.send({ type: 'response.cancel', event_id: 'evt_flush' });
    const flush = await seen.event('error');
    expect(flush.error).toMatchObject({ code: 'response_cancel_not_active', event_id: 'evt_flush' });
    expect(seen.events.slice(seen.events.indexOf(done) + 1)).toEqual([flush]);
    expect(await conn.waitFor('response.cancel')).toEqual({ type: 'response.cancel' });
    expect(conn.errors).toHaveLength(1);
  });

  it('barge-in: speechStarted() cancels the active response with reason turn_detected', async () => {
    const { seen, conn } = await connect();
    const response = conn.startResponse();
    response.transcript('Let me tell you a long story');
    const userItem = conn.speechStarted(1500);

    expect(await seen.event('input_audio_buffer.speech_started')).toMatchObject({
      audio_start_ms: 1500,
      item_id: userItem,
    });
    expect((await seen.event('response.done')).response.status_details).toEqual({
      type: 'cancelled',
      reason: 'turn_detected',
    });
    expect(conn.speechStopped(2300)).toBe(userItem);
    conn.userTranscript('wait, stop');
    expect(await seen.event('input_audio_buffer.speech_stopped')).toMatchObject({
      audio_end_ms: 2300,
      item_id: userItem,
    });
    expect(await seen.event('input_audio_buffer.committed')).toMatchObject({ item_id: userItem });
    expect(await seen.event('conversation.item.input_audio_transcription.completed')).toMatchObject({
      item_id: userItem,
      content_index: 0,
      transcript: 'wait, stop',
    });
    expect(conn.items.at(-1)).toMatchObject({
      id: userItem,
      role: 'user',
      content: [{ transcript: 'wait, stop' }],
    });
  });

  it('answers conversation.item.create and runs the text echo responder on response.create', async () => {
    const { rt, seen, conn } = await connect();
    fake.onResponse = textEchoResponder;
    rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'] } });
    rt.send({
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello fake' }] },
    });
    rt.send({ type: 'response.create', response: { metadata: { turn: '1' } } });

    const added = await seen.event('conversation.item.added');
    expect(added.item).toMatchObject({ type: 'message', role: 'user', object: 'realtime.item' });
    expect(added.item.id).toMatch(/^item_/);
    expect(added.previous_item_id).toBeNull();
    expect((await seen.event('conversation.item.done')).item.id).toBe(added.item.id);

    expect((await seen.event('response.output_text.done')).text).toBe('You said: hello fake');
    const done = await seen.event('response.done');
    expect(done.response).toMatchObject({
      status: 'completed',
      output_modalities: ['text'],
      metadata: { turn: '1' },
      output: [{ role: 'assistant', content: [{ type: 'output_text', text: 'You said: hello fake' }] }],
    });
    expect(
      seen
        .ofType('response.output_text.delta')
        .map((d) => d.delta)
        .join(''),
    ).toBe('You said: hello fake');
    expect(conn.items.map((i) => i.type === 'message' && i.role)).toEqual(['user', 'assistant']);
    expect(conn.errors).toEqual([]);
  });

  it('scripts a function call and accepts its output item', async () => {
    const { rt, seen, conn } = await connect();
    const response = conn.startResponse();
    const { itemId, callId } = response.functionCall('lookup_weather', { city: 'Paris' });
    response.done();

    const args = await seen.event('response.function_call_arguments.done');
    expect(args).toMatchObject({ name: 'lookup_weather', call_id: callId, item_id: itemId, output_index: 0 });
    expect(JSON.parse(args.arguments)).toEqual({ city: 'Paris' });
    expect(callId).toMatch(/^call_/);
    expect(
      seen
        .ofType('response.function_call_arguments.delta')
        .map((d) => d.delta)
        .join(''),
    ).toBe(args.arguments);
    expect((await seen.event('response.output_item.done')).item).toMatchObject({
      type: 'function_call',
      status: 'completed',
      call_id: callId,
    });

    rt.send({
      type: 'conversation.item.create',
      item: { type: 'function_call_output', call_id: callId, output: '{"temp_c":21}' },
    });
    const added = await seen.event('conversation.item.added', (e) => e.item.type === 'function_call_output');
    expect(added.previous_item_id).toBe(itemId);
    expect(conn.errors).toEqual([]);
  });

  it('refuses invalid client events with invalid_request_error, like the real API', async () => {
    const { rt, seen, conn } = await connect();
    fake.onResponse = async (_conn, response) => {
      await response.finished; // hold the response open until the client cancels it
    };
    rt.socket.send('{not json');
    rt.send({ type: 'session.nonsense' } as never);
    rt.send({ type: 'session.update', session: { instructions: 'no type' } } as never);
    rt.send({
      type: 'conversation.item.create',
      event_id: 'evt_beta_style',
      item: { type: 'message', role: 'assistant', content: [{ type: 'text', text: 'beta shape' }] } as never,
    });
    rt.send({ type: 'input_audio_buffer.commit' });
    rt.send({ type: 'response.create' });
    rt.send({ type: 'response.create' });

    await seen.event('error', undefined, 6);
    expect(conn.errors.map((e) => [e.error.type, e.error.code, e.error.param])).toEqual([
      ['invalid_request_error', 'invalid_json', null],
      ['invalid_request_error', 'invalid_value', 'type'],
      ['invalid_request_error', 'missing_required_parameter', 'session.type'],
      ['invalid_request_error', 'invalid_value', 'item.content[0].type'],
      ['invalid_request_error', 'input_audio_buffer_commit_empty', null],
      ['invalid_request_error', 'conversation_already_has_active_response', null],
    ]);
    expect(conn.errors[3]?.error.event_id).toBe('evt_beta_style');
    for (const e of conn.errors) expect(e.event_id).toMatch(/^event_/);
    // The SDK surfaces each as an error; the session stays usable.
    expect(seen.errors).toHaveLength(6);
    rt.send({ type: 'response.cancel' });
    expect((await seen.event('response.done')).response.status).toBe('cancelled');
    expect(conn.received.map((e) => e.type)).toContain('session.nonsense');
  });
});
