import type { ClientRequest, IncomingMessage } from 'node:http';
import OpenAI, { AzureOpenAI } from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { ClientOptions as WebSocketOptions } from 'ws';
import { ConfigError, RealtimeConnectionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { publishAudioLatency } from './agent-diagnostics.js';
import type {
  RealtimeEvent,
  RealtimeSessionConfig,
  RealtimeTransport,
  RealtimeTransportFactory,
} from './realtime-transport.js';

/** What the OpenAI transport is built from. */
export interface OpenAIRealtimeOptions {
  /** An OpenAI or AzureOpenAI client; default: built from `apiKey`/`baseURL` or the Azure environment. */
  client?: unknown;
  apiKey?: string | undefined;
  baseURL?: string | undefined;
  websocket?: WebSocketOptions | undefined;
  /** Environment to read OPENAI_* and AZURE_OPENAI_* from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Builds the OpenAI client for realtime sessions, checking credentials now (before any call is
 * touched): a caller-supplied client is used as it is; AZURE_OPENAI_ENDPOINT selects Azure (key
 * AZURE_OPENAI_API_KEY or OPENAI_API_KEY, version OPENAI_API_VERSION); otherwise OpenAI with
 * OPENAI_API_KEY and, when set, OPENAI_BASE_URL.
 *
 * @throws {ConfigError} when no API key is available.
 */
export function openAIRealtimeTransportFactory(options: OpenAIRealtimeOptions): RealtimeTransportFactory {
  const client = resolveClient(options);
  return ({ logger }) => new OpenAIRealtimeTransport(client, options.websocket, logger);
}

function resolveClient(options: OpenAIRealtimeOptions): OpenAI {
  if (options.client !== undefined) {
    if (!(options.client instanceof OpenAI))
      throw new ConfigError('connection.client', 'connection.client must be an OpenAI or AzureOpenAI client');
    return options.client;
  }
  const env = options.env ?? process.env;
  const azureEndpoint = env.AZURE_OPENAI_ENDPOINT;
  if (azureEndpoint) {
    const apiKey = env.AZURE_OPENAI_API_KEY ?? options.apiKey;
    if (!apiKey) throw missingKey('AZURE_OPENAI_API_KEY (or OPENAI_API_KEY)');
    return new AzureOpenAI({
      endpoint: azureEndpoint,
      apiKey,
      apiVersion: env.OPENAI_API_VERSION ?? '2025-04-01-preview',
    });
  }
  if (!options.apiKey?.trim()) throw missingKey('OPENAI_API_KEY');
  const baseURL = options.baseURL ?? env.OPENAI_BASE_URL;
  return new OpenAI({ apiKey: options.apiKey, ...(baseURL ? { baseURL } : {}) });
}

function missingKey(variable: string): ConfigError {
  return new ConfigError(
    'openaiApiKey',
    `Config openaiApiKey is missing; connectOpenAIAgent needs it: set ${variable} or pass openaiApiKey ` +
      '(or connection.client) before the call is touched.',
  );
}

/**
 * The error of an HTTP refusal of the upgrade: the status, the model, and the service's reason
 * from an OpenAI-style JSON body (`{ error: { message } }`), with the key taken out should the
 * reason quote it.
 */
function refusal(
  model: string,
  status: number,
  body: string,
  apiKey: string | null,
): RealtimeConnectionError {
  let reason: unknown;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    reason = typeof parsed.error === 'object' ? parsed.error?.message : (parsed.error ?? parsed.message);
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  let detail = typeof reason === 'string' && reason.trim() !== '' ? `: ${reason.trim()}` : '';
  if (apiKey) detail = detail.split(apiKey).join('[redacted]');
  return new RealtimeConnectionError(
    `the realtime model connection was refused (HTTP ${status}, model ${JSON.stringify(model)})${detail}`,
  );
}

/** The parts of a GA server event the transport reads. */
interface ServerEvent {
  type: string;
  response_id?: string;
  item_id?: string;
  delta?: string;
  transcript?: string;
  text?: string;
  call_id?: string;
  name?: string;
  arguments?: string;
  response?: { id?: string; status?: string; usage?: Usage };
  error?: { message?: string; code?: string | null; type?: string };
}

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  total_tokens?: number;
  input_token_details?: { audio_tokens?: number };
  output_token_details?: { audio_tokens?: number };
}

/**
 * The OpenAI Realtime GA protocol over the openai package's WebSocket client, with µ-law
 * (`audio/pcmu`) in and out. Works for OpenAI, any OPENAI_BASE_URL, and Azure.
 */
export class OpenAIRealtimeTransport implements RealtimeTransport {
  readonly #client: OpenAI;
  readonly #websocket: WebSocketOptions | undefined;
  readonly #logger: Logger;
  readonly #listeners = new Set<(event: RealtimeEvent) => void>();
  #rt: OpenAIRealtimeWS | undefined;
  #closed = false;

  constructor(client: OpenAI, websocket: WebSocketOptions | undefined, logger: Logger) {
    this.#client = client;
    this.#websocket = websocket;
    this.#logger = logger;
  }

  async connect(config: RealtimeSessionConfig, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
    // No permessage-deflate unless asked for: base64 audio barely compresses, and inflating every
    // delta on libuv's thread pool would add latency that nothing here would see.
    const options = { options: { perMessageDeflate: false, ...this.#websocket } };
    const rt =
      this.#client instanceof AzureOpenAI
        ? await OpenAIRealtimeWS.azure(this.#client, { deploymentName: config.model, ...options })
        : await OpenAIRealtimeWS.create(this.#client, { model: config.model, ...options });
    this.#rt = rt;
    // Without an 'error' listener the SDK turns every error into an unhandled rejection.
    rt.on('error', (error) => {
      if (error.error === undefined) this.#logger.debug({ err: error.message }, 'Realtime socket error');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (error: unknown): void => {
          cleanup();
          reject(error);
        };
        const onAbort = (): void => fail(signal.reason);
        const onOpen = (): void => rt.send(sessionUpdate(config) as never);
        const onError = (error: Error): void =>
          fail(
            new RealtimeConnectionError(`the realtime model connection failed: ${error.message}`, {
              cause: error,
            }),
          );
        const onClose = (code: number): void =>
          fail(
            new RealtimeConnectionError(`the realtime model closed the connection during set-up (${code})`),
          );
        // An HTTP answer instead of the upgrade (a wrong key, an unknown model or deployment): the
        // service says why in its body, which ws would drop for "Unexpected server response: 404".
        const onRefused = (_request: ClientRequest, response: IncomingMessage): void => {
          let body = '';
          let settled = false;
          const refused = (): void => {
            if (settled) return;
            settled = true;
            const error = refusal(config.model, response.statusCode ?? 0, body, this.#client.apiKey);
            this.#logger.debug(
              { status: response.statusCode, err: error.message },
              'Realtime connection refused',
            );
            fail(error);
          };
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            if (body.length < 8192) body += chunk;
          });
          response.once('end', refused);
          response.once('close', refused);
        };
        const onEvent = (event: ServerEvent): void => {
          if (event.type === 'session.updated') {
            cleanup();
            resolve();
          } else if (event.type === 'error') {
            fail(
              new RealtimeConnectionError(`the realtime model refused the session: ${event.error?.message}`),
            );
          }
        };
        const cleanup = (): void => {
          signal.removeEventListener('abort', onAbort);
          rt.socket.off('open', onOpen);
          rt.socket.off('error', onError);
          rt.socket.off('close', onClose);
          rt.socket.off('unexpected-response', onRefused);
          rt.off('event', onEvent as never);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        rt.socket.on('open', onOpen);
        rt.socket.on('error', onError);
        rt.socket.on('close', onClose);
        rt.socket.on('unexpected-response', onRefused);
        rt.on('event', onEvent as never);
      });
    } catch (error) {
      this.close();
      throw error;
    }
    if (this.#closed) throw new RealtimeConnectionError('the realtime session was closed during set-up');
    rt.on('event', ((event: ServerEvent) => this.#onServerEvent(event)) as never);
    rt.socket.on('close', (code, reason) => {
      if (this.#closed) return;
      this.#closed = true;
      const why = reason.toString() || 'no reason';
      this.#emit({
        type: 'closed',
        error: new RealtimeConnectionError(`the realtime model connection closed (${code}, ${why})`),
      });
    });
  }

  appendAudio(ulaw: Uint8Array, arrivedAt?: number): void {
    const socket = this.#openSocket();
    if (!socket) return;
    const base64 = Buffer.from(ulaw.buffer, ulaw.byteOffset, ulaw.byteLength).toString('base64');
    // The hot path (50 frames a second per call): base64 needs no JSON escaping, so the event is
    // built as a string instead of going through JSON.stringify.
    socket.send(`{"type":"input_audio_buffer.append","audio":"${base64}"}`);
    if (arrivedAt !== undefined) publishAudioLatency('in', performance.now() - arrivedAt);
  }

  createResponse(options: { instructions?: string } = {}): void {
    this.#send({
      type: 'response.create',
      ...(options.instructions ? { response: { instructions: options.instructions } } : {}),
    });
  }

  cancelResponse(): void {
    this.#send({ type: 'response.cancel' });
  }

  truncate(itemId: string, audioEndMs: number): void {
    this.#send({
      type: 'conversation.item.truncate',
      item_id: itemId,
      content_index: 0,
      audio_end_ms: Math.max(0, Math.round(audioEndMs)),
    });
  }

  addUserText(text: string): void {
    this.#send({
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] },
    });
  }

  addToolResult(callId: string, output: string): void {
    this.#send({
      type: 'conversation.item.create',
      item: { type: 'function_call_output', call_id: callId, output },
    });
  }

  onEvent(listener: (event: RealtimeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    const socket = this.#rt?.socket;
    if (!socket) return;
    // terminate(), not close(): a caller who hung up must not keep a socket waiting for a close frame.
    socket.terminate();
  }

  #openSocket(): OpenAIRealtimeWS['socket'] | undefined {
    const socket = this.#rt?.socket;
    return !this.#closed && socket && socket.readyState === socket.OPEN ? socket : undefined;
  }

  #send(event: Record<string, unknown>): void {
    const socket = this.#openSocket();
    if (socket) socket.send(JSON.stringify(event));
  }

  #emit(event: RealtimeEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #onServerEvent(event: ServerEvent): void {
    const responseId = event.response_id ?? '';
    const itemId = event.item_id ?? '';
    switch (event.type) {
      case 'input_audio_buffer.speech_started':
        this.#emit({ type: 'speechStarted' });
        break;
      case 'input_audio_buffer.speech_stopped':
        this.#emit({ type: 'speechStopped' });
        break;
      case 'response.created':
        this.#emit({ type: 'responseStarted', responseId: event.response?.id ?? '' });
        break;
      case 'response.output_audio.delta':
        if (event.delta)
          this.#emit({
            type: 'audio',
            responseId,
            itemId,
            ulaw: Buffer.from(event.delta, 'base64'),
            receivedAt: performance.now(),
          });
        break;
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta':
        this.#emit({ type: 'assistantText', responseId, itemId, text: event.delta ?? '', final: false });
        break;
      case 'response.output_audio_transcript.done':
        this.#emit({ type: 'assistantText', responseId, itemId, text: event.transcript ?? '', final: true });
        break;
      case 'response.output_text.done':
        this.#emit({ type: 'assistantText', responseId, itemId, text: event.text ?? '', final: true });
        break;
      case 'conversation.item.input_audio_transcription.delta':
        this.#emit({ type: 'userTranscript', itemId, text: event.delta ?? '', final: false });
        break;
      case 'conversation.item.input_audio_transcription.completed':
        this.#emit({ type: 'userTranscript', itemId, text: event.transcript ?? '', final: true });
        break;
      case 'response.function_call_arguments.done':
        this.#emit({
          type: 'functionCall',
          responseId,
          callId: event.call_id ?? '',
          name: event.name ?? '',
          arguments: event.arguments ?? '',
        });
        break;
      case 'response.done': {
        const usage = event.response?.usage ?? {};
        this.#emit({
          type: 'responseDone',
          responseId: event.response?.id ?? '',
          status: event.response?.status ?? 'completed',
          usage: {
            inputTokens: usage.input_tokens ?? 0,
            outputTokens: usage.output_tokens ?? 0,
            totalTokens: usage.total_tokens ?? 0,
            inputAudioTokens: usage.input_token_details?.audio_tokens ?? 0,
            outputAudioTokens: usage.output_token_details?.audio_tokens ?? 0,
          },
        });
        break;
      }
      case 'error':
        this.#emit({
          type: 'error',
          message: event.error?.message ?? 'unknown error',
          ...(event.error?.code ? { code: event.error.code } : {}),
        });
        break;
      default:
        break;
    }
  }
}

/** The GA `session.update` for a call (µ-law both ways) or a text conversation. */
function sessionUpdate(config: RealtimeSessionConfig): Record<string, unknown> {
  const tools = config.tools.map((tool) => ({ type: 'function', ...tool }));
  const audio =
    config.modality === 'audio'
      ? {
          input: {
            format: { type: 'audio/pcmu' },
            // interrupt_response off: the session cancels and truncates itself, so that it can
            // ignore false barge-ins and tell the model how much of its answer was really heard.
            turn_detection: {
              type: config.turnDetection ?? 'server_vad',
              create_response: true,
              interrupt_response: false,
            },
            ...(config.inputTranscription ? { transcription: { model: config.inputTranscription } } : {}),
          },
          output: { format: { type: 'audio/pcmu' }, ...(config.voice ? { voice: config.voice } : {}) },
        }
      : { input: { turn_detection: null } };
  return {
    type: 'session.update',
    session: {
      type: 'realtime',
      model: config.model,
      instructions: config.instructions,
      output_modalities: [config.modality],
      audio,
      tools,
      tool_choice: 'auto',
    },
  };
}
