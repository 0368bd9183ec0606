/**
 * What the OpenAI TTS and STT engines share: resolving the API key up front (a missing key is a
 * ConfigError when the engine is created, not in the middle of a call), building the HTTP client, and
 * turning SDK errors into SpeechEngineError without ever echoing the key.
 */
import OpenAI, { APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ConfigError, SpeechEngineError } from '../errors.js';

/** Connection options common to the OpenAI engines. */
export interface OpenAiConnectionOptions {
  /** API key. Default: env `OPENAI_API_KEY`. Required one way or the other. */
  apiKey?: string;
  /** API base URL, e.g. `http://127.0.0.1:8080/v1` for a local server. Default: the SDK's (env `OPENAI_BASE_URL` or api.openai.com). */
  baseURL?: string;
  /** SDK retries on connection errors, 408, 409, 429 and 5xx (with backoff). Default 1: a caller is waiting. */
  maxRetries?: number;
  /** Per-request time limit in milliseconds. Default 30 000. */
  timeoutMs?: number;
}

/** Resolves the key (option, then env) or throws ConfigError naming the `openaiApiKey` field. */
export function resolveOpenAiKey(apiKey: string | undefined, engineLabel: string): string {
  const key = apiKey ?? process.env.OPENAI_API_KEY;
  if (key === undefined || key.trim() === '') {
    throw new ConfigError(
      'openaiApiKey',
      `Config openaiApiKey (OPENAI_API_KEY) is missing; the ${engineLabel} needs it: set OPENAI_API_KEY or pass ` +
        'openaiApiKey (apiKey) when creating the engine.',
    );
  }
  return key;
}

/** A configured OpenAI SDK client. */
export function createOpenAiClient(apiKey: string, options: OpenAiConnectionOptions): OpenAI {
  return new OpenAI({
    apiKey,
    ...(options.baseURL !== undefined && { baseURL: options.baseURL }),
    maxRetries: options.maxRetries ?? 1,
    timeout: options.timeoutMs ?? 30_000,
  });
}

/** Replaces the key, and anything shaped like an OpenAI key, with `[redacted]`. */
export function redactSecrets(text: string, apiKey: string): string {
  let out = text;
  if (apiKey.length >= 4) out = out.split(apiKey).join('[redacted]');
  return out.replace(/\bsk-[A-Za-z0-9_*.-]{4,}/g, '[redacted]');
}

/**
 * Converts an error of the OpenAI SDK into a SpeechEngineError whose message carries the HTTP status
 * and OpenAI's message (never the key). On abort, returns `signal.reason` instead, so callers see
 * their own cancellation.
 */
export function openAiFailure(engine: string, error: unknown, apiKey: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof SpeechEngineError) return error;
  let message: string;
  if (error instanceof APIUserAbortError) {
    message = 'request aborted';
  } else if (error instanceof APIConnectionTimeoutError) {
    message = 'request timed out';
  } else if (error instanceof APIError && error.status !== undefined) {
    const body = error.error as { message?: unknown } | undefined;
    const detail =
      typeof body?.message === 'string'
        ? body.message
        : error.message.replace(/^\d{3}\s+/, '') || 'no details';
    const code = error.code ? ` (${error.code})` : '';
    message = `HTTP ${error.status}${code}: ${detail}`;
  } else if (error instanceof APIError) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    message = `${error.message}${cause}`;
  } else {
    message = error instanceof Error ? error.message : String(error);
  }
  const safe = redactSecrets(message, apiKey);
  // Keep the SDK error as the cause unless it carries the key somewhere (OpenAI echoes part of a bad key).
  const raw =
    error instanceof Error ? `${error.message} ${JSON.stringify((error as APIError).error ?? '')}` : '';
  const cause = raw.includes(apiKey) || /\bsk-/.test(raw) ? new Error(safe) : error;
  return new SpeechEngineError(engine, safe, { cause });
}
