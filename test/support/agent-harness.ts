import OpenAI from 'openai';
import { expect } from 'vitest';
import type { AgentEvent, AgentResult } from '../../src/agent/agent-options.js';
import { decodeMulaw, encodeMulaw } from '../../src/media/g711.js';
import type { SimPhone } from '../../src/sandbox/sim-phone.js';
import type { TextAgentOptions, TextUI } from '../../src/ui/text-ui.js';
import type { VoiceAgentOptions, VoiceUI } from '../../src/ui/voice-ui.js';
import {
  type ClientEventOf,
  FAKE_REALTIME_API_KEY,
  type FakeRealtime,
  type FakeRealtimeConnection,
  startFakeRealtime,
} from './fake-realtime.js';
import { deferred, startVoiceHarness, type VoiceHarness } from './voice-harness.js';

export const AGENT_NUMBER = '3000';

/** A simulator, a Server and a fake OpenAI Realtime server over TLS, wired together. */
export interface AgentHarness extends VoiceHarness {
  fake: FakeRealtime;
  /** Connection options pointing an agent at the fake. */
  connection: NonNullable<VoiceAgentOptions['connection']>;
  close(): Promise<void>;
}

export async function startAgentHarness(
  options: Parameters<typeof startVoiceHarness>[0] = {},
): Promise<AgentHarness> {
  const fake = await startFakeRealtime();
  const voice = await startVoiceHarness(options);
  const client = new OpenAI({ apiKey: FAKE_REALTIME_API_KEY, baseURL: fake.baseURL });
  return {
    ...voice,
    fake,
    connection: { client, websocket: fake.wsOptions },
    async close() {
      await voice.close();
      await fake.close();
    },
  };
}

/** What one agent call produced: the UI, its events and the session's result. */
export interface AgentCall {
  phone: SimPhone;
  ui: Promise<VoiceUI>;
  events: AgentEvent[];
  /** Resolves with the first agent event of `type`, already emitted or still to come. */
  event<T extends AgentEvent['type']>(type: T): Promise<Extract<AgentEvent, { type: T }>>;
  result: Promise<AgentResult>;
}

/** An event log whose entries can be awaited. */
function awaitableEvents(): { events: AgentEvent[]; push(e: AgentEvent): void; event: AgentCall['event'] } {
  const events: AgentEvent[] = [];
  const waiters: { type: string; resolve: (e: AgentEvent) => void }[] = [];
  return {
    events,
    push(e) {
      events.push(e);
      for (const w of waiters.filter((w) => w.type === e.type)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    },
    event<T extends AgentEvent['type']>(type: T) {
      const seen = events.find((e) => e.type === type);
      return new Promise<Extract<AgentEvent, { type: T }>>((resolve) => {
        if (seen) resolve(seen as Extract<AgentEvent, { type: T }>);
        else waiters.push({ type, resolve: resolve as (e: AgentEvent) => void });
      });
    },
  };
}

/**
 * Registers {@link AGENT_NUMBER} with a handler that runs the agent with `options` (plus the
 * fake's connection), then `after` (the handler's own follow-up), and calls it from alice.
 */
export async function callAgent(
  h: AgentHarness,
  options: Omit<VoiceAgentOptions, 'connection'> & { connection?: VoiceAgentOptions['connection'] },
  after?: (ui: VoiceUI, result: AgentResult) => Promise<void>,
): Promise<AgentCall> {
  const ui = deferred<VoiceUI>();
  const result = deferred<AgentResult>();
  const log = awaitableEvents();
  await h.server.registerExtension(AGENT_NUMBER, {
    voice: async (call) => {
      ui.resolve(call);
      call.on('agent', (event) => log.push(event));
      try {
        const outcome = await call.connectOpenAIAgent({ connection: h.connection, ...options });
        result.resolve(outcome);
        await after?.(call, outcome);
      } catch (error) {
        result.reject(error);
        throw error;
      }
    },
  });
  const phone = await h.sim.call({ from: 'alice', to: AGENT_NUMBER });
  return { phone, ui: ui.promise, events: log.events, event: log.event, result: result.promise };
}

/** What one agent text conversation produced: the UI, its events, the session's result, the texts. */
export interface AgentChat {
  ui: Promise<TextUI>;
  events: AgentEvent[];
  result: Promise<AgentResult>;
  /** The texts the conversation received after the opening one (`ui.on('message')`), in order. */
  received: string[];
  /** Resolves once the conversation has received `count` texts after the opening one. */
  receivedCount(count: number): Promise<void>;
  /** Sends a text from alice to {@link AGENT_NUMBER}. */
  send(body: string): Promise<void>;
  /** The body of the next text sent to alice. */
  nextReply(): Promise<string>;
}

/**
 * Registers {@link AGENT_NUMBER} with a text handler that runs the agent with `options` (plus the
 * fake's connection), then `after`, and opens the conversation from alice with `opening`.
 */
export async function chatAgent(
  h: AgentHarness,
  opening: string,
  options: Omit<TextAgentOptions, 'connection'> & { connection?: TextAgentOptions['connection'] },
  after?: (ui: TextUI, result: AgentResult) => Promise<void>,
): Promise<AgentChat> {
  const ui = deferred<TextUI>();
  const result = deferred<AgentResult>();
  const events: AgentEvent[] = [];
  const received: string[] = [];
  const countWaiters: { count: number; resolve: () => void }[] = [];
  await h.server.registerExtension(AGENT_NUMBER, {
    text: async (conversation) => {
      ui.resolve(conversation);
      conversation.on('agent', (event) => events.push(event));
      conversation.on('message', (body) => {
        received.push(body);
        for (const w of countWaiters.filter((w) => received.length >= w.count)) {
          countWaiters.splice(countWaiters.indexOf(w), 1);
          w.resolve();
        }
      });
      try {
        const outcome = await conversation.connectOpenAIAgent({ connection: h.connection, ...options });
        result.resolve(outcome);
        await after?.(conversation, outcome);
      } catch (error) {
        result.reject(error);
        throw error;
      }
    },
  });
  const send = async (body: string): Promise<void> => {
    const status = await h.sim.sendText({ from: 'alice', to: AGENT_NUMBER, body });
    if (status !== 202) throw new Error(`the simulator refused the text ${JSON.stringify(body)} (${status})`);
  };
  await send(opening);
  return {
    ui: ui.promise,
    events,
    result: result.promise,
    received,
    receivedCount: (count) =>
      received.length >= count
        ? Promise.resolve()
        : new Promise((resolve) => countWaiters.push({ count, resolve })),
    send,
    nextReply: async () => (await h.sim.nextSentText((t) => t.endpoint === 'alice')).body,
  };
}

/** `ms` of a sine tone as µ-law (loud enough to count as speech), never 0x7F/0xFF (both decode to 0). */
export function toneUlaw(ms: number, hz = 440, amplitude = 8000): Buffer {
  const samples = (ms * 8000) / 1000;
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++)
    pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / 8000)) || 1;
  return encodeMulaw(pcm);
}

/** `ms` of a tone as 8 kHz PCM, for the phone to speak. */
export function tonePcm(ms: number, hz = 300, amplitude = 8000): Int16Array {
  const samples = (ms * 8000) / 1000;
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++) pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / 8000));
  return pcm;
}

/** The text of a user message the agent added to the model's conversation; undefined for another item. */
export function userText(event: ClientEventOf<'conversation.item.create'>): string | undefined {
  const item = event.item as { type: string; role?: string; content?: { type: string; text?: string }[] };
  if (item.type !== 'message' || item.role !== 'user') return undefined;
  return item.content?.map((part) => part.text ?? '').join('');
}

/** Resolves with the output the agent sent the model for its function call `callId`, parsed. */
export async function toolOutput(conn: FakeRealtimeConnection, callId: string): Promise<unknown> {
  const event = await conn.waitFor(
    'conversation.item.create',
    (e) => (e.item as { call_id?: string }).call_id === callId,
  );
  return JSON.parse((event.item as { output: string }).output);
}

/**
 * Answers the agent's greeting request with 400 ms of tone and checks that the phone heard it
 * sample for sample; `instructions`, when given, must be part of the request's instructions.
 */
export async function playGreeting(
  conn: FakeRealtimeConnection,
  phone: SimPhone,
  instructions?: string,
): Promise<void> {
  const request = await conn.waitFor('response.create');
  if (instructions !== undefined)
    expect(JSON.stringify(request.response?.instructions)).toContain(instructions);
  const tone = toneUlaw(400);
  const response = conn.startResponse({ request });
  await response.audio(tone);
  if (instructions !== undefined) response.transcript(instructions);
  response.done();
  await phone.waitForAudio(400);
  expect(phone.heard().audio.subarray(0, tone.length)).toEqual(decodeMulaw(tone));
}
