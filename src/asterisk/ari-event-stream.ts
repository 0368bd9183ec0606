/**
 * The events websocket of ARI (`/ari/events?app=…`), kept open for as long as the owner wants it:
 * one socket at a time, reconnection forever with capped exponential backoff and jitter, and a
 * ping/pong watchdog because a dead TCP peer (a host that vanished, a NAT that dropped state) is
 * otherwise only noticed after the kernel's keepalive, if ever.
 */

import WebSocket from 'ws';
import { AriHttpError, AsteriskConnectionError, AuthenticationError, ConfigError } from '../errors.js';
import { LogThrottle } from '../log-throttle.js';
import { type Logger, silentLogger } from '../logger.js';
import { ariBaseUrl, ariErrorFromStatus, errorMessageFromBody } from './ari-http.js';
import { backoffDelay } from './backoff.js';
import {
  type AsteriskTlsOptions,
  plainAtTlsPortHint,
  type TlsConnectOptions,
  tlsConnectOptions,
  tlsErrorOf,
} from './tls.js';

/** Reconnection delays: the first retry waits in [initialMs/2, initialMs], growing ×2 up to maxMs. */
export interface ReconnectOptions {
  initialMs: number;
  maxMs: number;
}

/** Default reconnection delays: a restarted Asterisk answers again after ~0.5 s. */
export const DEFAULT_RECONNECT: ReconnectOptions = { initialMs: 250, maxMs: 10_000 };
/** Default interval between websocket pings. */
export const DEFAULT_PING_INTERVAL_MS = 10_000;
/** Default time a pong may take before the connection counts as dead. */
export const DEFAULT_PONG_TIMEOUT_MS = 5_000;
/** Default time limit of the websocket opening handshake. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Why the socket went away. */
export interface AriDisconnectInfo {
  /** Websocket close code: 1006 when the connection dropped without a close frame (Asterisk restart). */
  code: number;
  reason: string;
}

/** Options of {@link AriEventStream}. */
export interface AriEventStreamOptions {
  /** `http(s)://host:port` (optionally ending in `/ari`); mapped to `ws(s)://host:port/ari/events`. */
  url: string;
  /** Value of the `Authorization` header (Basic credentials); never put in the URL, never logged. */
  authorization: string;
  /** Stasis application to register. */
  app: string;
  /** Receive every event of the system, not only those of the app's channels. */
  subscribeAll?: boolean;
  reconnect?: ReconnectOptions;
  /** Interval between pings in ms; 0 disables the watchdog. Default 10 000. */
  pingIntervalMs?: number;
  /** A ping without pong for this long (ms) means the connection is dead. Default 5 000. */
  pongTimeoutMs?: number;
  /** Time limit of one opening handshake in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** For an `https://` (so `wss://`) url: extra trusted CAs and the certificate's expected name. */
  tls?: AsteriskTlsOptions;
  logger?: Logger;
}

/** Callbacks through which the stream reports to its owner (the {@link AriClient}). */
export interface AriEventStreamHandlers {
  /** One text frame of the current socket. */
  onMessage(text: string): void;
  /** The open socket went away; a reconnection is scheduled unless `close()` was called. */
  onDisconnected(info: AriDisconnectInfo): void;
  /** A reconnection succeeded: the new socket is open and frames flow again. */
  onReopened(): void;
  /** Reconnection stopped for good (Asterisk refused the credentials). Called once. */
  onFatal(error: Error): void;
}

/** Where the stream is in its life. */
export type AriEventStreamState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed';

/** A websocket upgrade answered with an HTTP status instead of 101. */
class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly asteriskMessage: string,
  ) {
    super(`HTTP ${status}: ${asteriskMessage}`);
  }
}

const MAX_ERROR_BODY = 4096;

/**
 * Largest events-websocket frame accepted (ws's default is 100 MiB). ARI events are a few KB (a
 * channel snapshot with its variables); a text body is at most 1 KB on Asterisk 22. A frame over
 * this is a broken or hostile peer.
 */
export const MAX_EVENT_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * One ARI events websocket with reconnection. Frames of a replaced or stale socket are never
 * passed on: exactly one socket is current at any time, so no event is delivered twice.
 */
export class AriEventStream {
  /** The websocket URL without credentials (safe to log). */
  readonly url: string;
  readonly #authorization: string;
  readonly #handlers: AriEventStreamHandlers;
  readonly #reconnect: ReconnectOptions;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #logger: Logger;
  /** TLS options of a `wss://` URL; undefined for `ws://`. */
  readonly #tls: TlsConnectOptions | undefined;

  #state: AriEventStreamState = 'idle';
  /** The socket whose frames are delivered; undefined while (re)connecting. */
  #socket: WebSocket | undefined;
  /** A socket still in its opening handshake, so close() can abort it. */
  #pending: WebSocket | undefined;
  #connectPromise: Promise<void> | undefined;
  /** Number of the latest connect() attempt. */
  #connectSeq = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pongTimer: NodeJS.Timeout | undefined;
  #failedAttempts = 0;
  #binaryFrames = 0;
  readonly #binaryLog = new LogThrottle();

  constructor(options: AriEventStreamOptions, handlers: AriEventStreamHandlers) {
    if (!options.app) throw new ConfigError('app', 'An ARI app name is required');
    const base = ariBaseUrl(options.url);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.pathname = `${base.pathname}/events`;
    base.search = '';
    base.searchParams.set('app', options.app);
    if (options.subscribeAll) base.searchParams.set('subscribeAll', 'true');
    this.url = base.toString();
    this.#tls = base.protocol === 'wss:' ? tlsConnectOptions(base.hostname, options.tls) : undefined;
    this.#authorization = options.authorization;
    this.#handlers = handlers;
    this.#reconnect = options.reconnect ?? DEFAULT_RECONNECT;
    this.#pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Binary frames received and dropped (ARI sends only text frames). */
  get binaryFramesDropped(): number {
    return this.#binaryFrames;
  }

  /** The current state. */
  get state(): AriEventStreamState {
    return this.#state;
  }

  /**
   * Opens the socket. Resolves once it is open; rejects with {@link AuthenticationError} on 401 and
   * {@link AsteriskConnectionError} when Asterisk cannot be reached or refuses the upgrade. The
   * first connection is not retried, so a wrong host or password shows at once.
   */
  connect(): Promise<void> {
    if (this.#state === 'open' || this.#state === 'reconnecting') return Promise.resolve();
    if (this.#connectPromise) return this.#connectPromise;
    this.#state = 'connecting';
    // A close() (or a later connect()) makes this attempt stale; its outcome must not touch state.
    const seq = ++this.#connectSeq;
    const attempt: Promise<void> = this.#open().then(
      (socket) => {
        if (this.#connectPromise === attempt) this.#connectPromise = undefined;
        if (seq !== this.#connectSeq || this.#state !== 'connecting') {
          socket.terminate();
          throw new AsteriskConnectionError('The ARI client was closed while connecting');
        }
        this.#attach(socket);
        this.#state = 'open';
        this.#logger.info({ url: this.url }, 'ARI events websocket open');
      },
      (error: unknown) => {
        if (this.#connectPromise === attempt) this.#connectPromise = undefined;
        if (seq === this.#connectSeq && this.#state === 'connecting') this.#state = 'idle';
        throw error;
      },
    );
    this.#connectPromise = attempt;
    return attempt;
  }

  /** Closes the socket and stops reconnecting. Idempotent; resolves when the socket is closed. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#connectSeq++;
    this.#connectPromise = undefined;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#stopWatchdog();
    this.#pending?.terminate();
    this.#pending = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      // A peer that does not answer the close frame is cut off after a second.
      const timer = setTimeout(() => socket.terminate(), 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close(1000, 'client closing');
    });
  }

  /** Opens one socket: resolves when open, rejects with a typed error otherwise. */
  #open(): Promise<WebSocket> {
    return new Promise<WebSocket>((resolve, reject) => {
      let settled = false;
      const socket = new WebSocket(this.url, {
        headers: { Authorization: this.#authorization },
        handshakeTimeout: this.#connectTimeoutMs,
        perMessageDeflate: false,
        // A bigger frame closes the socket (1009) and the stream reconnects, instead of holding it.
        maxPayload: MAX_EVENT_FRAME_BYTES,
        // Answer Asterisk's pings, should it ever send some.
        autoPong: true,
        // wss: extra CAs and the expected certificate name; the certificate is always verified.
        ...this.#tls,
      });
      this.#pending = socket;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        if (this.#pending === socket) this.#pending = undefined;
        socket.terminate();
        reject(error);
      };
      // Kept for the socket's whole life: ws emits 'error' after terminate() and on network
      // failures, and an 'error' without a listener would crash the host process.
      socket.on('error', (error) => {
        if (!settled) {
          fail(this.#connectError(error));
          return;
        }
        this.#logger.debug({ err: error.message }, 'ARI events websocket error');
      });
      socket.once('open', () => {
        if (settled) return;
        settled = true;
        if (this.#pending === socket) this.#pending = undefined;
        resolve(socket);
      });
      socket.once('unexpected-response', (request, response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (): void => {
          const body = Buffer.concat(chunks).toString('utf8');
          const message = errorMessageFromBody(body, response.statusMessage ?? '');
          fail(this.#connectError(new UpgradeRefused(response.statusCode ?? 0, message)));
          request.destroy();
        };
        response.on('data', (chunk: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(chunk);
          size += chunk.length;
        });
        response.once('end', done);
        response.on('error', done);
        response.once('aborted', done);
      });
    });
  }

  /** Turns a handshake failure into the error connect() rejects with. */
  #connectError(error: Error): Error {
    if (error instanceof UpgradeRefused) {
      const cause = ariErrorFromStatus(error.status, 'GET', '/events', error.asteriskMessage);
      if (cause instanceof AuthenticationError) {
        return new AuthenticationError(
          `ARI refused the credentials for the events websocket ${this.url} (401 ${error.asteriskMessage}): check the ARI user and password (ari.conf)`,
        );
      }
      return new AsteriskConnectionError(
        `ARI refused the events websocket ${this.url} with ${error.status}: ${error.asteriskMessage}`,
        { cause },
      );
    }
    const tlsError = this.#tls
      ? tlsErrorOf(
          error,
          `the ARI events websocket ${this.url}`,
          this.#tls.servername ?? new URL(this.url).hostname,
        )
      : undefined;
    if (tlsError) return tlsError;
    const code = (error as { code?: unknown }).code;
    const why = typeof code === 'string' ? code : error.message;
    // Only on the first connection: a reset while reconnecting is a restart, not a wrong port.
    const hint =
      this.#tls || this.#state !== 'connecting'
        ? ''
        : plainAtTlsPortHint(typeof code === 'string' ? code : undefined);
    return new AsteriskConnectionError(`Cannot open the ARI events websocket ${this.url}: ${why}${hint}`, {
      cause: error,
    });
  }

  /** Makes `socket` the current one and wires its frames, close and watchdog. */
  #attach(socket: WebSocket): void {
    this.#socket = socket;
    this.#failedAttempts = 0;
    socket.on('message', (data, isBinary) => {
      if (socket !== this.#socket) return;
      if (isBinary) {
        this.#binaryFrames++;
        const suppressed = this.#binaryLog.take();
        if (suppressed !== undefined)
          this.#logger.warn({ suppressed }, 'ARI events websocket sent a binary frame; ignored');
        return;
      }
      this.#handlers.onMessage(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString());
    });
    socket.on('pong', () => {
      if (socket !== this.#socket) return;
      clearTimeout(this.#pongTimer);
      this.#pongTimer = undefined;
    });
    socket.once('close', (code, reason) => this.#onClose(socket, code, reason.toString('utf8')));
    this.#startWatchdog(socket);
  }

  #startWatchdog(socket: WebSocket): void {
    this.#stopWatchdog();
    if (this.#pingIntervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (socket !== this.#socket || socket.readyState !== WebSocket.OPEN) return;
      // A ping is still unanswered: its own timer decides.
      if (this.#pongTimer) return;
      this.#pongTimer = setTimeout(() => {
        this.#pongTimer = undefined;
        if (socket !== this.#socket) return;
        this.#logger.warn(
          { url: this.url, pongTimeoutMs: this.#pongTimeoutMs },
          'ARI events websocket did not answer a ping; treating the connection as dead',
        );
        // terminate() (not close()) because a dead peer would never answer the close handshake.
        socket.terminate();
      }, this.#pongTimeoutMs);
      this.#pongTimer.unref();
      socket.ping();
    }, this.#pingIntervalMs);
    this.#pingTimer.unref();
  }

  #stopWatchdog(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#pingTimer = undefined;
    this.#pongTimer = undefined;
  }

  #onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    this.#stopWatchdog();
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#state = 'reconnecting';
    this.#logger.warn({ url: this.url, code, reason }, 'ARI events websocket disconnected; reconnecting');
    this.#handlers.onDisconnected({ code, reason });
    this.#scheduleReconnect();
  }

  /**
   * Makes the next reconnection attempt now instead of after its backoff delay (a hint that
   * Asterisk is back, e.g. AMI saw FullyBooted). Does nothing unless a delay is running.
   */
  reconnectNow(): void {
    if (this.#state !== 'reconnecting' || !this.#reconnectTimer) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    void this.#reconnectOnce();
  }

  #scheduleReconnect(): void {
    if (this.#state !== 'reconnecting') return;
    const delay = backoffDelay(this.#failedAttempts, this.#reconnect);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnectOnce();
    }, delay);
  }

  async #reconnectOnce(): Promise<void> {
    if (this.#state !== 'reconnecting') return;
    let socket: WebSocket;
    try {
      socket = await this.#open();
    } catch (error) {
      if (this.#state !== 'reconnecting') return;
      if (error instanceof AuthenticationError) {
        // Retrying a refused password would only hammer Asterisk and fill its security log.
        this.#state = 'failed';
        this.#logger.error({ url: this.url }, 'ARI refused the credentials on reconnect; giving up');
        this.#handlers.onFatal(error);
        return;
      }
      this.#failedAttempts++;
      // Booting Asterisk answers refused connections, HTML 404, then 503: all worth retrying.
      const status = error instanceof AsteriskConnectionError && error.cause instanceof AriHttpError;
      const level = this.#failedAttempts % 10 === 0 ? 'warn' : 'debug';
      this.#logger[level](
        {
          url: this.url,
          attempt: this.#failedAttempts,
          err: error instanceof Error ? error.message : String(error),
          httpStatus: status ? (error.cause as AriHttpError).status : undefined,
        },
        'ARI events websocket reconnection failed; retrying',
      );
      this.#scheduleReconnect();
      return;
    }
    if (this.#state !== 'reconnecting') {
      socket.terminate();
      return;
    }
    const attempts = this.#failedAttempts + 1;
    this.#attach(socket);
    this.#state = 'open';
    this.#logger.info({ url: this.url, attempts }, 'ARI events websocket reconnected');
    this.#handlers.onReopened();
  }
}
