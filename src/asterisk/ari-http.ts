/**
 * The REST half of the ARI client: one `request()` on Node's global fetch, with per-instance Basic
 * credentials, ARI's query conventions, a time limit per request and Asterisk's error bodies mapped
 * to the typed errors of `src/errors.ts`.
 */

import { Agent, buildConnector, fetch } from 'undici';
import {
  AriConflictError,
  AriHttpError,
  AriNotFoundError,
  AriStateError,
  AsteramiskError,
  AsteriskConnectionError,
  AuthenticationError,
  ConfigError,
  TimeoutError,
} from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { type AsteriskTlsOptions, type TlsConnectOptions, tlsConnectOptions, tlsErrorOf } from './tls.js';

/** HTTP methods ARI uses. */
export type AriHttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A scalar query value; `undefined` and `null` leave the parameter out. */
export type AriQueryScalar = string | number | boolean;

/**
 * A query value. An array is sent as **one** comma-separated parameter: Asterisk splits
 * `allowMultiple` parameters (`media`, `channel`, `eventSource`…) on commas, and for a repeated
 * key it keeps only the last occurrence (`media=a&media=b` plays only `b`).
 */
export type AriQueryValue = AriQueryScalar | readonly AriQueryScalar[] | undefined | null;

/** Options of one ARI request. */
export interface AriRequestOptions {
  /** Query parameters, named as ARI names them (`reason_code`, `external_host`, `appArgs`…). */
  query?: Readonly<Record<string, AriQueryValue>>;
  /** A JSON body, e.g. `{ variables: { MY_VAR: 'x' } }`. */
  body?: unknown;
  /** Time limit of this request in ms; overrides the instance default. */
  timeoutMs?: number;
  /** `buffer` returns the body as a Buffer whatever its type (recording files). Default `auto`. */
  responseType?: 'auto' | 'buffer';
  /** Aborts the request (an abort that is not the time limit rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** The request function the resource classes are built on. */
export type AriRequestFn = <T>(
  method: AriHttpMethod,
  path: string,
  options?: AriRequestOptions,
) => Promise<T>;

/** The `Authorization` header value for ARI's Basic authentication. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** Options of {@link AriHttp}. */
export interface AriHttpOptions {
  /** `http(s)://host:port`, optionally ending in `/ari`. */
  url: string;
  /** Basic credentials: `username`/`password`, or a ready `authorization` header value. */
  username?: string;
  password?: string;
  /** A ready `Authorization` header value (see {@link basicAuthorization}); wins over username/password. */
  authorization?: string;
  /** Default time limit per request in ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Most connections kept open to Asterisk at once. Default 16. */
  maxConnections?: number;
  /**
   * For an `https://` url: CAs trusted in addition to Node's roots, and the name the certificate
   * must carry when it is not the url's host. The certificate is always verified.
   */
  tls?: AsteriskTlsOptions;
  logger?: Logger;
}

/**
 * What a request observer gets once per request (for metrics): the method, the path as requested
 * (with ids: template it before using it as a label), the HTTP status (0 when no answer came) and
 * the time taken in seconds.
 */
export type AriRequestObserver = (info: {
  method: AriHttpMethod;
  path: string;
  status: number;
  seconds: number;
}) => void;

/** Default time limit of one REST request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Normalises a user-given URL to ARI's base, `http(s)://host:port/ari` (no trailing slash: ARI
 * answers 404 to URLs that end with one). `ws(s)://` is accepted and mapped to `http(s)://`.
 */
export function ariBaseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', `Invalid ARI url ${JSON.stringify(url)}: expected http(s)://host:port`);
  }
  if (parsed.protocol === 'ws:') parsed.protocol = 'http:';
  else if (parsed.protocol === 'wss:') parsed.protocol = 'https:';
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError('url', `Invalid ARI url protocol ${parsed.protocol}: use http: or https:`);
  }
  // Credentials inside the URL would end up in logs and error messages; they are passed separately.
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  let path = parsed.pathname.replace(/\/+$/, '');
  if (!path.endsWith('/ari')) path = `${path}/ari`;
  parsed.pathname = path;
  return parsed;
}

/** Encodes one path segment (a channel id, a recording name, `PJSIP` / `alice`). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/**
 * Builds `?a=1&b=x,y` from query options. Values are percent-encoded with encodeURIComponent, so a
 * space is `%20`, never `+`: Asterisk decodes `+` as a space, and a literal `+` (e.g. a caller
 * number `+1555…`) must survive as `%2B`.
 */
export function encodeQuery(query: Readonly<Record<string, AriQueryValue>> | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.map(String).join(',') : String(value);
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * Extracts Asterisk's message from an error body: `{"message":…}`, `{"error":…}` (e.g. `500
 * {"error":"Allocation failed"}`), or the text of an HTML page (the HTTP server answers HTML 404
 * while ARI is still loading after a restart, and HTML 400 for a websocket upgrade without `app`).
 */
export function errorMessageFromBody(body: string, statusText: string): string {
  const trimmed = body.trim();
  if (trimmed === '') return statusText;
  if (trimmed.startsWith('{') || trimmed.startsWith('"')) {
    try {
      let parsed: unknown = JSON.parse(trimmed);
      // Seen in a capture: a JSON body that is itself a JSON string of the object.
      if (typeof parsed === 'string') parsed = JSON.parse(parsed);
      if (typeof parsed === 'object' && parsed !== null) {
        const record = parsed as Record<string, unknown>;
        if (typeof record.message === 'string') return record.message;
        if (typeof record.error === 'string') return record.error;
      }
    } catch {
      // Not JSON after all: fall through to the text handling.
    }
  }
  if (/<html|<!doctype/i.test(trimmed)) {
    const paragraph = /<p>([\s\S]*?)<\/p>/i.exec(trimmed)?.[1];
    const title = /<title>([\s\S]*?)<\/title>/i.exec(trimmed)?.[1];
    const text = (paragraph ?? title ?? trimmed.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
    return text || statusText;
  }
  const flat = trimmed.replace(/\s+/g, ' ');
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}

/**
 * Maps an HTTP error status to the typed error: 401 → {@link AuthenticationError}, 404 →
 * {@link AriNotFoundError}, 409 → {@link AriConflictError}, 422 → {@link AriStateError}, anything
 * else → {@link AriHttpError}.
 */
export function ariErrorFromStatus(
  status: number,
  method: string,
  path: string,
  asteriskMessage: string,
): AriHttpError | AuthenticationError {
  switch (status) {
    case 401:
      return new AuthenticationError(
        `ARI refused the credentials (401 ${asteriskMessage}) on ${method} ${path}: check the ARI user and password (ari.conf)`,
      );
    case 404:
      return new AriNotFoundError(status, method, path, asteriskMessage);
    case 409:
      return new AriConflictError(status, method, path, asteriskMessage);
    case 422:
      return new AriStateError(status, method, path, asteriskMessage);
    default:
      return new AriHttpError(status, method, path, asteriskMessage);
  }
}

/** Node's fetch wraps socket errors as `TypeError('fetch failed')` with the system error as `cause`. */
function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (typeof current === 'object' && current !== null && 'code' in current) {
      const code = (current as { code: unknown }).code;
      if (typeof code === 'string') return code;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

/**
 * undici's TLS connector with our `ca`, and our `servername` forced: undici otherwise prefers the
 * request's host name over the connector's `servername`, and Node checks the certificate against
 * the servername it connected with.
 */
function tlsConnector(tls: TlsConnectOptions): buildConnector.connector {
  const connect = buildConnector({
    ...(tls.ca ? { ca: tls.ca } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
    timeout: 10_000,
  });
  const forced = tls.servername;
  return (options, callback) =>
    connect(forced === undefined ? options : { ...options, servername: forced }, callback);
}

function isJsonContentType(contentType: string | null): boolean {
  return contentType !== null && /\bjson\b/i.test(contentType);
}

/**
 * ARI's REST interface for one Asterisk and one ARI user. Instances share nothing: two instances
 * with different credentials talk to two servers in one process.
 */
export class AriHttp {
  /** The ARI base URL, `http(s)://host:port/ari`, without credentials. */
  readonly baseUrl: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  /**
   * A connection pool of our own, bounded: Node's default pool opens a connection per concurrent
   * request without limit, and Asterisk's HTTP server refuses sessions beyond http.conf's
   * `sessionlimit` (100 by default). Requests beyond the bound queue on kept-alive connections.
   */
  #pool: Agent | undefined;
  readonly #maxConnections: number;
  /** TLS options of an `https://` base URL; undefined for `http://`. */
  readonly #tls: TlsConnectOptions | undefined;
  readonly #observers = new Set<AriRequestObserver>();

  constructor(options: AriHttpOptions) {
    this.baseUrl = ariBaseUrl(options.url).toString();
    // Private field: not enumerable, not shown by util.inspect or JSON.stringify.
    this.#authorization =
      options.authorization ?? basicAuthorization(options.username ?? '', options.password ?? '');
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#logger = options.logger ?? silentLogger;
    this.#maxConnections = options.maxConnections ?? 16;
    const base = new URL(this.baseUrl);
    this.#tls = base.protocol === 'https:' ? tlsConnectOptions(base.hostname, options.tls) : undefined;
  }

  /** Closes the pooled connections (requests still running finish first). Idempotent; a later request opens a new pool. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close().catch(() => {});
  }

  /** Adds a request observer (metrics); returns the function that removes it. */
  observe(observer: AriRequestObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  #report(method: AriHttpMethod, path: string, status: number, started: number): void {
    if (this.#observers.size === 0) return;
    const info = { method, path, status, seconds: (performance.now() - started) / 1000 };
    for (const observer of this.#observers) {
      try {
        observer(info);
      } catch (error) {
        this.#logger.warn({ err: String(error) }, 'an ARI request observer threw');
      }
    }
  }

  #connections(): Agent {
    this.#pool ??= new Agent({
      connections: this.#maxConnections,
      keepAliveTimeout: 4_000,
      ...(this.#tls ? { connect: tlsConnector(this.#tls) } : {}),
    });
    return this.#pool;
  }

  /**
   * Sends one ARI request. `path` is relative to `/ari` and starts with `/` (`/channels/123/answer`);
   * encode ids with {@link seg}.
   *
   * @returns the parsed JSON body; `undefined` for 204 or an empty body; a Buffer for a non-JSON
   *   body (e.g. `audio/wav`) or with `responseType: 'buffer'`.
   * @throws {AriHttpError} (or {@link AriNotFoundError}, {@link AriConflictError},
   *   {@link AriStateError}) for an HTTP error, {@link AuthenticationError} for 401,
   *   {@link TimeoutError} when the time limit passes, {@link AsteriskConnectionError} when
   *   Asterisk cannot be reached.
   */
  async request<T>(method: AriHttpMethod, path: string, options: AriRequestOptions = {}): Promise<T> {
    const url = `${this.baseUrl}${path.startsWith('/') ? path : `/${path}`}${encodeQuery(options.query)}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeoutSignal = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeoutSignal, options.signal]) : timeoutSignal;
    const headers: Record<string, string> = {
      Authorization: this.#authorization,
      Accept: 'application/json',
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.body);
    }

    const started = performance.now();
    let response: Awaited<ReturnType<typeof fetch>>;
    let raw: Buffer;
    try {
      response = await fetch(url, { method, headers, body, signal, dispatcher: this.#connections() });
      // The body read is covered by the same signal, so a server that stalls mid-body times out too.
      raw = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      this.#report(method, path, 0, started);
      throw this.#transportError(error, method, path, timeoutMs, timeoutSignal, options.signal);
    }
    this.#report(method, path, response.status, started);
    const elapsedMs = Math.round(performance.now() - started);
    this.#logger.debug({ method, path, status: response.status, elapsedMs }, 'ARI request');

    if (response.status >= 400) {
      const message = errorMessageFromBody(raw.toString('utf8'), response.statusText);
      throw ariErrorFromStatus(response.status, method, path, message);
    }
    if (options.responseType === 'buffer') return raw as T;
    if (response.status === 204 || raw.length === 0) return undefined as T;
    const contentType = response.headers.get('content-type');
    if (isJsonContentType(contentType) || contentType === null) {
      try {
        return JSON.parse(raw.toString('utf8')) as T;
      } catch (error) {
        // No content type and not JSON: hand back the bytes rather than fail.
        if (contentType === null) return raw as T;
        throw new AsteramiskError(
          `ARI ${method} ${path} answered ${response.status} with a body that is not valid JSON`,
          { cause: error, code: 'ARI_BAD_RESPONSE' },
        );
      }
    }
    return raw as T;
  }

  #transportError(
    error: unknown,
    method: string,
    path: string,
    timeoutMs: number,
    timeoutSignal: AbortSignal,
    userSignal: AbortSignal | undefined,
  ): Error {
    if (timeoutSignal.aborted) {
      return new TimeoutError(`ARI ${method} ${path} got no answer within ${timeoutMs} ms`, { cause: error });
    }
    if (userSignal?.aborted) {
      const reason: unknown = userSignal.reason;
      return reason instanceof Error ? reason : new AsteramiskError(`ARI ${method} ${path} was aborted`);
    }
    const host = new URL(this.baseUrl).host;
    const tlsError = this.#tls
      ? tlsErrorOf(error, `ARI at ${host}`, this.#tls.servername ?? new URL(this.baseUrl).hostname)
      : undefined;
    if (tlsError) return tlsError;
    const code = networkErrorCode(error);
    const why = code === 'ECONNREFUSED' ? 'connection refused' : (code ?? 'network error');
    return new AsteriskConnectionError(
      `Cannot reach Asterisk ARI at ${host} (${why}) for ${method} ${path}`,
      {
        cause: error,
      },
    );
  }
}
