import { afterEach, describe, expect, it, vi } from 'vitest';
import { AGENT_NUMBER, OPERATORS, textAgent, voiceAgent } from '../examples/openai-agent.js';
import type { SimPhone } from '../src/sandbox/sim-phone.js';
import {
  type AgentHarness,
  playGreeting,
  startAgentHarness,
  tonePcm,
  toneUlaw,
  toolOutput,
  userText,
} from './support/agent-harness.js';
import type { FakeRealtimeConnection } from './support/fake-realtime.js';

let h: AgentHarness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

const GREETING = 'Thanks for calling Example Shop, how can I help?';
const ORDER_1234 = 'shipped on Monday, arriving Thursday';

/** What the example prints (transcripts and tool calls), kept instead of printed. */
function captureConsole(): string[] {
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  return printed;
}

/** Adds `exten` to the operators' context: it answers and records that the call landed there. */
function addOperator(harness: AgentHarness, exten: string): void {
  harness.sim.addExtension(OPERATORS, exten, 1, 'Answer');
  harness.sim.addExtension(OPERATORS, exten, 2, 'Set', `LANDED=${exten}`);
}

/** Calls the example's voice agent; resolves with the phone and the model connection. */
async function callExample(
  harness: AgentHarness,
): Promise<{ phone: SimPhone; conn: FakeRealtimeConnection }> {
  await harness.server.registerExtension(AGENT_NUMBER, {
    voice: (ui) => voiceAgent(ui, { connection: harness.connection }),
  });
  const phone = await harness.sim.call({ from: 'alice', to: AGENT_NUMBER });
  return { phone, conn: await harness.fake.nextConnection() };
}

describe('examples/openai-agent.ts by voice, against the simulator and the fake model', () => {
  it('greets, looks up an order with its tool, and transfers to sales in the dialplan', async () => {
    h = await startAgentHarness();
    const printed = captureConsole();
    addOperator(h, 'sales');
    const { phone, conn } = await callExample(h);
    const session = (await conn.waitFor('session.update')).session as {
      tools: { name: string; parameters: unknown }[];
    };
    expect(session.tools.map((t) => t.name)).toEqual(['look_up_order', 'end_call', 'transfer_call']);
    expect(session.tools[2]?.parameters).toMatchObject({
      properties: { destination: { enum: ['sales', 'support'] } },
    });
    await playGreeting(conn, phone, GREETING);

    // The caller asks; the model's VAD takes the turn and the model calls the tool.
    await phone.speak(tonePcm(300));
    conn.speechStarted();
    conn.speechStopped();
    conn.userTranscript('Where is my order 1234? And can I talk to sales?');
    const lookUp = conn.startResponse();
    lookUp.functionCall('look_up_order', { order_number: '1234' }, 'call_O');
    lookUp.done();
    expect(await toolOutput(conn, 'call_O')).toEqual({ order: '1234', status: ORDER_1234 });
    const answer = conn.startResponse({
      request: await conn.waitFor('response.create', undefined, { nth: 2 }),
    });
    const answerTone = toneUlaw(300, 600);
    await answer.audio(answerTone);
    answer.transcript(`It was ${ORDER_1234}. Transferring you to sales.`);
    answer.functionCall('transfer_call', { destination: 'sales' }, 'call_T');
    answer.done();

    // The answer is heard in full, then the call continues in the operators' context.
    expect((await phone.ended()).cause).toBe(16);
    expect(phone.heardMs).toBe(700);
    expect(phone.channel.variables.get('LANDED')).toBe('sales');
    expect(phone.channel.dialplan).toMatchObject({ context: OPERATORS, exten: 'sales' });
    expect(printed).toEqual([
      `assistant: ${GREETING}`,
      'user: Where is my order 1234? And can I talk to sales?',
      `tool look_up_order({"order_number":"1234"}) → {"order":"1234","status":"${ORDER_1234}"}`,
      `assistant: It was ${ORDER_1234}. Transferring you to sales.`,
      'tool transfer_call({"destination":"sales"}) → {"ok":true,"transferring_to":"sales"}',
    ]);
    expect(conn.errors).toEqual([]);
  });

  it('end_call: says the goodbye, then hangs up', async () => {
    h = await startAgentHarness();
    captureConsole();
    const { phone, conn } = await callExample(h);
    await playGreeting(conn, phone, GREETING);
    const done = conn.startResponse();
    done.functionCall('end_call', {}, 'call_E');
    done.done();
    const request = await conn.waitFor('response.create', undefined, { nth: 2 });
    expect(JSON.stringify(request.response?.instructions)).toContain('Goodbye, and thanks for calling!');
    const goodbye = conn.startResponse({ request });
    await goodbye.audio(toneUlaw(300, 600));
    goodbye.transcript('Goodbye, and thanks for calling!');
    goodbye.done();
    expect((await phone.ended()).cause).toBe(16);
    expect(phone.heardMs).toBe(700);
    expect(phone.channel.variables.get('LANDED')).toBeUndefined();
  });

  it('the model failing mid-call: the caller hears an apology and goes to the operator', async () => {
    h = await startAgentHarness({ sim: { sounds: { 'an-error-has-occurred': 1200 } } });
    captureConsole();
    addOperator(h, 'operator');
    const { phone, conn } = await callExample(h);
    await playGreeting(conn, phone, GREETING);
    conn.drop();
    expect(await phone.waitForMedia('sound:an-error-has-occurred')).toBe('sound:an-error-has-occurred');
    expect((await phone.ended()).cause).toBe(16);
    expect(phone.channel.variables.get('LANDED')).toBe('operator');
    expect(phone.heard().media).toEqual(['sound:an-error-has-occurred']);
  });
});

describe('examples/openai-agent.ts by text', () => {
  it('answers the opening question over SIP MESSAGE with what its tool found', async () => {
    h = await startAgentHarness();
    const harness = h;
    await h.server.registerExtension(AGENT_NUMBER, {
      text: (ui) => textAgent(ui, { connection: harness.connection }),
    });
    expect(
      await h.sim.sendText({ from: 'alice', to: AGENT_NUMBER, body: 'hi, where is my order 1234?' }),
    ).toBe(202);
    const conn = await h.fake.nextConnection();
    const session = (await conn.waitFor('session.update')).session as {
      instructions: string;
      output_modalities: string[];
      tools: { name: string }[];
    };
    expect(session.output_modalities).toEqual(['text']);
    expect(session.instructions).toMatch(/This is a text chat/);
    expect(session.tools.map((t) => t.name)).toEqual(['look_up_order', 'end_call']);

    const question = conn.startResponse({ request: await conn.waitFor('response.create') });
    expect(conn.received.filter((e) => e.type === 'conversation.item.create').map(userText)).toEqual([
      'hi, where is my order 1234?',
    ]);
    question.functionCall('look_up_order', { order_number: '1234' }, 'call_O');
    question.done();
    const found = (await toolOutput(conn, 'call_O')) as { order: string; status: string };
    const answer = conn.startResponse({
      request: await conn.waitFor('response.create', undefined, { nth: 2 }),
    });
    answer.text(`Order ${found.order} was ${found.status}.`);
    answer.done();
    const reply = await h.sim.nextSentText((t) => t.endpoint === 'alice');
    expect(reply.body).toBe(`Order 1234 was ${ORDER_1234}.`);
    expect(h.sim.sentTexts()).toHaveLength(1);
  });
});
