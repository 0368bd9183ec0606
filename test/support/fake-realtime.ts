/**
 * A local stand-in for the OpenAI Realtime API (GA protocol) over real TLS, for driving
 * `OpenAIRealtimeWS` from the `openai` package in tests.
 *
 * Why real TLS: `OpenAIRealtimeWS` always dials `wss://`, so the fake is an `https` server on 127.0.0.1
 * (random port) with a certificate minted at test time ({@link sharedLocalhostTls}); clients trust it by
 * passing `options: { ca: fake.ca }` (forwarded to the `ws` constructor).
 *
 * It accepts the two URL shapes the SDK builds:
 * - OpenAI: `wss://127.0.0.1:PORT/v1/realtime?model=M` with `Authorization: Bearer KEY`
 *   (client `baseURL` = {@link FakeRealtime.baseURL});
 * - Azure: `wss://127.0.0.1:PORT/openai/realtime?api-version=V&deployment=D` with `api-key: KEY`
 *   (client `endpoint` = {@link FakeRealtime.azureEndpoint}); sideband `?call_id=` URLs are accepted too.
 * A missing or wrong key is refused with HTTP 401 and OpenAI's error JSON, as the real service does.
 *
 * The protocol side is deliberately passive: the fake answers what a client sends (session.update,
 * conversation.item.*, response.cancel, …) like the real server, but the "model" only speaks when a test
 * tells it to, through {@link FakeRealtimeConnection} helpers or the optional {@link FakeRealtime.onResponse}
 * responder. That keeps conversations deterministic and lets a test await exactly what the client did.
 */
import { randomBytes } from 'node:crypto';
import { type IncomingHttpHeaders, type IncomingMessage, STATUS_CODES } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type {
  ConversationItem,
  RealtimeAudioFormats,
  RealtimeClientEvent,
  RealtimeConversationItemAssistantMessage,
  RealtimeConversationItemFunctionCall,
  RealtimeConversationItemUserMessage,
  RealtimeError,
  RealtimeErrorEvent,
  RealtimeResponse,
  RealtimeResponseStatus,
  RealtimeResponseUsage,
  RealtimeServerEvent,
  RealtimeSessionCreateRequest,
  ResponseCreateEvent,
} from 'openai/resources/realtime/realtime';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { sharedLocalhostTls, type TlsMaterial } from './tls-cert.js';

// ---------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------

/** Every client event type of the GA protocol. */
export type ClientEventType = RealtimeClientEvent['type'];
/** The client event interface for one `type`, e.g. `ClientEventOf<'session.update'>`. */
export type ClientEventOf<T extends ClientEventType> = Extract<RealtimeClientEvent, { type: T }>;
/** Anything the fake can put on the wire: a typed GA server event, or a hand-made one for robustness tests. */
export type OutgoingEvent = RealtimeServerEvent | { type: string; [key: string]: unknown };

/**
 * The session as the fake holds it: the GA create-request shape plus the server-assigned fields the real
 * service reports (`id`, `object`, `expires_at`).
 */
export type FakeSession = RealtimeSessionCreateRequest & {
  id: string;
  object: 'realtime.session';
  expires_at: number;
};

/** One upgrade request, accepted or refused, as the fake saw it. */
export interface ConnectionAttempt {
  /** URL path, e.g. `/v1/realtime` or `/openai/realtime`. */
  readonly path: string;
  /** Query parameters, e.g. `{ model: 'gpt-realtime' }` or `{ 'api-version': …, deployment: … }`. */
  readonly query: Readonly<Record<string, string>>;
  /** Which URL shape was used (`unknown` = neither; refused with 404). */
  readonly flavor: 'openai' | 'azure' | 'unknown';
  /** `?model=` (OpenAI) or `?deployment=` (Azure). */
  readonly model: string | undefined;
  /** `?api-version=` (Azure). */
  readonly apiVersion: string | undefined;
  /** `?call_id=` (sideband connections). */
  readonly callId: string | undefined;
  /** How the client authenticated: `Authorization: Bearer …`, `api-key: …`, or not at all. */
  readonly auth: 'bearer' | 'api-key' | 'none';
  /** Whether the presented key matched {@link FakeRealtime.apiKey}. */
  readonly authorized: boolean;
  /** HTTP status the fake answered: 101 when upgraded, else the refusal status. */
  readonly status: number;
  /** Request headers as received (the key is the fake's own test key, so nothing secret). */
  readonly headers: IncomingHttpHeaders;
  /** `performance.now()` at arrival. */
  readonly at: number;
}

/** One `input_audio_buffer.append`, as it arrived. */
export interface AudioAppend {
  /** `performance.now()` when the event was received. */
  readonly at: number;
  /** Byte offset of this append within {@link FakeRealtimeConnection.audio}. */
  readonly offset: number;
  /** Decoded length in bytes. */
  readonly bytes: number;
}

/** What a {@link FakeResponder} is told about the `response.create` it answers. */
export interface ResponderContext {
  /** The client's `response.create` event. */
  readonly request: ResponseCreateEvent;
  /** Snapshot of the conversation (oldest first) when the response started. */
  readonly items: readonly ConversationItem[];
  /** Text of the latest user message: its `input_text` parts, or the transcript of its audio. */
  readonly lastUserText: string | undefined;
}

/**
 * Produces a response for a client `response.create`. The response has already been announced
 * (`response.created`); if the responder returns without calling `response.done()`, the fake completes it.
 * A throw ends the response as `failed` and is kept in {@link FakeRealtime.responderErrors}.
 */
export type FakeResponder = (
  conn: FakeRealtimeConnection,
  response: FakeResponse,
  context: ResponderContext,
) => void | Promise<void>;

/** Options for {@link startFakeRealtime}. */
export interface FakeRealtimeOptions {
  /** The only key accepted. Default {@link FAKE_REALTIME_API_KEY}. */
  apiKey?: string;
  /** TLS material; default one shared, freshly generated localhost CA + certificate per test process. */
  tls?: TlsMaterial;
  /** Initial {@link FakeRealtime.onResponse}. Default none: tests drive responses themselves. */
  onResponse?: FakeResponder;
  /** Fields merged (see {@link FakeRealtimeConnection.session}) over the default `session.created` session. */
  sessionDefaults?: Partial<RealtimeSessionCreateRequest>;
}

/** Options for the `waitFor…` helpers. */
export interface WaitOptions {
  /** Reject after this long. Default 5000 ms. */
  timeoutMs?: number;
}

/** The key the fake accepts unless {@link FakeRealtimeOptions.apiKey} says otherwise. */
export const FAKE_REALTIME_API_KEY = 'sk-test-realtime-0123456789';

const DEFAULT_WAIT_MS = 5000;
/** The real API refuses `input_audio_buffer.commit` with less than this much audio. */
const MIN_COMMIT_MS = 100;
const DEFAULT_INSTRUCTIONS = 'You are a helpful, witty, and friendly AI.';

// ---------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------

type WithoutEventId<T> = T extends unknown ? Omit<T, 'event_id'> : never;
/** A server event before the fake stamps its `event_id`. */
type ServerEventBody = WithoutEventId<RealtimeServerEvent>;

/** An id in OpenAI's style: `prefix_` and 20 alphanumerics (`event_…`, `item_…`, `resp_…`, `call_…`). */
export function fakeId(prefix: string): string {
  return `${prefix}_${randomBytes(30).toString('base64').replace(/[+/=]/g, '').slice(0, 20)}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Partial-update semantics of `session.update`: only the fields present change, nested config objects
 * merge, but an object carrying a `type` discriminator (an audio format, a turn-detection mode) is
 * replaced whole, since merging `{type:'audio/pcm',rate}` with `{type:'audio/pcmu'}` would be nonsense.
 */
function mergeConfig<T extends object>(base: T, patch: object): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    out[key] =
      isRecord(value) && isRecord(current) && !('type' in value)
        ? mergeConfig(current, value)
        : structuredClone(value);
  }
  return out as T;
}

/** Bytes per millisecond of audio in a GA format (pcm = 24 kHz 16-bit mono; G.711 = 8 kHz 8-bit). */
function bytesPerMs(format: RealtimeAudioFormats | undefined): number {
  return format?.type === 'audio/pcmu' || format?.type === 'audio/pcma' ? 8 : 48;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Splits text into word-sized deltas (keeping whitespace), like a streaming model would. */
function textDeltas(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
}

function tick(ms: number | undefined): Promise<void> {
  // setImmediate (not a microtask) so pending socket I/O, e.g. a client's response.cancel, gets handled
  // between chunks, exactly the interleaving a real stream allows.
  return new Promise((resolve) => (ms ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

interface Waiter {
  check(): void;
  fail(error: Error): void;
}

/** Internal link from a connection back to its server. */
interface ServerLink {
  readonly onResponse: FakeResponder | undefined;
  readonly holdSessionUpdates: boolean;
  readonly responderErrors: unknown[];
}

// ---------------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------------

interface OpenMessage {
  readonly item: RealtimeConversationItemAssistantMessage & { id: string };
  readonly outputIndex: number;
  readonly kind: 'audio' | 'text';
  transcript: string;
  text: string;
}

/** Final statuses a test may give {@link FakeResponse.done}. */
export type ResponseEndStatus = 'completed' | 'cancelled' | 'incomplete' | 'failed';

/**
 * One model response, from `response.created` to `response.done`, scripted by a test.
 *
 * Output is emitted as the real service orders it: an assistant message item is opened on the first
 * `audio`/`transcript`/`text` call (`response.output_item.added`, `conversation.item.added`,
 * `response.content_part.added`) and closed when a function call follows or the response ends (the
 * `….done` events with the accumulated transcript/text, `response.content_part.done`,
 * `response.output_item.done`, `conversation.item.done`). Once the response is over (done, or cancelled by
 * the client / a barge-in), further calls are silently ignored, as a real model simply stops talking.
 */
export class FakeResponse {
  /** `resp_…`. */
  readonly id: string = fakeId('resp');
  /** The `response.create` this answers; undefined for a server-initiated (VAD) response. */
  readonly request: ResponseCreateEvent | undefined;
  /** `conversation: 'none'`: not written to the conversation, no `conversation.item.*` events. */
  readonly outOfBand: boolean;
  /** Output items so far (no audio data, like `response.done`). */
  readonly output: ConversationItem[] = [];
  /** Resolves with the response object once `response.done` has been sent (whatever the status). */
  readonly finished: Promise<RealtimeResponse>;
  private currentStatus: NonNullable<RealtimeResponse['status']> = 'in_progress';
  private open: OpenMessage | undefined;
  private lastMessageId: string | undefined;
  private audioMs = 0;
  private textChars = 0;
  private final: RealtimeResponse | undefined;
  private resolveFinished!: (r: RealtimeResponse) => void;

  /** @internal Use {@link FakeRealtimeConnection.startResponse}. */
  constructor(
    private readonly conn: FakeRealtimeConnection,
    request: ResponseCreateEvent | undefined,
  ) {
    this.request = request;
    this.outOfBand = request?.response?.conversation === 'none';
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  /** `in_progress` until `response.done`, then its final status. */
  get status(): NonNullable<RealtimeResponse['status']> {
    return this.currentStatus;
  }

  /** Still producing output (not done/cancelled, socket open). */
  get active(): boolean {
    return this.currentStatus === 'in_progress' && this.conn.isOpen;
  }

  /** Id of the current (or last) assistant message item: what a client would truncate. */
  get messageItemId(): string | undefined {
    return this.open?.item.id ?? this.lastMessageId;
  }

  /** The modalities this response speaks in: the request's, else the session's. */
  get outputModalities(): Array<'text' | 'audio'> {
    return this.request?.response?.output_modalities ?? this.conn.session.output_modalities ?? ['audio'];
  }

  /** @internal The `response` object of `response.created` / `response.done`. */
  snapshot(usage?: RealtimeResponseUsage, details?: RealtimeResponseStatus): RealtimeResponse {
    const session = this.conn.session;
    const audio = this.request?.response?.audio?.output;
    const metadata = this.request?.response?.metadata;
    const response: RealtimeResponse = {
      object: 'realtime.response',
      id: this.id,
      status: this.currentStatus,
      output: structuredClone(this.output),
      output_modalities: this.outputModalities,
      max_output_tokens: this.request?.response?.max_output_tokens ?? session.max_output_tokens ?? 'inf',
      audio: {
        output: {
          format: audio?.format ?? session.audio?.output?.format ?? { type: 'audio/pcm', rate: 24000 },
          voice: typeof audio?.voice === 'string' ? audio.voice : this.conn.voice,
        },
      },
      metadata: metadata ?? null,
    };
    if (!this.outOfBand) response.conversation_id = this.conn.conversationId;
    if (details) response.status_details = details;
    if (usage) response.usage = usage;
    return response;
  }

  /**
   * Streams `ulaw` (any bytes in the session's output format) as `response.output_audio.delta` events of
   * `chunkBytes` (default 800 = 100 ms of G.711), yielding to the event loop between chunks (or waiting
   * `paceMs`) so client events can interleave. Stops early if the response ends meanwhile.
   */
  async audio(ulaw: Uint8Array, opts: { chunkBytes?: number; paceMs?: number } = {}): Promise<void> {
    if (!this.active) return;
    const chunkBytes = opts.chunkBytes ?? 800;
    if (!(chunkBytes > 0)) throw new RangeError(`chunkBytes must be positive, got ${chunkBytes}`);
    const msg = this.ensureMessage('audio');
    const perMs = bytesPerMs(this.conn.session.audio?.output?.format);
    for (let offset = 0; offset < ulaw.length; offset += chunkBytes) {
      if (!this.active || this.open !== msg) return;
      const piece = ulaw.subarray(offset, offset + chunkBytes);
      this.audioMs += piece.length / perMs;
      this.conn.noteAssistantAudio(msg.item.id, piece.length / perMs);
      this.conn.emit({
        type: 'response.output_audio.delta',
        response_id: this.id,
        item_id: msg.item.id,
        output_index: msg.outputIndex,
        content_index: 0,
        delta: Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString('base64'),
      });
      await tick(opts.paceMs);
    }
  }

  /**
   * Streams `text` as `response.output_audio_transcript.delta` events (word by word). The matching
   * `….done` (with everything accumulated) comes when the message item closes, as in the real stream.
   */
  transcript(text: string): void {
    if (!this.active) return;
    const msg = this.ensureMessage('audio');
    for (const delta of textDeltas(text)) {
      msg.transcript += delta;
      this.textChars += delta.length;
      this.conn.emit({
        type: 'response.output_audio_transcript.delta',
        response_id: this.id,
        item_id: msg.item.id,
        output_index: msg.outputIndex,
        content_index: 0,
        delta,
      });
    }
  }

  /**
   * Streams `text` as `response.output_text.delta` events (text-only sessions); `response.output_text.done`
   * follows when the message item closes.
   */
  text(text: string): void {
    if (!this.active) return;
    const msg = this.ensureMessage('text');
    for (const delta of textDeltas(text)) {
      msg.text += delta;
      this.textChars += delta.length;
      this.conn.emit({
        type: 'response.output_text.delta',
        response_id: this.id,
        item_id: msg.item.id,
        output_index: msg.outputIndex,
        content_index: 0,
        delta,
      });
    }
  }

  /**
   * Emits a complete function call item: closes any open message, then `response.output_item.added`,
   * `conversation.item.added`, `response.function_call_arguments.delta` (two halves) and `….done`,
   * `response.output_item.done`, `conversation.item.done`. `args` is JSON-encoded unless already a string.
   */
  functionCall(
    name: string,
    args: unknown,
    callId: string = fakeId('call'),
  ): { itemId: string; callId: string } {
    const itemId = fakeId('item');
    if (!this.active) return { itemId, callId };
    this.closeMessage('completed');
    const argumentsJson = typeof args === 'string' ? args : JSON.stringify(args);
    const item: RealtimeConversationItemFunctionCall & { id: string } = {
      id: itemId,
      object: 'realtime.item',
      type: 'function_call',
      status: 'in_progress',
      name,
      call_id: callId,
      arguments: '',
    };
    const outputIndex = this.addOutputItem(item);
    const half = Math.ceil(argumentsJson.length / 2);
    for (const delta of [argumentsJson.slice(0, half), argumentsJson.slice(half)]) {
      if (!delta) continue;
      this.conn.emit({
        type: 'response.function_call_arguments.delta',
        response_id: this.id,
        item_id: itemId,
        output_index: outputIndex,
        call_id: callId,
        delta,
      });
    }
    this.conn.emit({
      type: 'response.function_call_arguments.done',
      response_id: this.id,
      item_id: itemId,
      output_index: outputIndex,
      call_id: callId,
      name,
      arguments: argumentsJson,
    });
    item.arguments = argumentsJson;
    item.status = 'completed';
    this.textChars += argumentsJson.length;
    this.finishOutputItem(item, outputIndex);
    return { itemId, callId };
  }

  /**
   * Ends the response: closes the open message (status `completed`, else `incomplete`) and sends
   * `response.done` with the output items and `usage` (default: a deterministic estimate; given fields
   * override it, and `total_tokens` follows input + output unless given). Idempotent once ended: returns
   * the response object that was sent.
   */
  done(status: ResponseEndStatus = 'completed', usage?: RealtimeResponseUsage): RealtimeResponse {
    const details: Record<ResponseEndStatus, RealtimeResponseStatus | undefined> = {
      completed: undefined,
      cancelled: { type: 'cancelled', reason: 'client_cancelled' },
      incomplete: { type: 'incomplete', reason: 'max_output_tokens' },
      failed: { type: 'failed', error: { type: 'server_error', code: 'server_error' } },
    };
    return this.end(status, details[status], usage);
  }

  /** @internal Ends the response with explicit status details (used for cancellation). */
  end(
    status: ResponseEndStatus,
    details?: RealtimeResponseStatus,
    usage?: RealtimeResponseUsage,
  ): RealtimeResponse {
    if (this.final) return this.final;
    this.closeMessage(status === 'completed' ? 'completed' : 'incomplete');
    this.currentStatus = status;
    const final = this.snapshot(this.usage(usage), details);
    this.final = final;
    this.conn.emit({ type: 'response.done', response: final });
    this.conn.responseEnded();
    this.resolveFinished(final);
    return final;
  }

  private usage(override: RealtimeResponseUsage | undefined): RealtimeResponseUsage {
    // A stable, order-of-magnitude estimate (≈4 chars per text token, 50 ms per output audio token,
    // 100 ms per input audio token): enough for code that sums or logs usage.
    const { textChars, audioMs } = this.conn.inputStats();
    const inputText = Math.ceil(textChars / 4);
    const inputAudio = Math.ceil(audioMs / 100);
    const outputText = Math.ceil(this.textChars / 4);
    const outputAudio = Math.ceil(this.audioMs / 50);
    const computed: RealtimeResponseUsage = {
      total_tokens: inputText + inputAudio + outputText + outputAudio,
      input_tokens: inputText + inputAudio,
      output_tokens: outputText + outputAudio,
      input_token_details: {
        text_tokens: inputText,
        audio_tokens: inputAudio,
        image_tokens: 0,
        cached_tokens: 0,
        cached_tokens_details: { text_tokens: 0, audio_tokens: 0, image_tokens: 0 },
      },
      output_token_details: { text_tokens: outputText, audio_tokens: outputAudio },
    };
    if (!override) return computed;
    const merged = { ...computed, ...override };
    if (override.total_tokens === undefined) {
      merged.total_tokens = (merged.input_tokens ?? 0) + (merged.output_tokens ?? 0);
    }
    return merged;
  }

  private ensureMessage(kind: 'audio' | 'text'): OpenMessage {
    if (this.open) {
      if (this.open.kind !== kind) {
        throw new Error(`FakeResponse: cannot mix ${this.open.kind} and ${kind} output in one message item`);
      }
      return this.open;
    }
    const item: OpenMessage['item'] = {
      id: fakeId('item'),
      object: 'realtime.item',
      type: 'message',
      status: 'in_progress',
      role: 'assistant',
      content: [],
    };
    const outputIndex = this.addOutputItem(item);
    const msg: OpenMessage = { item, outputIndex, kind, transcript: '', text: '' };
    this.open = msg;
    this.conn.emit({
      type: 'response.content_part.added',
      response_id: this.id,
      item_id: item.id,
      output_index: outputIndex,
      content_index: 0,
      part: kind === 'audio' ? { type: 'audio', transcript: '' } : { type: 'text', text: '' },
    });
    return msg;
  }

  private closeMessage(status: 'completed' | 'incomplete'): void {
    const msg = this.open;
    if (!msg) return;
    this.open = undefined;
    this.lastMessageId = msg.item.id;
    const ids = {
      response_id: this.id,
      item_id: msg.item.id,
      output_index: msg.outputIndex,
      content_index: 0,
    };
    if (msg.kind === 'audio') {
      this.conn.emit({ type: 'response.output_audio.done', ...ids });
      this.conn.emit({ type: 'response.output_audio_transcript.done', ...ids, transcript: msg.transcript });
      this.conn.emit({
        type: 'response.content_part.done',
        ...ids,
        part: { type: 'audio', transcript: msg.transcript },
      });
      msg.item.content = [{ type: 'output_audio', transcript: msg.transcript }];
    } else {
      this.conn.emit({ type: 'response.output_text.done', ...ids, text: msg.text });
      this.conn.emit({ type: 'response.content_part.done', ...ids, part: { type: 'text', text: msg.text } });
      msg.item.content = [{ type: 'output_text', text: msg.text }];
    }
    msg.item.status = status;
    this.finishOutputItem(msg.item, msg.outputIndex);
  }

  private addOutputItem(item: ConversationItem & { id: string }): number {
    const outputIndex = this.output.length;
    this.output.push(item);
    this.conn.emit({
      type: 'response.output_item.added',
      response_id: this.id,
      output_index: outputIndex,
      item: structuredClone(item),
    });
    if (!this.outOfBand) this.conn.addItem(item);
    return outputIndex;
  }

  private finishOutputItem(item: ConversationItem & { id: string }, outputIndex: number): void {
    this.conn.emit({
      type: 'response.output_item.done',
      response_id: this.id,
      output_index: outputIndex,
      item: structuredClone(item),
    });
    if (!this.outOfBand) this.conn.itemDone(item);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------------------

/**
 * One accepted Realtime WebSocket: the fake server's side of a session. Records everything the client
 * sends, answers protocol housekeeping like the real service, and offers helpers to script the model.
 */
export class FakeRealtimeConnection {
  /** The upgrade request that opened this connection. */
  readonly request: ConnectionAttempt;
  /** Every client event (parsed JSON objects with a string `type`, valid or not), in arrival order. */
  readonly received: RealtimeClientEvent[] = [];
  /** Every server event sent, in order (hand-made and raw strings included). */
  readonly sent: Array<OutgoingEvent | string> = [];
  /** Every `error` event the fake sent: assert it empty to prove the client spoke valid protocol. */
  readonly errors: RealtimeErrorEvent[] = [];
  /** One entry per `input_audio_buffer.append`. */
  readonly appends: AudioAppend[] = [];
  /** The conversation as the fake holds it, oldest first. */
  readonly items: ConversationItem[] = [];
  /** Every response started on this connection, oldest first. */
  readonly responses: FakeResponse[] = [];
  /** `conv_…`: the default conversation's id, reported in responses. */
  readonly conversationId: string = fakeId('conv');
  /** Resolves when the socket has closed (any reason), with the close code and reason seen by the server. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private currentSession: FakeSession;
  private readonly audioChunks: Buffer[] = [];
  private audioLength = 0;
  private audioCache: Buffer | undefined;
  /** Byte offset in {@link audio} where the uncommitted input buffer starts. */
  private inputStart = 0;
  private committedAudioMs = 0;
  private pendingUserItemId: string | undefined;
  private lastUserAudioItemId: string | undefined;
  private readonly assistantAudioMs = new Map<string, number>();
  private readonly heldSessionUpdates: (() => void)[] = [];
  private readonly waiters = new Set<Waiter>();
  private isClosed = false;

  /** @internal Created by {@link FakeRealtime} on each accepted upgrade. */
  constructor(
    private readonly ws: WebSocket,
    request: ConnectionAttempt,
    private readonly server: ServerLink,
    sessionDefaults: Partial<RealtimeSessionCreateRequest> | undefined,
  ) {
    this.request = request;
    const base: FakeSession = {
      type: 'realtime',
      object: 'realtime.session',
      id: fakeId('sess'),
      model: request.model ?? 'gpt-realtime',
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      output_modalities: ['audio'],
      instructions: DEFAULT_INSTRUCTIONS,
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
      tracing: null,
      prompt: null,
      truncation: 'auto',
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          turn_detection: {
            type: 'server_vad',
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 200,
            idle_timeout_ms: null,
            create_response: true,
            interrupt_response: true,
          },
        },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
      },
    };
    this.currentSession = sessionDefaults ? mergeConfig(base, sessionDefaults) : base;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.isClosed = true;
        for (const w of [...this.waiters]) w.fail(new Error('the Realtime connection closed'));
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    // A client vanishing mid-write surfaces as a socket error; the close handler above does the bookkeeping.
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.emit({ type: 'session.created', session: structuredClone(this.currentSession) });
  }

  /** Latest effective session config (after every `session.update` merged in). */
  get session(): FakeSession {
    return this.currentSession;
  }

  /** All audio the client appended (raw bytes in its input format, e.g. µ-law), in order. */
  get audio(): Buffer {
    if (!this.audioCache || this.audioCache.length !== this.audioLength) {
      this.audioCache = Buffer.concat(this.audioChunks, this.audioLength);
    }
    return this.audioCache;
  }

  /** The socket is still open. */
  get isOpen(): boolean {
    return !this.isClosed && this.ws.readyState === this.ws.OPEN;
  }

  /** The response currently writing to the default conversation, if any. */
  get activeResponse(): FakeResponse | undefined {
    return this.responses.find((r) => r.active && !r.outOfBand);
  }

  /** @internal The effective output voice. */
  get voice(): string {
    const voice = this.currentSession.audio?.output?.voice;
    return typeof voice === 'string' ? voice : (voice?.id ?? 'alloy');
  }

  /**
   * Resolves with the `nth` (default first) client event of `type` matching `predicate`, whether it already
   * arrived or arrives later. Rejects on timeout or when the connection closes first.
   */
  waitFor<T extends ClientEventType>(
    type: T,
    predicate?: (event: ClientEventOf<T>) => boolean,
    opts: WaitOptions & { nth?: number } = {},
  ): Promise<ClientEventOf<T>> {
    const nth = opts.nth ?? 1;
    return this.waitUntil(
      () => {
        let seen = 0;
        for (const event of this.received) {
          if (event.type !== type) continue;
          const typed = event as ClientEventOf<T>;
          if (predicate && !predicate(typed)) continue;
          if (++seen === nth) return typed;
        }
        return undefined;
      },
      `client event ${type}${nth > 1 ? ` #${nth}` : ''}`,
      opts.timeoutMs,
    );
  }

  /** Resolves with {@link audio} once at least `bytes` bytes have been appended. */
  waitForAudio(bytes: number, opts: WaitOptions = {}): Promise<Buffer> {
    return this.waitUntil(
      () => (this.audioLength >= bytes ? this.audio : undefined),
      `${bytes} bytes of input audio (have ${this.audioLength})`,
      opts.timeoutMs,
    );
  }

  /** Sends `event` as is (a string goes out verbatim, e.g. to test a client against malformed JSON). */
  send(event: OutgoingEvent | string): void {
    this.sent.push(event);
    if (this.isOpen) this.ws.send(typeof event === 'string' ? event : JSON.stringify(event));
  }

  /** @internal Stamps an `event_id` on a GA server event and sends it. */
  emit(body: ServerEventBody): RealtimeServerEvent {
    const event = { event_id: fakeId('event'), ...body } as RealtimeServerEvent;
    this.send(event);
    return event;
  }

  /** Sends an `error` event (default type `invalid_request_error`), as the server does for a bad request. */
  sendError(error: Partial<RealtimeError> & { message: string }): RealtimeErrorEvent {
    const event = this.emit({
      type: 'error',
      error: { type: 'invalid_request_error', code: null, param: null, event_id: null, ...error },
    }) as RealtimeErrorEvent;
    this.errors.push(event);
    return event;
  }

  /**
   * Server VAD: `input_audio_buffer.speech_started` with the item id the user's turn will get.
   * `audioStartMs` defaults to the audio received so far. If a response is active and the session's turn
   * detection interrupts (`interrupt_response`, on by default) — or `opts.interrupt` says so — the response
   * is cancelled with reason `turn_detected`, as the real server does on barge-in. Returns the item id.
   */
  speechStarted(audioStartMs?: number, opts: { interrupt?: boolean } = {}): string {
    this.pendingUserItemId ??= fakeId('item');
    const itemId = this.pendingUserItemId;
    this.emit({
      type: 'input_audio_buffer.speech_started',
      audio_start_ms: audioStartMs ?? this.receivedAudioMs(),
      item_id: itemId,
    });
    const turnDetection = this.currentSession.audio?.input?.turn_detection;
    const interrupt = opts.interrupt ?? (!!turnDetection && turnDetection.interrupt_response !== false);
    if (interrupt) this.activeResponse?.end('cancelled', { type: 'cancelled', reason: 'turn_detected' });
    return itemId;
  }

  /**
   * Server VAD: `input_audio_buffer.speech_stopped`, then commits the input buffer as a user audio item
   * (`input_audio_buffer.committed`, `conversation.item.added`, `conversation.item.done`). Does not start a
   * response: call {@link startResponse} for that. Returns the user item id.
   */
  speechStopped(audioEndMs?: number): string {
    const itemId = this.pendingUserItemId ?? fakeId('item');
    this.pendingUserItemId = undefined;
    this.emit({
      type: 'input_audio_buffer.speech_stopped',
      audio_end_ms: audioEndMs ?? this.receivedAudioMs(),
      item_id: itemId,
    });
    this.commitInput(itemId);
    return itemId;
  }

  /**
   * `conversation.item.input_audio_transcription.completed` for a user audio item (default: the latest
   * committed one), and records the transcript on the item.
   */
  userTranscript(text: string, itemId: string | undefined = this.lastUserAudioItemId): void {
    if (!itemId) throw new Error('userTranscript: no user audio item yet; call speechStopped() first');
    const item = this.items.find((i) => i.id === itemId);
    if (item?.type === 'message' && item.role === 'user') {
      for (const part of item.content) if (part.type === 'input_audio') part.transcript = text;
    }
    const tokens = Math.ceil(text.length / 4);
    this.emit({
      type: 'conversation.item.input_audio_transcription.completed',
      item_id: itemId,
      content_index: 0,
      transcript: text,
      usage: { type: 'tokens', input_tokens: tokens, output_tokens: tokens, total_tokens: 2 * tokens },
    });
  }

  /**
   * Starts a model response (`response.created`) and returns its handle. Pass the client's `request` when
   * answering a `response.create` (its modalities, metadata and `conversation` are honoured); omit it for a
   * server-initiated (VAD) response.
   */
  startResponse(opts: { request?: ResponseCreateEvent } = {}): FakeResponse {
    const response = new FakeResponse(this, opts.request);
    this.responses.push(response);
    this.emit({ type: 'response.created', response: response.snapshot() });
    return response;
  }

  /** Destroys the socket without a close frame, like a network failure (the client sees 1006). */
  drop(): void {
    this.ws.terminate();
  }

  /** Closes with a close frame. */
  close(code = 1000, reason = ''): void {
    this.ws.close(code, reason);
  }

  /** @internal Appends an item to the conversation and announces it. */
  addItem(item: ConversationItem & { id: string }, previousItemId?: string | null): void {
    let index = this.items.length;
    if (previousItemId === 'root') index = 0;
    else if (previousItemId) index = this.items.findIndex((i) => i.id === previousItemId) + 1;
    const previous = index > 0 ? (this.items[index - 1]?.id ?? null) : null;
    this.items.splice(index, 0, item);
    this.emit({ type: 'conversation.item.added', previous_item_id: previous, item: structuredClone(item) });
  }

  /** @internal Announces that an item is final. */
  itemDone(item: ConversationItem & { id: string }): void {
    const index = this.items.findIndex((i) => i.id === item.id);
    const previous = index > 0 ? (this.items[index - 1]?.id ?? null) : null;
    this.emit({ type: 'conversation.item.done', previous_item_id: previous, item: structuredClone(item) });
  }

  /** @internal Tracks assistant audio per item, so truncation beyond it can be refused like the real API. */
  noteAssistantAudio(itemId: string, ms: number): void {
    this.assistantAudioMs.set(itemId, (this.assistantAudioMs.get(itemId) ?? 0) + ms);
  }

  /** @internal Conversation size for the usage estimate. */
  inputStats(): { textChars: number; audioMs: number } {
    let textChars = (this.currentSession.instructions ?? '').length;
    for (const item of this.items) {
      if (item.type === 'message') {
        for (const part of item.content) {
          textChars += (part.text ?? ('transcript' in part ? part.transcript : undefined) ?? '').length;
        }
      } else if (item.type === 'function_call') textChars += item.arguments.length;
      else if (item.type === 'function_call_output') textChars += item.output.length;
    }
    return { textChars, audioMs: this.committedAudioMs };
  }

  /** @internal A response ended: waiters may be interested in its status. */
  responseEnded(): void {
    this.wake();
  }

  private receivedAudioMs(): number {
    return Math.round(this.audioLength / bytesPerMs(this.currentSession.audio?.input?.format));
  }

  private waitUntil<T>(probe: () => T | undefined, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    if (this.isClosed) return Promise.reject(new Error(`the Realtime connection closed before ${what}`));
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        check: () => {
          const value = probe();
          if (value === undefined) return;
          finish();
          resolve(value);
        },
        fail: (error) => {
          finish();
          reject(new Error(`${error.message} while waiting for ${what}`));
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w.check();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    const at = performance.now();
    let event: unknown;
    try {
      if (isBinary)
        throw new ClientError('invalid_value', 'Binary frames are not supported; send JSON text.');
      try {
        event = JSON.parse(String(data));
      } catch (e) {
        throw new ClientError('invalid_json', `Invalid JSON: ${(e as Error).message}`);
      }
      if (!isRecord(event) || typeof event.type !== 'string') {
        throw new ClientError('missing_required_parameter', "Missing required parameter: 'type'.", 'type');
      }
      this.received.push(event as unknown as RealtimeClientEvent);
      this.dispatch(event as unknown as RealtimeClientEvent, at);
    } catch (e) {
      if (!(e instanceof ClientError)) throw e;
      const eventId = isRecord(event) && typeof event.event_id === 'string' ? event.event_id : null;
      this.sendError({ code: e.code, message: e.message, param: e.param, event_id: eventId });
    } finally {
      this.wake();
    }
  }

  private dispatch(event: RealtimeClientEvent, at: number): void {
    switch (event.type) {
      case 'session.update':
        this.onSessionUpdate(event);
        return;
      case 'input_audio_buffer.append':
        this.onAppend(event, at);
        return;
      case 'input_audio_buffer.clear':
        this.inputStart = this.audioLength;
        this.emit({ type: 'input_audio_buffer.cleared' });
        return;
      case 'input_audio_buffer.commit': {
        const ms =
          (this.audioLength - this.inputStart) / bytesPerMs(this.currentSession.audio?.input?.format);
        if (ms < MIN_COMMIT_MS) {
          throw new ClientError(
            'input_audio_buffer_commit_empty',
            `Error committing input audio buffer: buffer too small. Expected at least ${MIN_COMMIT_MS}ms of audio, but buffer only has ${ms.toFixed(2)}ms of audio.`,
          );
        }
        this.commitInput(this.pendingUserItemId ?? fakeId('item'));
        this.pendingUserItemId = undefined;
        return;
      }
      case 'conversation.item.create':
        this.onItemCreate(event);
        return;
      case 'conversation.item.delete': {
        const index = this.requireItem(event.item_id);
        this.items.splice(index, 1);
        this.emit({ type: 'conversation.item.deleted', item_id: event.item_id });
        return;
      }
      case 'conversation.item.retrieve': {
        const item = this.items[this.requireItem(event.item_id)];
        if (item) this.emit({ type: 'conversation.item.retrieved', item: structuredClone(item) });
        return;
      }
      case 'conversation.item.truncate':
        this.onTruncate(event);
        return;
      case 'response.create':
        this.onResponseCreate(event);
        return;
      case 'response.cancel': {
        const target = event.response_id
          ? this.responses.find((r) => r.id === event.response_id && r.active)
          : this.activeResponse;
        if (!target) {
          throw new ClientError(
            'response_cancel_not_active',
            'Cancellation failed: no active response found',
          );
        }
        target.end('cancelled', { type: 'cancelled', reason: 'client_cancelled' });
        return;
      }
      case 'output_audio_buffer.clear':
        // WebRTC/SIP only: over a WebSocket the client owns playback, so there is nothing to clear. Recorded.
        return;
      default: {
        const type = (event as { type: string }).type;
        throw new ClientError(
          'invalid_value',
          `Invalid value: '${type}'. Unknown client event type.`,
          'type',
        );
      }
    }
  }

  private onSessionUpdate(event: ClientEventOf<'session.update'>): void {
    const patch: unknown = event.session;
    if (!isRecord(patch)) {
      throw new ClientError(
        'missing_required_parameter',
        "Missing required parameter: 'session'.",
        'session',
      );
    }
    if (patch.type === undefined) {
      // The GA API insists on the session type; a beta-style update without it is refused.
      throw new ClientError(
        'missing_required_parameter',
        "Missing required parameter: 'session.type'.",
        'session.type',
      );
    }
    if (patch.type !== 'realtime') {
      throw new ClientError(
        'invalid_value',
        `Invalid value: '${String(patch.type)}'. This fake only serves 'realtime' sessions.`,
        'session.type',
      );
    }
    const voice = (event.session as RealtimeSessionCreateRequest).audio?.output?.voice;
    if (
      voice !== undefined &&
      this.assistantAudioMs.size > 0 &&
      JSON.stringify(voice) !== JSON.stringify(this.voice)
    ) {
      throw new ClientError(
        'cannot_update_voice',
        "Cannot update a conversation's voice if assistant audio is present.",
        'session.audio.output.voice',
      );
    }
    const { id, object, expires_at } = this.currentSession;
    this.currentSession = { ...mergeConfig(this.currentSession, patch), id, object, expires_at };
    const confirm = (): void => {
      this.emit({ type: 'session.updated', session: structuredClone(this.currentSession) });
    };
    if (this.server.holdSessionUpdates) this.heldSessionUpdates.push(confirm);
    else confirm();
  }

  /** Confirms the session updates held by {@link FakeRealtime.holdSessionUpdates} (a slow model start). */
  releaseSessionUpdates(): void {
    for (const confirm of this.heldSessionUpdates.splice(0)) confirm();
  }

  private onAppend(event: ClientEventOf<'input_audio_buffer.append'>, at: number): void {
    const audio: unknown = event.audio;
    if (typeof audio !== 'string') {
      throw new ClientError('missing_required_parameter', "Missing required parameter: 'audio'.", 'audio');
    }
    if (!BASE64.test(audio)) {
      throw new ClientError(
        'invalid_value',
        "Invalid 'audio'. Expected base64-encoded audio bytes.",
        'audio',
      );
    }
    const bytes = Buffer.from(audio, 'base64');
    this.appends.push({ at, offset: this.audioLength, bytes: bytes.length });
    this.audioChunks.push(bytes);
    this.audioLength += bytes.length;
  }

  private commitInput(itemId: string): void {
    this.committedAudioMs +=
      (this.audioLength - this.inputStart) / bytesPerMs(this.currentSession.audio?.input?.format);
    this.inputStart = this.audioLength;
    const item: RealtimeConversationItemUserMessage & { id: string } = {
      id: itemId,
      object: 'realtime.item',
      type: 'message',
      status: 'completed',
      role: 'user',
      content: [{ type: 'input_audio' }],
    };
    this.emit({
      type: 'input_audio_buffer.committed',
      item_id: itemId,
      previous_item_id: this.items.at(-1)?.id ?? null,
    });
    this.addItem(item);
    this.itemDone(item);
    this.lastUserAudioItemId = itemId;
  }

  private onItemCreate(event: ClientEventOf<'conversation.item.create'>): void {
    const item: unknown = event.item;
    if (!isRecord(item)) {
      throw new ClientError('missing_required_parameter', "Missing required parameter: 'item'.", 'item');
    }
    validateItem(item);
    if (typeof item.id === 'string' && this.items.some((i) => i.id === item.id)) {
      throw new ClientError('invalid_value', `Item with id '${item.id}' already exists.`, 'item.id');
    }
    const previous = event.previous_item_id;
    if (previous && previous !== 'root' && !this.items.some((i) => i.id === previous)) {
      throw new ClientError(
        'invalid_value',
        `Invalid value: '${previous}'. Previous item with id '${previous}' not found.`,
        'previous_item_id',
      );
    }
    const stored = {
      ...structuredClone(item),
      id: typeof item.id === 'string' ? item.id : fakeId('item'),
      object: 'realtime.item',
      status: 'completed',
    } as unknown as ConversationItem & { id: string };
    this.addItem(stored, previous);
    this.itemDone(stored);
  }

  private onTruncate(event: ClientEventOf<'conversation.item.truncate'>): void {
    const item = this.items[this.requireItem(event.item_id)];
    if (item?.type !== 'message' || item.role !== 'assistant') {
      throw new ClientError('invalid_value', 'Only assistant message items can be truncated.', 'item_id');
    }
    if (event.content_index !== 0) {
      throw new ClientError(
        'invalid_value',
        `Invalid 'content_index': ${event.content_index}.`,
        'content_index',
      );
    }
    const audioMs = this.assistantAudioMs.get(event.item_id) ?? 0;
    if (!(event.audio_end_ms >= 0) || event.audio_end_ms > audioMs) {
      throw new ClientError(
        'invalid_value',
        `Audio content of ${Math.round(audioMs)}ms is already shorter than ${event.audio_end_ms}ms`,
        'audio_end_ms',
      );
    }
    this.assistantAudioMs.set(event.item_id, event.audio_end_ms);
    this.emit({
      type: 'conversation.item.truncated',
      item_id: event.item_id,
      content_index: event.content_index,
      audio_end_ms: event.audio_end_ms,
    });
  }

  private onResponseCreate(event: ClientEventOf<'response.create'>): void {
    const outOfBand = event.response?.conversation === 'none';
    const active = this.activeResponse;
    if (!outOfBand && active) {
      throw new ClientError(
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${active.id}. Wait until the response is finished before creating a new one.`,
      );
    }
    const responder = this.server.onResponse;
    if (responder) void this.runResponder(responder, event);
  }

  private async runResponder(responder: FakeResponder, request: ResponseCreateEvent): Promise<void> {
    const response = this.startResponse({ request });
    const context: ResponderContext = {
      request,
      items: structuredClone(this.items),
      lastUserText: this.lastUserText(),
    };
    try {
      await responder(this, response, context);
      if (response.active) response.done();
    } catch (error) {
      this.server.responderErrors.push(error);
      if (response.active) response.done('failed');
    }
  }

  private lastUserText(): string | undefined {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item?.type !== 'message' || item.role !== 'user') continue;
      const texts = item.content.map((p) => (p.type === 'input_audio' ? p.transcript : p.text));
      const defined = texts.filter((t): t is string => typeof t === 'string');
      if (defined.length > 0) return defined.join(' ');
    }
    return undefined;
  }

  private requireItem(itemId: unknown): number {
    const index = this.items.findIndex((i) => i.id === itemId);
    if (typeof itemId !== 'string' || index === -1) {
      throw new ClientError(
        'invalid_value',
        `Invalid value: '${String(itemId)}'. Item with id not found in the conversation.`,
        'item_id',
      );
    }
    return index;
  }
}

/** The checks the real API applies to `conversation.item.create` that clients most often get wrong. */
function validateItem(item: Record<string, unknown>): void {
  const bad = (param: string, message: string): never => {
    throw new ClientError('invalid_value', message, param);
  };
  switch (item.type) {
    case 'message': {
      const allowed: Record<string, string[]> = {
        system: ['input_text'],
        user: ['input_text', 'input_audio', 'input_image'],
        // GA names assistant text `output_text` (the beta's `text` is refused).
        assistant: ['output_text', 'output_audio'],
      };
      const kinds = allowed[String(item.role)] ?? bad('item.role', `Invalid value: '${String(item.role)}'.`);
      if (!Array.isArray(item.content)) bad('item.content', "Missing required parameter: 'item.content'.");
      (item.content as unknown[]).forEach((part, i) => {
        const type = isRecord(part) ? part.type : undefined;
        if (typeof type !== 'string' || !kinds.includes(type)) {
          bad(
            `item.content[${i}].type`,
            `Invalid value: '${String(type)}'. Supported values are: ${kinds.map((k) => `'${k}'`).join(', ')}.`,
          );
        }
      });
      return;
    }
    case 'function_call':
      if (typeof item.name !== 'string') bad('item.name', "Missing required parameter: 'item.name'.");
      if (typeof item.arguments !== 'string')
        bad('item.arguments', "Missing required parameter: 'item.arguments'.");
      return;
    case 'function_call_output':
      if (typeof item.call_id !== 'string')
        bad('item.call_id', "Missing required parameter: 'item.call_id'.");
      if (typeof item.output !== 'string') bad('item.output', "Missing required parameter: 'item.output'.");
      return;
    default:
      bad(
        'item.type',
        `Invalid value: '${String(item.type)}'. Supported values are: 'message', 'function_call', and 'function_call_output'.`,
      );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------------------

/** The fake server. Create with {@link startFakeRealtime}; always {@link close} it (e.g. in `afterEach`). */
export class FakeRealtime {
  /** `127.0.0.1`. */
  readonly host = '127.0.0.1';
  /** Every upgrade request, accepted or refused, in order. */
  readonly attempts: ConnectionAttempt[] = [];
  /** Every accepted connection, in order. */
  readonly connections: FakeRealtimeConnection[] = [];
  /** Errors thrown by {@link onResponse}: assert it empty so a broken responder cannot hide. */
  readonly responderErrors: unknown[] = [];
  /** TLS handshakes that failed (e.g. a client that does not trust {@link ca}). */
  readonly tlsErrors: Error[] = [];
  /**
   * Called for every client `response.create` (except while another response is active, which is refused
   * like the real API). Default none: the test answers with `conn.startResponse({ request })`.
   */
  onResponse: FakeResponder | undefined;
  /**
   * While true, `session.update` is applied but not confirmed (no `session.updated`) until the test
   * calls {@link FakeRealtimeConnection.releaseSessionUpdates}: a model that is slow to be ready.
   */
  holdSessionUpdates = false;
  private readonly sockets = new Set<Socket>();
  private readonly refusals: Array<{ status: number; body: unknown }> = [];
  private readonly unclaimed: FakeRealtimeConnection[] = [];
  private readonly connectionWaiters: Array<{
    resolve(c: FakeRealtimeConnection): void;
    reject(e: Error): void;
  }> = [];
  private readonly idleWaiters = new Set<() => void>();
  private readonly wss = new WebSocketServer({ noServer: true });
  private closing: Promise<void> | undefined;

  /** @internal Use {@link startFakeRealtime}. */
  constructor(
    private readonly server: Server,
    readonly port: number,
    readonly apiKey: string,
    readonly ca: string,
    private readonly sessionDefaults: Partial<RealtimeSessionCreateRequest> | undefined,
    onResponse: FakeResponder | undefined,
  ) {
    this.onResponse = onResponse;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) for (const wake of [...this.idleWaiters]) wake();
      });
    });
    server.on('tlsClientError', (error: Error) => this.tlsErrors.push(error));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    // Plain HTTPS requests are not part of the Realtime surface.
    server.on('request', (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(openAiError('Not found. Connect with a WebSocket upgrade.', null)));
    });
  }

  /** `baseURL` for `new OpenAI({ baseURL })`: `https://127.0.0.1:PORT/v1`. */
  get baseURL(): string {
    return `https://${this.host}:${this.port}/v1`;
  }

  /** `endpoint` for `new AzureOpenAI({ endpoint })`: `https://127.0.0.1:PORT`. */
  get azureEndpoint(): string {
    return `https://${this.host}:${this.port}`;
  }

  /** `ws` options that trust the fake: pass as `new OpenAIRealtimeWS({ model, options: fake.wsOptions })`. */
  get wsOptions(): { ca: string } {
    return { ca: this.ca };
  }

  /** Open TCP sockets on the server side (0 once every client has gone). */
  get openSockets(): number {
    return this.sockets.size;
  }

  /**
   * Resolves with the oldest accepted connection not yet handed out by this method, waiting for one if
   * needed; so `nextConnection()` may be called before or after the client connects.
   */
  nextConnection(opts: WaitOptions = {}): Promise<FakeRealtimeConnection> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closing) return Promise.reject(new Error('the fake Realtime server is closed'));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (c: FakeRealtimeConnection) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.connectionWaiters.splice(this.connectionWaiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a Realtime connection`));
      }, timeoutMs);
      this.connectionWaiters.push(waiter);
    });
  }

  /**
   * Answers the next `count` (default 1) upgrade requests with HTTP `status` (and an OpenAI-style error
   * body unless `body` is given), before any other check: e.g. 429, 500, 503 to test reconnect logic.
   */
  refuseNext(status: number, opts: { count?: number; body?: unknown } = {}): void {
    const body = opts.body ?? openAiError(`Fake refusal (${status} ${STATUS_CODES[status] ?? ''}).`, null);
    for (let i = 0; i < (opts.count ?? 1); i++) this.refusals.push({ status, body });
  }

  /** Resolves once the server has no open sockets (e.g. after a client closed its connection). */
  idle(opts: WaitOptions = {}): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms: ${this.sockets.size} socket(s) still open`));
      }, timeoutMs);
      this.idleWaiters.add(wake);
    });
  }

  /** Terminates every connection and stops listening. Idempotent; resolves when nothing is left open. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const waiter of this.connectionWaiters.splice(0)) {
        waiter.reject(new Error('the fake Realtime server closed'));
      }
      for (const client of this.wss.clients) client.terminate();
      for (const socket of this.sockets) socket.destroy();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      await this.idle();
    })();
    return this.closing;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    const query = Object.fromEntries(url.searchParams);
    const flavor =
      url.pathname === '/v1/realtime'
        ? 'openai'
        : url.pathname === '/openai/realtime' || url.pathname === '/openai/v1/realtime'
          ? 'azure'
          : 'unknown';
    const authorization = req.headers.authorization;
    const apiKeyHeader = req.headers['api-key'];
    let auth: ConnectionAttempt['auth'] = 'none';
    let presented: string | undefined;
    if (typeof authorization === 'string' && /^Bearer /i.test(authorization)) {
      auth = 'bearer';
      presented = authorization.slice('Bearer '.length).trim();
    } else if (typeof apiKeyHeader === 'string') {
      auth = 'api-key';
      presented = apiKeyHeader;
    }
    const authorized = presented === this.apiKey;
    const callId = query.call_id;
    const model = flavor === 'azure' ? query.deployment : query.model;

    let status = 101;
    let body: unknown;
    const refusal = this.refusals.shift();
    if (refusal) {
      ({ status, body } = refusal);
    } else if (this.closing) {
      status = 503;
      body = openAiError('The fake Realtime server is shutting down.', null);
    } else if (flavor === 'unknown') {
      status = 404;
      body = openAiError(`Invalid URL (GET ${url.pathname})`, null);
    } else if (!authorized) {
      status = 401;
      body =
        auth === 'none'
          ? openAiError('Missing bearer or basic authentication in header', null)
          : openAiError(`Incorrect API key provided: ${redact(presented ?? '')}.`, 'invalid_api_key');
    } else if (req.headers['openai-beta']) {
      // The beta header selects the pre-GA protocol on the real service; this fake only speaks GA.
      status = 400;
      body = openAiError(
        `This fake speaks the GA protocol only (got OpenAI-Beta: ${req.headers['openai-beta']}).`,
        null,
      );
    } else if (!callId && !model) {
      status = 400;
      body = openAiError(
        `Missing required parameter: '${flavor === 'azure' ? 'deployment' : 'model'}'.`,
        null,
      );
    } else if (flavor === 'azure' && !callId && !query['api-version']) {
      status = 400;
      body = openAiError("Missing required query parameter: 'api-version'.", null);
    }

    const attempt: ConnectionAttempt = {
      path: url.pathname,
      query,
      flavor,
      model,
      apiVersion: query['api-version'],
      callId,
      auth,
      authorized,
      status,
      headers: req.headers,
      at: performance.now(),
    };
    this.attempts.push(attempt);

    if (status !== 101) {
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
          'Content-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(text)}\r\n` +
          'Connection: close\r\n\r\n' +
          text,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new FakeRealtimeConnection(ws, attempt, this, this.sessionDefaults);
      this.connections.push(conn);
      const waiter = this.connectionWaiters.shift();
      if (waiter) waiter.resolve(conn);
      else this.unclaimed.push(conn);
    });
  }
}

function openAiError(message: string, code: string | null): unknown {
  return { error: { message, type: 'invalid_request_error', param: null, code } };
}

/** OpenAI's own redaction style: first 3 and last 4 characters. */
function redact(key: string): string {
  return key.length > 8 ? `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}` : '****';
}

/** Starts a fake Realtime server on 127.0.0.1, on a random port, over TLS. */
export async function startFakeRealtime(options: FakeRealtimeOptions = {}): Promise<FakeRealtime> {
  const tls = options.tls ?? (await sharedLocalhostTls());
  const server = createServer({ cert: tls.cert, key: tls.key });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return new FakeRealtime(
    server,
    port,
    options.apiKey ?? FAKE_REALTIME_API_KEY,
    tls.ca,
    options.sessionDefaults,
    options.onResponse,
  );
}

/**
 * A ready-made text-mode {@link FakeResponder}: replies `You said: <last user text>` as `output_text`
 * (or `I heard nothing.` when the conversation has no user text yet).
 */
export const textEchoResponder: FakeResponder = (_conn, response, context) => {
  response.text(
    context.lastUserText === undefined ? 'I heard nothing.' : `You said: ${context.lastUserText}`,
  );
};
