/**
 * The REST half of the ARI client: one `request()` on an undici connection pool, with per-instance
 * Basic credentials, ARI's query conventions, a time limit per request and Asterisk's error bodies
 * mapped to the typed errors of `src/errors.ts`.
 *
 * Requests go straight to the pool's `dispatch()` with a small handler object: no fetch
 * Request/Response/Headers objects, no AbortSignal per request, no body stream. A profile of the
 * real-PBX bench showed fetch's per-request machinery among the library's largest costs.
 */

import { buildConnector, type Dispatcher, Pool } from 'undici';
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
  /** Most connections kept open to Asterisk at once. Default {@link DEFAULT_MAX_CONNECTIONS}. */
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

/**
 * Default bound of the connection pool. Requests beyond it wait for a free connection: with
 * thousands of calls against a slow peer the bound, not the peer, sets every request's latency
 * (bench/ivr-load.ts, 2000 simulated calls: key → next request p50 65 ms with 16, 3 ms with 64).
 * 16 keeps several clients under Asterisk's default http.conf `sessionlimit` of 100.
 */
export const DEFAULT_MAX_CONNECTIONS = 16;

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

/** The system or undici error code, looked up through a few levels of `cause`. */
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
  #pool: Pool | undefined;
  /** `origin` of the pool, e.g. `http://127.0.0.1:8088`, and the base path, `/ari`. */
  readonly #origin: string;
  readonly #basePath: string;
  /** Request headers, built once: undici reads them and never changes them. */
  readonly #headers: readonly string[];
  readonly #jsonHeaders: readonly string[];
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
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const base = new URL(this.baseUrl);
    this.#tls = base.protocol === 'https:' ? tlsConnectOptions(base.hostname, options.tls) : undefined;
    this.#origin = base.origin;
    this.#basePath = base.pathname;
    this.#headers = ['authorization', this.#authorization, 'accept', 'application/json'];
    this.#jsonHeaders = [...this.#headers, 'content-type', 'application/json'];
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

  #connections(): Pool {
    this.#pool ??= new Pool(this.#origin, {
      connections: this.#maxConnections,
      keepAliveTimeout: 4_000,
      // The time limit is ours (one timer per request, covering the wait for a connection too).
      headersTimeout: 0,
      bodyTimeout: 0,
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
    const query = options.query ? encodeQuery(options.query) : '';
    const fullPath = `${this.#basePath}${path.charCodeAt(0) === 47 ? path : `/${path}`}${query}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const body = options.body !== undefined ? JSON.stringify(options.body) : undefined;

    const started = performance.now();
    const exchange = new Exchange(timeoutMs, options.signal);
    if (!exchange.settled) {
      this.#connections().dispatch(
        {
          origin: this.#origin,
          path: fullPath,
          method,
          headers: (body === undefined ? this.#headers : this.#jsonHeaders) as string[],
          body,
        },
        exchange,
      );
    }
    let raw: Buffer;
    try {
      raw = await exchange.promise;
    } catch (error) {
      this.#report(method, path, 0, started);
      throw this.#transportError(error, method, path, timeoutMs, exchange, options.signal);
    }
    const status = exchange.status;
    this.#report(method, path, status, started);
    if (isDebugEnabled(this.#logger)) {
      const elapsedMs = Math.round(performance.now() - started);
      this.#logger.debug({ method, path, status, elapsedMs }, 'ARI request');
    }

    if (status >= 400) {
      const message = errorMessageFromBody(raw.toString('utf8'), exchange.statusText);
      throw ariErrorFromStatus(status, method, path, message);
    }
    if (options.responseType === 'buffer') return raw as T;
    if (status === 204 || raw.length === 0) return undefined as T;
    const contentType = exchange.contentType;
    if (contentType === null || isJsonContentType(contentType)) {
      try {
        return JSON.parse(raw.toString('utf8')) as T;
      } catch (error) {
        // No content type and not JSON: hand back the bytes rather than fail.
        if (contentType === null) return raw as T;
        throw new AsteramiskError(
          `ARI ${method} ${path} answered ${status} with a body that is not valid JSON`,
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
    exchange: Exchange,
    userSignal: AbortSignal | undefined,
  ): Error {
    if (exchange.timedOut) {
      return new TimeoutError(`ARI ${method} ${path} got no answer within ${timeoutMs} ms`, { cause: error });
    }
    if (exchange.userAborted && userSignal) {
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

/** pino's level check when the logger has one; any other logger is asked every time. */
function isDebugEnabled(logger: Logger): boolean {
  const check = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof check === 'function' ? check.call(logger, 'debug') : true;
}

/** Why an exchange ended before its answer: our time limit, or the caller's signal. */
class ExchangeAborted extends Error {}

function onExchangeTimeout(exchange: Exchange): void {
  exchange.timedOut = true;
  exchange.fail(new ExchangeAborted('time limit'));
}

/**
 * One request in flight: undici's dispatch handler (the callback form, which undici calls
 * directly), collecting the status, the content type and the body, with the request's own timer.
 * Settles its promise once; whatever undici reports after that is ignored.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly promise: Promise<Buffer>;
  status = 0;
  statusText = '';
  contentType: string | null = null;
  settled = false;
  timedOut = false;
  userAborted = false;
  #resolve!: (body: Buffer) => void;
  #reject!: (error: unknown) => void;
  #abort: ((error?: Error) => void) | undefined;
  #reason: Error | undefined;
  #chunks: Buffer[] | undefined;
  #first: Buffer | undefined;
  #length = 0;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  constructor(timeoutMs: number, signal: AbortSignal | undefined) {
    this.promise = new Promise<Buffer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (signal) {
      if (signal.aborted) {
        this.userAborted = true;
        this.fail(signal.reason);
        return;
      }
      this.#signal = signal;
      this.#onAbort = () => {
        this.userAborted = true;
        this.fail(signal.reason);
      };
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.#timer = setTimeout(onExchangeTimeout, timeoutMs, this);
    this.#timer.unref();
  }

  /** Settles with an error and aborts the request at undici (now, or when it gets a connection). */
  fail(error: unknown): void {
    if (this.settled) return;
    this.#finish();
    this.#reason = error instanceof Error ? error : new ExchangeAborted('aborted');
    this.#abort?.(this.#reason);
    this.#reject(error);
  }

  #finish(): void {
    this.settled = true;
    clearTimeout(this.#timer);
    if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.settled) {
      abort(this.#reason ?? new ExchangeAborted('aborted'));
      return;
    }
    this.#abort = abort;
    // A retried request (undici may retry an idempotent one) starts its body again.
    this.#chunks = undefined;
    this.#first = undefined;
    this.#length = 0;
  }

  onHeaders(status: number, headers: Buffer[], _resume: () => void, statusText: string): boolean {
    if (status < 200) return true; // 1xx: the real answer follows
    this.status = status;
    this.statusText = statusText;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 12 && name.toString('latin1').toLowerCase() === 'content-type') {
        this.contentType = headers[i + 1]!.toString('latin1');
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#first === undefined) this.#first = chunk;
    else if (this.#chunks === undefined) this.#chunks = [this.#first, chunk];
    else this.#chunks.push(chunk);
    this.#length += chunk.length;
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    this.#finish();
    const body = this.#chunks ? Buffer.concat(this.#chunks, this.#length) : (this.#first ?? EMPTY);
    this.#resolve(body);
  }

  onError(error: Error): void {
    if (this.settled) return;
    this.#finish();
    this.#reject(error);
  }
}

const EMPTY = Buffer.alloc(0);
