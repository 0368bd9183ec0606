import OpenAI from 'openai';
import type { AgentEvent, AgentResult } from '../../src/agent/agent-options.js';
import { encodeMulaw } from '../../src/media/g711.js';
import type { SimPhone } from '../../src/sandbox/sim-phone.js';
import type { TextUI } from '../../src/ui/text-ui.js';
import type { VoiceAgentOptions, VoiceUI } from '../../src/ui/voice-ui.js';
import { FAKE_REALTIME_API_KEY, type FakeRealtime, startFakeRealtime } from './fake-realtime.js';
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
  result: Promise<AgentResult>;
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
  const events: AgentEvent[] = [];
  await h.server.registerExtension(AGENT_NUMBER, {
    voice: async (call) => {
      ui.resolve(call);
      call.on('agent', (event) => events.push(event));
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
  return { phone, ui: ui.promise, events, result: result.promise };
}

/** A text conversation handler running the agent. */
export function textAgentHandler(
  h: AgentHarness,
  options: Parameters<TextUI['connectOpenAIAgent']>[0],
  results: AgentResult[],
): (ui: TextUI) => Promise<void> {
  return async (ui) => {
    results.push(await ui.connectOpenAIAgent({ connection: h.connection, ...options }));
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
