import { type ClientRequest, request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type RawData, WebSocket } from 'ws';
import type { ConsoleOptions } from '../src/console/console-server.js';
import type { SessionUpdate, SessionView } from '../src/console/live-sessions.js';
import { ConfigError, HangupError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { decodeMulaw, encodeMulaw } from '../src/media/g711.js';
import { simulatorSoftphone } from '../src/sandbox/sim-softphone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { ScriptedSttEngine } from '../src/stt/scripted-stt-engine.js';
import type { SttEngine } from '../src/stt/stt-engine.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { AGENT_NUMBER, callAgent, startAgentHarness } from './support/agent-harness.js';
import { textLogger } from './support/capturing-logger.js';
import { resourceCounts } from './support/resource-counts.js';
import { testPortRange } from './support/test-ports.js';
import { deferred, nextServerEvent, RecordingTts } from './support/voice-harness.js';
import { within } from './support/within.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A simulator and a Server on it with the console on (`console(sim)`), fast offline speech. */
async function startConsole(
  options: {
    console?: (sim: Simulator) => ConsoleOptions;
    stt?: SttEngine;
    logger?: Logger;
    msPerChar?: number;
  } = {},
): Promise<{ sim: Simulator; server: Server; url: string }> {
  const sim = await Simulator.start({ timeScale: 0.02 });
  cleanups.push(() => sim.close());
  const { min: rtpPortMin } = testPortRange(100);
  const { logger } = options.logger ? { logger: options.logger } : textLogger();
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: `console-${Math.random().toString(36).slice(2, 8)}`,
    logger,
    tts: new RecordingTts(options.msPerChar ?? 1),
    stt: options.stt ?? false,
    ttsCacheDirectory: false,
    rtpPortMin,
    rtpPortMax: rtpPortMin + 99,
    textRateLimit: { messages: 1000, perMs: 1000 },
    console: options.console?.(sim) ?? { port: 0 },
  });
  cleanups.push(() => server.close());
  const url = server.consoleUrl ?? '';
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  return { sim, server, url };
}

interface SseEvent {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, checked by the assertions
  data: any;
}

/** A server-sent events client over node:http that keeps every event and lets tests await them. */
class EventStream {
  readonly events: SseEvent[] = [];
  private readonly waiters: { match: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  private buffer = '';

  private constructor(private readonly req: ClientRequest) {}

  static open(url: string): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { headers: { Accept: 'text/event-stream' } });
      const stream = new EventStream(req);
      req.on('response', (res) => {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => stream.feed(chunk));
        resolve(stream);
      });
      req.on('error', reject);
      req.end();
      cleanups.push(async () => stream.close());
    });
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end = this.buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) this.push({ event: name, data: JSON.parse(data.join('\n')) });
      end = this.buffer.indexOf('\n\n');
    }
  }

  private push(e: SseEvent): void {
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.match(e)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  /** The first event (received or to come) that `match` accepts. */
  wait(match: (e: SseEvent) => boolean, what: string): Promise<SseEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return within(new Promise<SseEvent>((resolve) => this.waiters.push({ match, resolve })), 5000, what);
  }

  /** The first `update` (received or to come) that `match` accepts. */
  async update(match: (u: SessionUpdate) => boolean, what: string): Promise<SessionUpdate> {
    return (await this.wait((e) => e.event === 'update' && match(e.data as SessionUpdate), what))
      .data as SessionUpdate;
  }

  /** The updates of session `id`, in the order they came. */
  updatesOf(id: string): SessionUpdate[] {
    return this.events
      .filter((e) => e.event === 'update')
      .map((e) => e.data as SessionUpdate)
      .filter((u) => (u.type === 'line' ? u.id : u.session.id) === id);
  }

  close(): void {
    this.req.destroy();
  }
}

const isLine = (id: string, kind: string, text?: string) => (u: SessionUpdate) =>
  u.type === 'line' && u.id === id && u.line.kind === kind && (text === undefined || u.line.text === text);

async function post(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function state(
  url: string,
): Promise<{ live: SessionView[]; ended: SessionView[] } & Record<string, unknown>> {
  const response = await fetch(`${url}api/state`);
  expect(response.status).toBe(200);
  return (await response.json()) as { live: SessionView[]; ended: SessionView[] };
}

/** Resolves when the call ends (the app's VoiceUI `ended`). */
function untilEnded(ui: VoiceUI): Promise<void> {
  return new Promise((resolve) => ui.on('ended', () => resolve()));
}

describe('web console: server-sent events', () => {
  it('streams a snapshot, then a call (said, keys, gather, ended) and a text conversation, in order', async () => {
    const { sim, server, url } = await startConsole();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Welcome to the console test');
        const code = await ui.gather('Enter your code', { numDigits: 3 });
        await ui.say(`Thanks for ${code}`);
      },
      text: async (ui) => {
        await ui.say(`You wrote: ${ui.firstMessage}`);
      },
    });

    const page = await within(fetch(url), 5000, 'the page');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<html');

    const stream = await EventStream.open(`${url}api/events`);
    const snapshot = (await stream.wait((e) => e.event === 'snapshot', 'the snapshot')).data;
    expect(stream.events[0]?.event).toBe('snapshot');
    expect(snapshot).toMatchObject({
      live: [],
      ended: [],
      totals: { calls: 0, texts: 0, errors: 0 },
      controls: false,
      softphone: null,
      health: { ready: true, registered: ['1000'] },
    });

    const phone = await sim.call({ from: 'alice', to: '1000' });
    const id = phone.channelId;
    const opened = await stream.update((u) => u.type === 'session' && u.session.id === id, 'the call');
    expect(opened).toMatchObject({
      type: 'session',
      session: { kind: 'call', peer: 'alice', number: '1000' },
    });
    await stream.update(isLine(id, 'said', 'Welcome to the console test'), 'the welcome');
    await stream.update(
      (u) => u.type === 'session' && u.session.id === id && u.session.verb === 'gather',
      'gather shown as the verb',
    );
    await phone.press('123');
    const ended = await stream.update((u) => u.type === 'ended' && u.session.id === id, 'the end');
    expect(ended).toMatchObject({ session: { state: 'ended', endReason: 'done' } });
    expect(ended.type === 'ended' && ended.session.verb).toBe(undefined);
    expect((await phone.ended()).cause).toBe(16);

    // The order of what the page saw.
    const updates = stream.updatesOf(id);
    const at = (match: (u: SessionUpdate) => boolean, what: string) => {
      const i = updates.findIndex(match);
      expect(i, what).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      at((u) => u.type === 'session', 'session'),
      at(isLine(id, 'said', 'Welcome to the console test'), 'welcome'),
      at((u) => u.type === 'session' && u.session.verb === 'gather', 'gather verb'),
      at(isLine(id, 'dtmf'), 'dtmf'),
      at(isLine(id, 'keys', '123'), 'keys'),
      at(isLine(id, 'said', 'Thanks for 123'), 'thanks'),
      at((u) => u.type === 'ended', 'ended'),
    ];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(updates.at(-1)?.type).toBe('ended');
    // The keys were one growing dtmf line (one seq), ending as 123.
    const dtmf = updates.filter(isLine(id, 'dtmf')).map((u) => (u.type === 'line' ? u.line : undefined));
    expect(new Set(dtmf.map((l) => l?.seq)).size).toBe(1);
    expect(dtmf.at(-1)?.text).toBe('123');
    expect(dtmf.at(-1)?.who).toBe('caller');

    // A text conversation.
    expect(await sim.sendText({ from: 'alice', to: '1000', body: 'hello console' })).toBe(202);
    const text = await stream.update(
      (u) => u.type === 'session' && u.session.kind === 'text',
      'the text conversation',
    );
    expect(text.type === 'session' && text.session).toMatchObject({
      number: '1000',
      peer: 'alice',
      state: 'open',
    });
    const textId = text.type === 'session' ? text.session.id : '';
    expect(textId).toMatch(/^text:1000:alice:\d+$/);
    const opening = await stream.update(isLine(textId, 'text', 'hello console'), 'the opening text');
    expect(opening.type === 'line' && opening.line.who).toBe('caller');
    const reply = await stream.update(isLine(textId, 'said', 'You wrote: hello console'), 'the reply');
    expect(reply.type === 'line' && reply.line.who).toBe('app');
    expect((await sim.nextSentText((t) => t.toUser === 'alice')).body).toBe('You wrote: hello console');
    await stream.update((u) => u.type === 'ended' && u.session.id === textId, 'the conversation end');

    // The transcripts as /api/state keeps them.
    const now = await state(url);
    expect(now.live).toEqual([]);
    expect(now.ended.map((s) => s.id)).toEqual([textId, id]);
    expect(now.ended[1]?.transcript.map((l) => [l.who, l.kind, l.text])).toEqual([
      ['app', 'said', 'Welcome to the console test'],
      ['app', 'said', 'Enter your code'],
      ['caller', 'dtmf', '123'],
      ['caller', 'keys', '123'],
      ['app', 'said', 'Thanks for 123'],
    ]);
    expect(now.totals).toEqual({ calls: 1, texts: 1, errors: 0 });
    const totals = stream.events.filter((e) => e.event === 'totals');
    expect(totals.at(-1)?.data).toMatchObject({ calls: 1, texts: 1 });
  });

  it('/api/state is what a new page gets as its snapshot; keepEnded caps the ended list', async () => {
    const { sim, server, url } = await startConsole({ console: () => ({ port: 0, keepEnded: 2 }) });
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say(`Hi ${ui.remoteNumber}`);
      },
    });
    const ids: string[] = [];
    for (const from of ['alice', 'bob', 'carol']) {
      const done = nextServerEvent(server, 'callEnded');
      const phone = await sim.call({ from, to: '1000' });
      ids.push(phone.channelId);
      await within(done, 5000, `the call from ${from}`);
    }
    // A handler that fails: an error, counted, with its message as the reason.
    await server.registerExtension('2000', {
      voice: async () => {
        throw new Error('boom');
      },
    });
    const failed = nextServerEvent(server, 'callEnded');
    const failing = await sim.call({ from: 'dave', to: '2000' });
    await within(failed, 5000, 'the failing call');
    ids.push(failing.channelId);
    const snapshot = (
      await (await EventStream.open(`${url}api/events`)).wait((e) => e.event === 'snapshot', 'the snapshot')
    ).data;
    const now = await state(url);
    expect(now).toEqual(snapshot);
    expect(now.ended.map((s) => s.id)).toEqual([ids[3], ids[2]]);
    expect(now.ended.map((s) => s.peer)).toEqual(['dave', 'carol']);
    expect(now.ended[0]?.endReason).toBe('error: boom');
    expect(now.ended[1]?.transcript.map((l) => l.text)).toEqual(['Hi carol']);
    expect(now.totals).toEqual({ calls: 4, texts: 0, errors: 1 });
  });

  it('an agent transcript and a tool call become transcript lines', async () => {
    const h = await startAgentHarness({ server: { console: { port: 0 } } });
    cleanups.push(() => h.close());
    const stream = await EventStream.open(`${h.server.consoleUrl}api/events`);
    await stream.wait((e) => e.event === 'snapshot', 'the snapshot');
    const call = await callAgent(h, {
      instructions: 'You are a test agent.',
      tools: [
        {
          name: 'look_up_order',
          description: 'Order status',
          parameters: { type: 'object', properties: { order: { type: 'string' } }, required: ['order'] },
          handler: async () => ({ status: 'shipped' }),
        },
      ],
    });
    const id = call.phone.channelId;
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const first = conn.startResponse();
    first.functionCall('look_up_order', { order: '1234' }, 'call_A');
    first.done();
    const tool = await stream.update(isLine(id, 'tool'), 'the tool line');
    expect(tool.type === 'line' && tool.line).toMatchObject({
      who: 'system',
      text: 'look_up_order({"order":"1234"}) → {"status":"shipped"}',
    });
    await conn.waitFor('response.create');
    const second = conn.startResponse();
    second.transcript('It shipped today.');
    second.done();
    const said = await stream.update(isLine(id, 'agent', 'It shipped today.'), 'the agent line');
    expect(said.type === 'line' && said.line.who).toBe('agent');
    await call.phone.hangup();
    await call.result;
    const ended = await stream.update((u) => u.type === 'ended' && u.session.id === id, 'the end');
    expect(ended.type === 'ended' && ended.session.number).toBe(AGENT_NUMBER);
  });
});

describe('web console: controls', () => {
  it('is read-only without a token: 403, and the call goes on', async () => {
    const { sim, server, url } = await startConsole();
    const started = deferred<VoiceUI>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        started.resolve(ui);
        await untilEnded(ui);
      },
    });
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await within(started.promise, 5000, 'the call');
    const refused = await post(`${url}api/sessions/${encodeURIComponent(phone.channelId)}/hangup`, {
      Authorization: 'Bearer anything',
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatch(/read-only/);
    expect((await state(url)).live.map((s) => s.id)).toEqual([phone.channelId]);
    expect(phone.hungUp).toBe(false);
    expect((await state(url)).controls).toBe(false);
    await phone.hangup();
  });

  it('with a token: 401 without it or with a wrong one, 200 with it (the phone sees the end), 404 for an unknown id; the token is never logged', async () => {
    const token = 'console-Secret-7f3a9c';
    const { logger, lines } = textLogger();
    const { sim, server, url } = await startConsole({ console: () => ({ port: 0, token }), logger });
    const textGaveUp = deferred<unknown>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await untilEnded(ui);
      },
      text: async (ui) => {
        try {
          await ui.prompt('Anything else?');
        } catch (error) {
          textGaveUp.resolve(error);
          throw error;
        }
      },
    });
    const stream = await EventStream.open(`${url}api/events`);
    expect((await stream.wait((e) => e.event === 'snapshot', 'the snapshot')).data.controls).toBe(true);
    const phone = await sim.call({ from: 'alice', to: '1000' });
    const id = phone.channelId;
    // Answering shows at once, though the handler does nothing else.
    await stream.update((u) => u.type === 'session' && u.session.id === id && u.session.state === 'up', 'up');
    const hangup = `${url}api/sessions/${encodeURIComponent(id)}/hangup`;

    expect((await post(hangup)).status).toBe(401);
    expect((await post(hangup, { Authorization: 'Bearer wrong-token' })).status).toBe(401);
    expect((await post(hangup, { Authorization: token })).status).toBe(401);
    expect((await post(hangup, { Authorization: `Bearer ${token}x` })).status).toBe(401);
    expect(phone.hungUp).toBe(false);

    const ok = await post(hangup, { Authorization: `Bearer ${token}` });
    expect(ok).toEqual({ status: 200, body: { ended: id } });
    expect((await within(phone.ended(), 5000, 'the phone to see the end')).cause).toBe(16);
    const ended = await stream.update((u) => u.type === 'ended' && u.session.id === id, 'the end');
    expect(ended.type === 'ended' && ended.session.endReason).toBeTruthy();

    expect((await post(hangup, { Authorization: `Bearer ${token}` })).status).toBe(404);

    // A text conversation is ended the same way.
    expect(await sim.sendText({ from: 'bob', to: '1000', body: 'hello' })).toBe(202);
    const text = await stream.update((u) => u.type === 'session' && u.session.kind === 'text', 'the text');
    const textId = text.type === 'session' ? text.session.id : '';
    const endText = `${url}api/sessions/${encodeURIComponent(textId)}/hangup`;
    expect((await post(endText, { Authorization: 'Bearer nope' })).status).toBe(401);
    expect(await post(endText, { Authorization: `Bearer ${token}` })).toEqual({
      status: 200,
      body: { ended: textId },
    });
    await stream.update((u) => u.type === 'ended' && u.session.id === textId, 'the text to end');
    expect(await within(textGaveUp.promise, 5000, 'the text handler to see the end')).toBeInstanceOf(
      HangupError,
    );
    const unknown = await post(`${url}api/sessions/no-such-call/hangup`, {
      Authorization: `Bearer ${token}`,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toContain('no-such-call');
    expect((await fetch(`${url}api/nothing`)).status).toBe(404);

    expect(lines.some((l) => l.includes('web console listening'))).toBe(true);
    expect(lines.some((l) => l.includes('ended from the web console'))).toBe(true);
    expect(lines.join('\n')).not.toContain(token);
    expect(lines.join('\n')).not.toContain('Secret-7f3a9c');
  });
});

/** Opens /api/phone (from a page of `origin`, if given): the HTTP status of the upgrade, 101 if it opened. */
async function upgrade(url: string, origin?: string): Promise<{ ws: WebSocket; status: number }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}api/phone`, origin ? { origin } : {});
  const status = await within(
    new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
      ws.once('open', () => resolve(101));
    }),
    5000,
    'the upgrade',
  );
  return { ws, status };
}

/** A softphone page: JSON messages and binary frames from the console's /api/phone. */
async function openPhone(url: string): Promise<{
  ws: WebSocket;
  messages: Record<string, unknown>[];
  frames: Buffer[];
  next(type: string, what?: string): Promise<Record<string, unknown>>;
  framesUntil(count: number): Promise<void>;
  send(message: object): void;
}> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}api/phone`);
  cleanups.push(async () => {
    if (ws.readyState !== ws.CLOSED) ws.terminate();
  });
  const messages: Record<string, unknown>[] = [];
  const frames: Buffer[] = [];
  const waiters: (() => void)[] = [];
  let taken = 0;
  ws.on('message', (data: RawData, isBinary) => {
    if (isBinary) frames.push(Buffer.from(data as Buffer));
    else messages.push(JSON.parse(String(data)) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    5000,
    'the softphone socket',
  );
  const until = (ok: () => boolean, what: string) =>
    within(
      new Promise<void>((resolve) => {
        const check = () => (ok() ? resolve() : waiters.push(check));
        check();
      }),
      5000,
      what,
    );
  return {
    ws,
    messages,
    frames,
    /** The next JSON message (after those already taken), which must be of `type`. */
    async next(type: string, what = type) {
      await until(() => messages.length > taken, what);
      const m = messages[taken++];
      expect(m?.type, `${what}: ${JSON.stringify(m)}`).toBe(type);
      return m ?? {};
    },
    framesUntil: (count) => until(() => frames.length >= count, `${count} audio frames`),
    send: (message) => ws.send(JSON.stringify(message)),
  };
}

function tone(ms: number, hz = 400): Int16Array {
  return Int16Array.from({ length: ms * 8 }, (_, i) =>
    Math.round(9000 * Math.sin((2 * Math.PI * hz * i) / 8000)),
  );
}

function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}

describe('web console: softphone', () => {
  it('dials, hears the app, presses keys, speaks into prompt, texts, and hangs up by closing', async () => {
    const heardLevels: number[] = [];
    const stt = new ScriptedSttEngine(async (pcm) => {
      heardLevels.push(rms(pcm));
      return rms(pcm) > 2000 ? 'a loud tone' : 'quiet';
    });
    const result = deferred<{ keys: string; heard: string }>();
    const ended = deferred<void>();
    const { sim, server, url } = await startConsole({
      console: (s) => ({ port: 0, softphone: simulatorSoftphone(s) }),
      stt,
      msPerChar: 20,
    });
    await server.registerExtension('1000', {
      voice: async (ui) => {
        ui.on('ended', () => ended.resolve());
        ui.on('text', (body) => void ui.sendText(`Call got "${body}"`).catch(() => {}));
        await ui.answer();
        await ui.say('Hello from the app, this is a longer greeting');
        const keys = await ui.gather('Two keys please', { numDigits: 2 });
        const heard = await ui.prompt('Now say something', { timeout: 5 });
        result.resolve({ keys, heard });
        await ui.sleep(30);
      },
      text: async (ui) => {
        await ui.say(`Got "${ui.firstMessage}"`);
      },
    });
    expect((await state(url)).softphone).toEqual({ identity: 'alice' });
    const phone = await openPhone(url);

    phone.ws.send('{not json');
    expect((await phone.next('error', 'bad JSON')).message).toBe('Not JSON');
    phone.send({ type: 'keys', digits: '1' });
    expect((await phone.next('error', 'keys without a call')).message).toMatch(/dial first/);
    phone.send({ type: 'dial', to: '9999' });
    const refused = await phone.next('error', 'an unknown number');
    expect(refused.message).toContain('9999');
    expect(refused.inCall).toBe(false);

    // A text from the page reaches the text handler; its reply comes back to the page.
    phone.send({ type: 'text', to: '1000', body: 'hi from the browser' });
    const reply = await phone.next('text', 'the reply');
    expect(reply.from).toBe('1000');
    expect(reply).toMatchObject({ body: 'Got "hi from the browser"', inCall: false });
    const declined = nextServerEvent(server, 'textDeclined');
    phone.send({ type: 'text', to: '7777', body: 'anyone?' });
    expect((await within(declined, 5000, 'the declined text'))[0]).toMatchObject({
      to: '7777',
      from: 'alice',
    });

    const callEnded = nextServerEvent(server, 'callEnded');
    phone.send({ type: 'dial', to: '1000' });
    const ringing = await phone.next('ringing');
    expect(ringing.to).toBe('1000');
    const id = String(ringing.id);
    const simPhone = sim.phone(id);
    expect(simPhone).toBeDefined();
    await phone.next('answered');

    // The app's speech arrives as 20 ms µ-law frames, not silence.
    await phone.framesUntil(20);
    expect(phone.frames.every((f) => f.length === 160)).toBe(true);
    expect(rms(decodeMulaw(Buffer.concat(phone.frames)))).toBeGreaterThan(100);

    phone.send({ type: 'keys', digits: '4x' });
    expect((await phone.next('error', 'bad keys')).message).toMatch(/Keys are/);
    phone.send({ type: 'keys', digits: '42' });

    // The microphone: 600 ms of tone then silence, one frame every 20 ms as a browser sends them,
    // until the app has heard it.
    const speech = encodeMulaw(tone(600));
    const silence = Buffer.alloc(160, 0xff);
    let n = 0;
    const mic = setInterval(() => {
      const frame = n * 160 < speech.length ? speech.subarray(n * 160, (n + 1) * 160) : silence;
      n++;
      if (phone.ws.readyState === phone.ws.OPEN) phone.ws.send(frame, { binary: true });
    }, 20);
    let answers: { keys: string; heard: string };
    try {
      answers = await within(result.promise, 10_000, 'the prompt to hear the microphone');
    } finally {
      clearInterval(mic);
    }
    expect(answers).toEqual({ keys: '42', heard: 'a loud tone' });
    expect(heardLevels[0]).toBeGreaterThan(2000);

    // In the call, a text to its number goes to the call (in-call text), and so does the answer.
    phone.send({ type: 'text', to: '1000', body: 'in the call' });
    const inCall = await phone.next('text', 'the in-call reply');
    expect(inCall).toMatchObject({ body: 'Call got "in the call"', inCall: true });

    // Closing the page hangs up its call.
    phone.ws.close();
    await within(ended.promise, 5000, 'the call to end');
    const [, outcome] = await within(callEnded, 5000, 'callEnded');
    expect(outcome.error).toBeInstanceOf(HangupError);
    expect(simPhone?.hungUp).toBe(true);
    const after = await state(url);
    expect(after.live).toEqual([]);
    expect(after.ended[0]).toMatchObject({ id, endReason: 'caller hung up' });
    const lines = after.ended[0]?.transcript.map((l) => [l.who, l.kind, l.text]) ?? [];
    for (const line of [
      ['app', 'said', 'Hello from the app, this is a longer greeting'],
      ['caller', 'dtmf', '42'],
      ['caller', 'keys', '42'],
      ['caller', 'heard', 'a loud tone'],
      ['caller', 'text', 'in the call'],
      ['app', 'text', 'Call got "in the call"'],
    ]) {
      expect(lines).toContainEqual(line);
    }
  });

  it('hangs up from the page with {type:"hangup"} and reports ended with the cause', async () => {
    const { sim, server, url } = await startConsole({
      console: (s) => ({ port: 0, softphone: simulatorSoftphone(s) }),
    });
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await untilEnded(ui);
      },
    });
    const phone = await openPhone(url);
    phone.send({ type: 'dial', to: '1000' });
    const simPhone = sim.phone(String((await phone.next('ringing')).id));
    await phone.next('answered');
    phone.send({ type: 'dial', to: '1000' });
    expect((await phone.next('error', 'a second dial')).message).toMatch(/Already in a call/);
    phone.send({ type: 'hangup' });
    expect((await phone.next('ended')).cause).toBe(16);
    expect(simPhone?.hungUp).toBe(true);
  });

  it("refuses the softphone's WebSocket to a page of another origin (a browser lets any page try)", async () => {
    const { url } = await startConsole({
      console: (sim) => ({ port: 0, softphone: simulatorSoftphone(sim) }),
    });
    const { ws, status } = await upgrade(url, 'http://evil.example');
    expect(status).toBe(403);
    ws.terminate();
    // The console's own page (same origin) is let in.
    const own = await upgrade(url, url.replace(/\/$/, ''));
    expect(own.status).toBe(101);
    own.ws.terminate();
  });

  it('refuses the WebSocket upgrade when no softphone is configured', async () => {
    const { url } = await startConsole();
    const { ws, status } = await upgrade(url);
    expect(status).toBe(404);
    ws.terminate();
  });
});

describe('web console from the environment', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of ['ASTERAMISK_CONSOLE_PORT', 'ASTERAMISK_CONSOLE_HOST', 'ASTERAMISK_CONSOLE_TOKEN']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it('ASTERAMISK_CONSOLE_PORT=0 starts the console; an invalid port is a ConfigError', async () => {
    const sim = await Simulator.start({ timeScale: 0.02 });
    cleanups.push(() => sim.close());
    const base = {
      ...sim.connectionOptions(),
      logger: textLogger().logger,
      tts: new RecordingTts(1),
      stt: false as const,
      ttsCacheDirectory: false as const,
    };
    process.env.ASTERAMISK_CONSOLE_PORT = '0';
    process.env.ASTERAMISK_CONSOLE_TOKEN = 'env-token-123';
    const server = await Server.create({ ...base, appName: 'console-env' });
    cleanups.push(() => server.close());
    const url = server.consoleUrl ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect((await state(url)).controls).toBe(true);
    expect(
      (await post(`${url}api/sessions/x/hangup`, { Authorization: 'Bearer env-token-123' })).status,
    ).toBe(404);
    await server.close();
    expect((await fetch(url).catch((e: unknown) => e)) instanceof Error).toBe(true);

    const sockets = () => resourceCounts().TCPSocketWrap ?? 0;
    const before = sockets();
    for (const bad of ['abc', '-1', '70000', '1.5']) {
      process.env.ASTERAMISK_CONSOLE_PORT = bad;
      const error = await Server.create({ ...base, appName: 'console-env-bad' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).field).toBe('ASTERAMISK_CONSOLE_PORT');
      expect((error as ConfigError).message).toContain(`ASTERAMISK_CONSOLE_PORT must be a TCP port`);
    }
    // The refused Servers left no connection to the PBX open.
    expect(sockets()).toBeLessThanOrEqual(before);
  });
});
