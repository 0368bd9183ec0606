import type { Logger } from '../logger.js';

/**
 * The provider-neutral side of a realtime speech model, as the agent sessions use it. The OpenAI
 * Realtime GA protocol is one implementation (openai-realtime-transport.ts); OpenAI's SIP
 * interface or another provider can be another without touching the sessions or the UIs.
 *
 * Audio is G.711 µ-law at 8 kHz both ways: what the call's RTP leg carries, so nothing is
 * resampled or re-encoded on the way.
 */
export interface RealtimeTransport {
  /**
   * Opens the connection and configures the session; resolves once the model confirmed the
   * configuration. Rejects (and leaves nothing open) when the connection is refused, fails, or
   * `signal` aborts.
   */
  connect(config: RealtimeSessionConfig, signal: AbortSignal): Promise<void>;
  /** Adds caller audio (µ-law) to the model's input. `arrivedAt` (performance.now()) is for latency figures. */
  appendAudio(ulaw: Uint8Array, arrivedAt?: number): void;
  /** Asks for a response; `instructions` override the session's for this one response. */
  createResponse(options?: { instructions?: string }): void;
  /** Cancels the response in progress. */
  cancelResponse(): void;
  /** Tells the model that only the first `audioEndMs` of an assistant item were heard. */
  truncate(itemId: string, audioEndMs: number): void;
  /** Adds a user text message to the conversation. */
  addUserText(text: string): void;
  /** Answers a function call. */
  addToolResult(callId: string, output: string): void;
  /** Receives every event; returns the remover. */
  onEvent(listener: (event: RealtimeEvent) => void): () => void;
  /** Closes the connection at once. Idempotent. */
  close(): void;
}

/** Builds a transport for one session. */
export type RealtimeTransportFactory = (context: { logger: Logger }) => RealtimeTransport;

/** A tool as the model sees it. */
export interface RealtimeToolSchema {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** What the session asks of the model. */
export interface RealtimeSessionConfig {
  model: string;
  instructions: string;
  /** Audio in and out (a call), or text only (a text conversation). */
  modality: 'audio' | 'text';
  voice?: string;
  tools: RealtimeToolSchema[];
  /** Voice only. */
  turnDetection?: 'server_vad' | 'semantic_vad';
  /** Transcription model of the caller's audio, or undefined for none. */
  inputTranscription?: string;
}

/** What the model tells the session, normalised. */
export type RealtimeEvent =
  /** The caller started talking (the model's VAD). */
  | { type: 'speechStarted' }
  | { type: 'speechStopped' }
  | { type: 'responseStarted'; responseId: string }
  /** µ-law audio of an assistant item. */
  | { type: 'audio'; responseId: string; itemId: string; ulaw: Uint8Array; receivedAt: number }
  /** Assistant words: the transcript of its audio, or its text on a text session. */
  | { type: 'assistantText'; responseId: string; itemId: string; text: string; final: boolean }
  | { type: 'userTranscript'; itemId: string; text: string; final: boolean }
  | { type: 'functionCall'; responseId: string; callId: string; name: string; arguments: string }
  | {
      type: 'responseDone';
      responseId: string;
      status: string;
      usage: Partial<{
        inputTokens: number;
        outputTokens: number;
        totalTokens: number;
        inputAudioTokens: number;
        outputAudioTokens: number;
      }>;
    }
  /** An error the model reported about one request; the session goes on. */
  | { type: 'error'; message: string; code?: string }
  /** The connection is gone (not after close()). */
  | { type: 'closed'; error: Error };
