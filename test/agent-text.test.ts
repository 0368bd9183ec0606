import { afterEach, describe, expect, it } from 'vitest';
import type { AgentResult } from '../src/agent/agent-options.js';
import type { TextUI } from '../src/ui/text-ui.js';
import {
  type AgentHarness,
  chatAgent,
  startAgentHarness,
  toolOutput,
  userText,
} from './support/agent-harness.js';
import { type FakeRealtimeConnection, textEchoResponder } from './support/fake-realtime.js';
import { deferred } from './support/voice-harness.js';

let h: AgentHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const INSTRUCTIONS = 'You are a test agent answering by text.';

/** What the agent sent the model, as `user: <text>` and `response.create` lines. */
function turnsSent(conn: FakeRealtimeConnection, from = 0): string[] {
  const lines: string[] = [];
  for (const event of conn.received.slice(from)) {
    if (event.type === 'response.create') lines.push('response.create');
    if (event.type === 'conversation.item.create') {
      const text = userText(event);
      lines.push(text === undefined ? `item ${event.item.type}` : `user: ${text}`);
    }
  }
  return lines;
}

function lines(result: AgentResult): string[] {
  return result.transcript.map((line) => `${line.role}: ${line.text}`);
}

describe('TextUI.connectOpenAIAgent over SIP MESSAGE', () => {
  it('configures a text-only session: no audio formats, end_call but no transfer_call', async () => {
    h = await startAgentHarness();
    const chat = await chatAgent(h, 'hello', {
      instructions: INSTRUCTIONS,
      voice: 'marin',
      tools: [{ name: 'look_up_order', description: 'Order status', handler: () => ({ status: 'shipped' }) }],
    });
    const conn = await h.fake.nextConnection();
    const update = await conn.waitFor('session.update');
    const session = update.session as {
      type: string;
      instructions: string;
      output_modalities: string[];
      audio: unknown;
      tools: { name: string }[];
    };
    expect(session.type).toBe('realtime');
    expect(session.instructions).toBe(INSTRUCTIONS);
    expect(session.output_modalities).toEqual(['text']);
    // No audio format, no voice, no turn detection: texts are the turns.
    expect(session.audio).toEqual({ input: { turn_detection: null } });
    expect(JSON.stringify(update)).not.toMatch(/pcmu|marin/);
    expect(session.tools.map((t) => t.name)).toEqual(['look_up_order', 'end_call']);
    expect(conn.session.output_modalities).toEqual(['text']);
    const ui = await chat.ui;
    await ui.hangup();
    expect((await chat.result).reason).toBe('caller-hangup');
    expect(conn.errors).toEqual([]);
  });

  it('answers the opening text and each later one with exactly one SIP MESSAGE, in order', async () => {
    h = await startAgentHarness();
    h.fake.onResponse = textEchoResponder; // "You said: <the last user text>", word by word
    const chat = await chatAgent(h, 'hi, where is my order 1234?', { instructions: INSTRUCTIONS });
    expect(await chat.nextReply()).toBe('You said: hi, where is my order 1234?');
    await chat.send('thanks');
    expect(await chat.nextReply()).toBe('You said: thanks');
    await chat.send('one more thing');
    expect(await chat.nextReply()).toBe('You said: one more thing');
    const ui = await chat.ui;
    await ui.hangup();
    const result = await chat.result;
    expect(result.reason).toBe('caller-hangup');
    const conn = h.fake.connections[0]!;
    expect(turnsSent(conn)).toEqual([
      'user: hi, where is my order 1234?',
      'response.create',
      'user: thanks',
      'response.create',
      'user: one more thing',
      'response.create',
    ]);
    // One text per answer, however many deltas it streamed in.
    expect(h.sim.sentTexts().map((t) => t.body)).toEqual([
      'You said: hi, where is my order 1234?',
      'You said: thanks',
      'You said: one more thing',
    ]);
    expect(lines(result)).toEqual([
      'user: hi, where is my order 1234?',
      'assistant: You said: hi, where is my order 1234?',
      'user: thanks',
      'assistant: You said: thanks',
      'user: one more thing',
      'assistant: You said: one more thing',
    ]);
    expect(result.usage.responses).toBe(3);
    expect(conn.errors).toEqual([]);
    expect(h.fake.responderErrors).toEqual([]);
  });

  it('texts that arrive during an answer wait, then go to the model in order with one response.create', async () => {
    h = await startAgentHarness();
    const chat = await chatAgent(h, 'first', { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    const first = conn.startResponse({ request: await conn.waitFor('response.create') });
    first.text('Answer one.');
    await chat.send('second');
    await chat.send('third');
    await chat.receivedCount(2);
    // Proving an absence: nothing goes to the model while its answer is in progress.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(turnsSent(conn)).toEqual(['user: first', 'response.create']);
    const before = conn.received.length;
    first.done();
    const second = conn.startResponse({
      request: await conn.waitFor('response.create', undefined, { nth: 2 }),
    });
    expect(turnsSent(conn, before)).toEqual(['user: second', 'user: third', 'response.create']);
    second.text('Answer two.');
    second.done();
    expect(await chat.nextReply()).toBe('Answer one.');
    expect(await chat.nextReply()).toBe('Answer two.');
    const ui = await chat.ui;
    await ui.hangup();
    const result = await chat.result;
    expect(lines(result)).toEqual([
      'user: first',
      'assistant: Answer one.',
      'user: second',
      'user: third',
      'assistant: Answer two.',
    ]);
    // A second response.create while one was active would have been refused.
    expect(conn.errors).toEqual([]);
  });

  it('runs a tool, sends the answer, and end_call sends the goodbye and ends the conversation', async () => {
    h = await startAgentHarness();
    const seen = deferred<{ args: Record<string, unknown>; remote: string; ui: TextUI }>();
    const chat = await chatAgent(h, 'where is order 1234?', {
      instructions: INSTRUCTIONS,
      tools: [
        {
          name: 'look_up_order',
          description: 'Order status',
          parameters: { type: 'object', properties: { order: { type: 'string' } }, required: ['order'] },
          handler: async (args, ctx) => {
            seen.resolve({ args, remote: ctx.remoteNumber, ui: ctx.ui });
            return { status: 'shipped' };
          },
        },
      ],
      endCall: { goodbye: 'Bye, thanks for writing!' },
    });
    const conn = await h.fake.nextConnection();
    const lookUp = conn.startResponse({ request: await conn.waitFor('response.create') });
    lookUp.functionCall('look_up_order', { order: '1234' }, 'call_L');
    lookUp.done();
    expect(await toolOutput(conn, 'call_L')).toEqual({ status: 'shipped' });
    const answer = conn.startResponse({
      request: await conn.waitFor('response.create', undefined, { nth: 2 }),
    });
    answer.text('Order 1234 has shipped.');
    answer.done();
    expect(await chat.nextReply()).toBe('Order 1234 has shipped.');
    const ui = await chat.ui;
    expect(await seen.promise).toEqual({ args: { order: '1234' }, remote: 'alice', ui });

    await chat.send('great, bye');
    const last = conn.startResponse({
      request: await conn.waitFor('response.create', undefined, { nth: 3 }),
    });
    last.functionCall('end_call', {}, 'call_E');
    last.done();
    expect(await chat.nextReply()).toBe('Bye, thanks for writing!');
    const result = await chat.result;
    expect(result.reason).toBe('end-call');
    expect(await ui.ended).toBe('hangup');
    expect(ui.active).toBe(false);
    expect(await toolOutput(conn, 'call_E')).toEqual({ ok: true });
    await conn.closed;
    // The model was not asked to go on after end_call.
    expect(turnsSent(conn)).toEqual([
      'user: where is order 1234?',
      'response.create',
      'item function_call_output',
      'response.create',
      'user: great, bye',
      'response.create',
      'item function_call_output',
    ]);
    expect(result.toolCalls.map((c) => [c.name, c.result])).toEqual([
      ['look_up_order', { status: 'shipped' }],
      ['end_call', { ok: true }],
    ]);
    expect(h.sim.sentTexts().map((t) => t.body)).toEqual([
      'Order 1234 has shipped.',
      'Bye, thanks for writing!',
    ]);
  });

  it('the model dropping the connection: model-error, a fallback text, and the unseen texts go back in order', async () => {
    h = await startAgentHarness();
    const prompted = deferred<string[]>();
    const chat = await chatAgent(h, 'one', { instructions: INSTRUCTIONS }, async (ui, result) => {
      if (result.reason === 'model-error') await ui.say('Sorry, our assistant is unavailable.');
      prompted.resolve([await ui.prompt(''), await ui.prompt(''), await ui.prompt('')]);
    });
    const conn = await h.fake.nextConnection();
    const response = conn.startResponse({ request: await conn.waitFor('response.create') });
    response.text('Let me see');
    await chat.send('two');
    await chat.send('three');
    await chat.receivedCount(2);
    conn.drop();
    const result = await chat.result;
    expect(result.reason).toBe('model-error');
    expect(result.error?.name).toBe('RealtimeConnectionError');
    expect(result.error?.message).toMatch(/closed/);
    expect(await chat.nextReply()).toBe('Sorry, our assistant is unavailable.');
    await chat.send('four');
    // The model saw 'one' only; 'two' and 'three' come back first, ahead of the newer 'four'.
    expect(await prompted.promise).toEqual(['two', 'three', 'four']);
    expect(turnsSent(conn)).toEqual(['user: one', 'response.create']);
    expect(chat.events.filter((e) => e.type === 'error').map((e) => e.fatal)).toEqual([true]);
  });

  it('the opening text goes to the first agent that reaches the model, and only to it', async () => {
    h = await startAgentHarness();
    const harness = h;
    const results = deferred<AgentResult[]>();
    h.fake.refuseNext(500);
    const chat = await chatAgent(
      h,
      'hi, where is my order 1234?',
      { instructions: INSTRUCTIONS },
      async (ui, first) => {
        const again = () =>
          ui.connectOpenAIAgent({ instructions: INSTRUCTIONS, connection: harness.connection });
        const second = await again();
        const third = await again();
        results.resolve([first, second, third]);
      },
    );
    // The first agent never reached the model: the second one is given the opening text.
    const second = await h.fake.nextConnection();
    await second.waitFor('response.create');
    expect(turnsSent(second)).toEqual(['user: hi, where is my order 1234?', 'response.create']);
    second.drop();
    // The third is not given it again; it gets the next text.
    const third = await h.fake.nextConnection();
    await third.waitFor('session.update');
    await chat.send('are you there?');
    await third.waitFor('response.create');
    expect(turnsSent(third)).toEqual(['user: are you there?', 'response.create']);
    const ui = await chat.ui;
    await ui.hangup();
    expect((await results.promise).map((r) => r.reason)).toEqual([
      'model-error',
      'model-error',
      'caller-hangup',
    ]);
    expect(h.fake.attempts.map((a) => a.status)).toEqual([500, 101, 101]);
  });

  it('the peer going idle ends the session (caller-hangup) and closes the model socket', async () => {
    h = await startAgentHarness({ server: { textIdleTimeout: 1 } });
    const chat = await chatAgent(h, 'hello', { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await conn.waitFor('session.update');
    const result = await chat.result;
    expect(result.reason).toBe('caller-hangup');
    const ui = await chat.ui;
    expect(await ui.ended).toBe('idle');
    await conn.closed;
    await h.fake.idle();
    expect(h.fake.openSockets).toBe(0);
  });
});
