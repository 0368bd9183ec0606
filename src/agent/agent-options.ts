import type { ClientOptions as WebSocketOptions } from 'ws';
import type { RealtimeTransportFactory } from './realtime-transport.js';

/** A JSON Schema object describing a tool's arguments (`{ type: 'object', properties: … }`). */
export type JsonSchema = { readonly [key: string]: unknown };

/**
 * A zod schema (v4), recognised by its `safeParse`: its JSON Schema is sent to the model and the
 * model's arguments are validated with it before the handler runs.
 */
export interface ZodLikeSchema {
  safeParse(
    value: unknown,
  ): { success: true; data: unknown } | { success: false; error: { message: string } };
}

/** What a tool handler receives besides its arguments. */
export interface AgentToolContext<UI> {
  /** The call (VoiceUI) or conversation (TextUI) the agent is talking on. */
  readonly ui: UI;
  /** Our number and the caller's. */
  readonly localNumber: string;
  readonly remoteNumber: string;
  /** The model's id of this call of the tool. */
  readonly callId: string;
  /** Aborted when the tool times out, the caller hangs up or the session ends: pass it on. */
  readonly signal: AbortSignal;
}

/**
 * A function the model may call. Its result (any JSON value, or a string) goes back to the model,
 * which then answers the caller. A handler that throws or runs past its time limit answers the
 * model with an error result instead; the call goes on.
 *
 * ```ts
 * const weather: AgentTool<VoiceUI> = {
 *   name: 'get_weather',
 *   description: 'The weather in a city',
 *   parameters: z.object({ city: z.string() }),   // or a JSON Schema object
 *   handler: async ({ city }, ctx) => fetchWeather(String(city), { signal: ctx.signal }),
 * };
 * ```
 */
export interface AgentTool<UI = unknown> {
  /** `^[a-zA-Z0-9_-]{1,64}$`, unique, and not one of the built-ins (`end_call`, `transfer_call`). */
  name: string;
  description: string;
  /** JSON Schema of the arguments, or a zod schema. Default: no arguments. */
  parameters?: JsonSchema | ZodLikeSchema;
  /** Runs the tool. A method, so handlers may declare narrower argument types. */
  handler(args: Record<string, unknown>, context: AgentToolContext<UI>): unknown;
  /** Time limit of one run in ms. Default: the session's `toolTimeoutMs` (10 s). */
  timeoutMs?: number;
}

/**
 * When the caller's audio starts reaching the model:
 * - `'immediate'`: from the start (audio that arrives while the model connects is kept and sent);
 * - `{ delayMs }`: caller audio is dropped for `delayMs` after the session starts (the greeting
 *   cannot be interrupted in that window), then streams;
 * - `'talk-detect'`: Asterisk's TALK_DETECT decides: nothing is sent until the caller starts
 *   talking; the audio from a little before that point is buffered (up to 4 s) and flushed when
 *   the model is ready. Talking also stops the agent's speech at once.
 */
export type AgentActivation = 'immediate' | { delayMs: number } | 'talk-detect';

/**
 * What DTMF does during the session: `'forward'` tells the model which keys were pressed (a group
 * of keys ends after 1 s without a key, or with `#`); `'ignore'` leaves them to `ui.on('dtmf')`
 * listeners; a function sees each key and may end the session by returning `'end'`.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a callback with a bare `return` or none infers `void`, and must be accepted.
export type AgentDtmfMode = 'forward' | 'ignore' | ((digit: string) => 'end' | undefined | void);

/** The built-in end-call tool: on by default. */
export interface AgentEndCallOptions {
  /** Said (by the model's voice) after the model ends the call and before the call ends. */
  goodbye?: string;
  /** Hang up when the model ends the call. Default true; false leaves the call to the handler. */
  hangup?: boolean;
}

/** Options of `connectOpenAIAgent`, on a call (`UI` = VoiceUI) or a text conversation (TextUI). */
export interface AgentOptions<UI, Target = never> {
  /** The system instructions: who the agent is and what it may do. */
  instructions: string;
  /** Voice of the model. Default: the config's SYSTEM_VOICE. Ignored on text. */
  voice?: string;
  /** Realtime model. Default: config `openaiRealtimeModel` (OPENAI_REALTIME_MODEL), `gpt-realtime`. */
  model?: string;
  tools?: readonly AgentTool<UI>[];
  /** The agent speaks first: `true` for a short generic greeting, a string for what it should say. */
  greeting?: string | boolean;
  /**
   * Named destinations of the built-in `transfer_call` tool (voice only). The model can only pick
   * one of these names: nothing else is dialable, whatever the caller says. Empty or absent: no
   * transfer tool.
   */
  transferTargets?: Readonly<Record<string, Target>>;
  /** The built-in `end_call` tool. Default true. */
  endCall?: boolean | AgentEndCallOptions;
  /** Default `'immediate'`. Voice only. */
  activation?: AgentActivation;
  /** Default `'forward'`. Voice only. */
  dtmf?: AgentDtmfMode;
  /** The model's turn detection. Default `'server_vad'`. Voice only. */
  turnDetection?: 'server_vad' | 'semantic_vad';
  /**
   * Caller speech (ms, measured on the caller's audio) needed before the agent stops talking for
   * it. Damps false barge-ins from echo, clicks and line noise. Default 120; 0 stops at the
   * model's first `speech_started`.
   */
  minBargeInMs?: number;
  /** Transcription model of the caller's speech (for transcripts), or false. Default `gpt-4o-mini-transcribe`. */
  inputTranscription?: string | false;
  /** Time limit of a tool run in ms. Default 10 000. */
  toolTimeoutMs?: number;
  /** Longest wait for the model connection to be ready, in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Ends the session with reason `'aborted'`. */
  signal?: AbortSignal;
  /**
   * Connection overrides: an OpenAI or AzureOpenAI client of your own (base URL, key, Azure
   * deployment), options of the WebSocket (a proxy agent, extra CA certificates), or a transport to
   * another realtime provider.
   */
  connection?: AgentConnectionOptions;
}

/** How the session reaches the model. */
export interface AgentConnectionOptions {
  /**
   * An `OpenAI` or `AzureOpenAI` client from the openai package. Default: built from the config
   * (OPENAI_API_KEY, OPENAI_BASE_URL), or an AzureOpenAI client when AZURE_OPENAI_ENDPOINT is set.
   */
  client?: unknown;
  /** Options of the `ws` WebSocket (`ca`, `agent`, `headers`…). */
  websocket?: WebSocketOptions;
  /** A transport of another provider; replaces the OpenAI one. */
  transport?: RealtimeTransportFactory;
}

/** Why a session ended. */
export type AgentEndReason = 'caller-hangup' | 'end-call' | 'transfer' | 'aborted' | 'model-error' | 'dtmf';

/** One line of the conversation. */
export interface AgentTranscriptEntry {
  role: 'user' | 'assistant';
  text: string;
  at: Date;
  /** Assistant speech cut short by the caller: the text goes past what was heard. */
  interrupted?: boolean;
}

/** One run of a tool. */
export interface AgentToolCall {
  name: string;
  args: unknown;
  /** What went back to the model (for a failure: `{ error }`). */
  result: unknown;
  ms: number;
  /** Set when the tool failed or timed out. */
  error?: string;
}

/** Token counts reported by the model, summed over the session. */
export interface AgentUsage {
  responses: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  inputAudioTokens: number;
  outputAudioTokens: number;
}

/** Timings of a session, in ms. */
export interface AgentDurations {
  /** From the start of connectOpenAIAgent to its end. */
  totalMs: number;
  /** Until the model session was configured. */
  connectMs: number;
  /** Agent audio sent to the caller. */
  agentSpeechMs: number;
  /** Barge-ins acted on, and those ignored as too short (minBargeInMs). */
  bargeIns: number;
  falseBargeIns: number;
}

/** What `connectOpenAIAgent` resolves with. */
export interface AgentResult {
  reason: AgentEndReason;
  /** The transfer target's name, for reason `'transfer'`. */
  transferTarget?: string;
  /** The key that ended the session, for reason `'dtmf'`. */
  digit?: string;
  /** What failed, for reason `'model-error'`. */
  error?: Error;
  transcript: AgentTranscriptEntry[];
  toolCalls: AgentToolCall[];
  usage: AgentUsage;
  durations: AgentDurations;
}

/** Events of a running session, on `ui.on('agent', …)`. */
export type AgentEvent =
  | { type: 'connected'; ms: number }
  | { type: 'transcript'; role: 'user' | 'assistant'; text: string; final: boolean; itemId: string }
  | ({ type: 'toolCall' } & AgentToolCall)
  /**
   * The caller talked over the agent: `heardMs` of the item were sent; `reactionMs` from the
   * model's speech_started (or TALK_DETECT, or a key) to the moment no more of the answer is sent,
   * the minBargeInMs confirmation included.
   */
  | { type: 'bargeIn'; itemId: string | undefined; heardMs: number; reactionMs: number }
  /** The end of the caller's speech → the first agent audio packet of the answer. */
  | { type: 'turnLatency'; ms: number }
  | { type: 'error'; error: Error; fatal: boolean }
  | { type: 'ended'; reason: AgentEndReason };
