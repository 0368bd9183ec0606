/**
 * A small AMI client of our own: one TCP connection per instance, ActionIDs matched to responses,
 * list actions collected, keep-alive Pings, and reconnection with re-login that never resends an
 * action (an Originate must not ring twice) and never loops on a wrong secret.
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  AmiActionError,
  AsteramiskError,
  AsteriskConnectionError,
  AuthenticationError,
  InvalidInputError,
  TimeoutError,
} from '../errors.js';
import { LogThrottle } from '../log-throttle.js';
import { childLogger, type Logger, silentLogger } from '../logger.js';
import {
  type AmiActionFields,
  type AmiEntry,
  type AmiMessage,
  AmiParser,
  actionEntries,
  commandOutput,
  serializeEntries,
} from './ami-codec.js';
import type {
  AmiActionOptions,
  AmiClientEventMap,
  AmiClientOptions,
  AmiDisconnectInfo,
  AmiEvent,
  AmiInputStats,
  AmiOriginateOptions,
  AmiResponse,
} from './ami-types.js';
import { backoffDelay } from './backoff.js';
import { type TlsConnectOptions, tlsConnectOptions, tlsErrorOf } from './tls.js';

export type * from './ami-types.js';

/** Connection state of an {@link AmiClient}. */
export type AmiClientState =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'disconnected'
  | 'failed'
  | 'closed';

/** Listener names the client uses itself; AMI events of the same name are only sent to `event`. */
const OWN_EVENTS: ReadonlySet<string> = new Set([
  'event',
  'connected',
  'disconnected',
  'reconnected',
  'error',
  'newListener',
  'removeListener',
]);

/** Asterisk's answer to a Login while it is (slowly) shutting down: retry later, it is not a bad secret. */
const AUTH_FAILED = /authentication failed/i;

interface Session {
  readonly id: number;
  readonly socket: Socket;
  readonly parser: AmiParser;
  closed: boolean;
  shutdownAnnounced: boolean;
  error: Error | undefined;
  closeReason: string | undefined;
  onGreeting: (() => void) | undefined;
  onClosed: (() => void) | undefined;
}

interface Prepared {
  readonly action: string;
  readonly actionId: string;
  readonly text: string;
}

interface PendingAction {
  readonly actionId: string;
  readonly action: string;
  readonly session: Session;
  readonly resolve: (res: AmiResponse) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Set when the response said `EventList: start`: items are being collected. */
  listResponse: AmiMessage | undefined;
  readonly items: AmiEvent[];
}

interface QueuedAction {
  readonly prepared: Prepared;
  readonly timeoutMs: number;
  readonly resolve: (res: AmiResponse) => void;
  readonly reject: (err: Error) => void;
  readonly onSent: ((session: Session) => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface EventWaiter {
  readonly eventName: string;
  readonly resolve: (event: AmiEvent) => void;
  readonly reject: (err: Error) => void;
  session: Session | undefined;
  timer: NodeJS.Timeout | undefined;
}

function eventOf(msg: AmiMessage, name: string): AmiEvent {
  const actionId = msg.get('ActionID');
  const fields = msg.toRecord();
  return actionId === undefined ? { name, fields, message: msg } : { name, actionId, fields, message: msg };
}

function responseOf(
  msg: AmiMessage,
  actionId: string,
  items: readonly AmiEvent[],
  complete?: AmiEvent,
): AmiResponse {
  const message = msg.get('Message');
  return {
    response: msg.get('Response') ?? '',
    actionId,
    ...(message === undefined ? {} : { message }),
    fields: msg.toRecord(),
    events: items,
    ...(complete === undefined ? {} : { complete }),
    raw: msg,
  };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/**
 * An Asterisk Manager Interface client.
 *
 * ```ts
 * const ami = new AmiClient({ host: '127.0.0.1', port: 5038, username: 'asterisk', password: '…' });
 * ami.on('Hangup', (e) => console.log(e.fields.Channel));
 * await ami.connect();
 * const res = await ami.action({ Action: 'Ping' });
 * await ami.close();
 * ```
 *
 * - `connect()` opens the socket and logs in; it tries once (no retry) and rejects with
 *   AuthenticationError on a wrong secret, AsteriskConnectionError otherwise.
 * - After a logged-in connection is lost, the client reconnects forever (capped exponential
 *   backoff with jitter) and logs in again. Actions in flight at that moment reject with
 *   AsteriskConnectionError and are **not** resent. Actions issued while disconnected wait up to
 *   `queueWhileDisconnectedMs`, then reject with AsteriskConnectionError.
 * - A wrong secret at re-login emits one `error` (AuthenticationError) and stops reconnecting.
 * - While it reconnects, its timer keeps the process alive: call `close()` to let it exit.
 * - Listeners: `event` gets every event, a listener on an event name (`Hangup`) gets that event;
 *   plus `connected`, `disconnected`, `reconnected` and `error`. A listener that throws is logged
 *   and does not disturb the others or the connection.
 */
export class AmiClient {
  private readonly host: string;
  private readonly port: number;
  private readonly username: string;
  /** An ES private field: util.inspect and JSON.stringify of the client never show it. */
  readonly #password: string;
  private readonly logger: Logger;
  private readonly actionTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly reconnectEnabled: boolean;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly queueWaitMs: number;
  private readonly eventsHeader: string;
  /** TLS options when connecting over TLS; undefined for plain TCP. */
  readonly #tls: TlsConnectOptions | undefined;
  private readonly emitter = new EventEmitter();
  private readonly idPrefix = randomBytes(3).toString('hex');
  private counter = 0;
  private sessionCounter = 0;

  private currentState: AmiClientState = 'idle';
  private session: Session | undefined;
  private opening: Session | undefined;
  private connectPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private pingInFlight = false;
  private failure: AuthenticationError | undefined;
  private greetingLine: string | undefined;
  private readonly pending = new Map<string, PendingAction>();
  private readonly queue = new Set<QueuedAction>();
  private readonly waiters = new Map<string, EventWaiter>();
  private readonly input = { messages: 0, dropped: 0, ignored: 0, unmatchedResponses: 0, maxBuffered: 0 };
  private readonly inputLog = {
    dropped: new LogThrottle(),
    ignored: new LogThrottle(),
    unmatched: new LogThrottle(),
  };

  /**
   * @throws {InvalidInputError} if the username or password contains CR, LF or NUL (they could
   *   never be sent safely). The password itself is never shown.
   */
  constructor(options: AmiClientOptions) {
    this.host = options.host;
    this.port = options.port;
    this.username = options.username;
    this.#password = options.password;
    this.logger = childLogger(options.logger ?? silentLogger, {
      component: 'ami',
      ami: `${options.host}:${options.port}`,
    });
    this.actionTimeoutMs = options.actionTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? this.actionTimeoutMs;
    this.keepAliveMs = options.keepAliveMs ?? 20_000;
    this.keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? this.actionTimeoutMs;
    this.reconnectEnabled = options.reconnect ?? true;
    this.backoffInitialMs = options.reconnectBackoff?.initialMs ?? 250;
    this.backoffMaxMs = options.reconnectBackoff?.maxMs ?? 10_000;
    this.queueWaitMs = options.queueWhileDisconnectedMs ?? 5_000;
    const events = options.events ?? true;
    this.eventsHeader = events === true ? 'on' : events === false ? 'off' : events.join(',');
    const tls = options.tls ?? false;
    this.#tls = tls === false ? undefined : tlsConnectOptions(options.host, tls === true ? {} : tls);
    // Fail at construction, not at the first (re)connect, on credentials that cannot be sent.
    actionEntries({ Username: this.username, Secret: this.#password, Events: this.eventsHeader });
  }

  /** The current connection state. */
  get state(): AmiClientState {
    return this.currentState;
  }

  /** True while logged in on a live connection. */
  get connected(): boolean {
    return this.currentState === 'connected';
  }

  /** Counters of the input: messages parsed, and what was dropped or ignored (see {@link AmiInputStats}). */
  get inputStats(): AmiInputStats {
    return { ...this.input };
  }

  /** The server's greeting line (`Asterisk Call Manager/11.0.0`) of the last connection. */
  get greeting(): string | undefined {
    return this.greetingLine;
  }

  /** Adds a listener for one of the client's own events. */
  on<K extends keyof AmiClientEventMap>(name: K, listener: (...args: AmiClientEventMap[K]) => void): this;
  /** Adds a listener for one AMI event name, e.g. `Hangup` or `OriginateResponse`. */
  on(name: string, listener: (event: AmiEvent) => void): this;
  on(name: string, listener: (...args: never[]) => void): this {
    this.emitter.on(name, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Like {@link on}, for one call only. */
  once<K extends keyof AmiClientEventMap>(name: K, listener: (...args: AmiClientEventMap[K]) => void): this;
  once(name: string, listener: (event: AmiEvent) => void): this;
  once(name: string, listener: (...args: never[]) => void): this {
    this.emitter.once(name, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener added with {@link on} or {@link once}. */
  off<K extends keyof AmiClientEventMap>(name: K, listener: (...args: AmiClientEventMap[K]) => void): this;
  off(name: string, listener: (event: AmiEvent) => void): this;
  off(name: string, listener: (...args: never[]) => void): this {
    this.emitter.off(name, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Number of listeners for `name`. */
  listenerCount(name: string): number {
    return this.emitter.listenerCount(name);
  }

  /**
   * Opens the connection and logs in. Resolves once Login succeeded. One attempt only: the
   * reconnect loop starts only after a logged-in connection is lost.
   *
   * @throws {AuthenticationError} on a wrong username or secret (no retry).
   * @throws {AsteriskConnectionError} when the port refuses, nothing answers in time, or Asterisk
   *   refuses the login for another reason (e.g. `Asterisk is shutting down`).
   */
  connect(): Promise<void> {
    if (this.currentState === 'connected') return Promise.resolve();
    if (this.connectPromise) return this.connectPromise;
    if (this.currentState === 'closed') {
      return Promise.reject(new AsteriskConnectionError('AMI client is closed; create a new one'));
    }
    if (this.currentState === 'reconnecting') {
      // Already trying; wait for the next success (or the bounded queue wait) via a Ping.
      return this.action({ Action: 'Ping' }).then(() => undefined);
    }
    this.currentState = 'connecting';
    this.failure = undefined;
    this.connectPromise = this.openSession()
      .then(
        (session) => {
          if (this.currentState !== 'connecting') {
            this.destroySession(session, 'client closed during connect');
            throw new AsteriskConnectionError('AMI client was closed while connecting');
          }
          this.adopt(session, false);
        },
        (err: Error) => {
          if (this.currentState === 'connecting') {
            this.currentState = err instanceof AuthenticationError ? 'failed' : 'idle';
            if (err instanceof AuthenticationError) this.failure = err;
          }
          this.rejectQueue(err);
          throw err;
        },
      )
      .finally(() => {
        this.connectPromise = undefined;
      });
    return this.connectPromise;
  }

  /**
   * Sends one action and resolves with its response. The client sets `ActionID` itself.
   *
   * For list actions (the response says `EventList: start`), resolves after the closing
   * `…Complete` event with the items in `events`.
   *
   * @throws {InvalidInputError} when a key or value contains CR or LF (nothing is sent), `Action`
   *   is missing, or `ActionID` is given.
   * @throws {AmiActionError} on `Response: Error`, with Asterisk's message and every header.
   * @throws {TimeoutError} when no response came within the time limit.
   * @throws {AsteriskConnectionError} when not connected within `queueWhileDisconnectedMs`, or the
   *   connection was lost before the response (the action is not resent).
   */
  async action(fields: AmiActionFields, options: AmiActionOptions = {}): Promise<AmiResponse> {
    const prepared = this.prepare(fields);
    return this.dispatch(prepared, options.timeoutMs ?? this.actionTimeoutMs, undefined);
  }

  /**
   * Runs a CLI command through the `Command` action and resolves with its output, one string per
   * line, every line kept (blank lines, trailing spaces). Works with Asterisk 14+ `Output:`
   * headers and the legacy `--END COMMAND--` format.
   *
   * @throws {AmiActionError} when Asterisk answers `Response: Error` (unknown CLI command…); its
   *   message is the CLI's output.
   */
  async command(command: string, options: AmiActionOptions = {}): Promise<string[]> {
    try {
      const res = await this.action({ Action: 'Command', Command: command }, options);
      return commandOutput(res.raw);
    } catch (err) {
      if (err instanceof AmiActionError) {
        const output = err.response.Output ?? err.response.output;
        const lines = output === undefined ? [] : Array.isArray(output) ? output : [output];
        if (lines.length > 0) throw new AmiActionError('Command', lines.join('\n'), err.response);
      }
      throw err;
    }
  }

  /**
   * Originates a call with `Async: true` (forced) and resolves with the `OriginateResponse` event
   * of that ActionID, whatever its outcome: check `event.fields.Response` (`Success` or `Failure`)
   * and `Reason` (4 answered, 3 no answer, 0 busy/unreachable/unknown technology, as Asterisk 22
   * reports them). The event is also emitted to `event`/`OriginateResponse` listeners as usual.
   * Needs events of class `call` (the default `events: true` has them).
   *
   * @throws {AmiActionError} when the Originate itself is refused (`Channel not specified`…).
   * @throws {TimeoutError} when no OriginateResponse came within the time limit.
   * @throws {AsteriskConnectionError} when the connection was lost before the OriginateResponse:
   *   the call may or may not have been placed; it is not retried.
   */
  async originate(fields: AmiActionFields, options: AmiOriginateOptions = {}): Promise<AmiEvent> {
    const rest: Record<string, AmiActionFields[string]> = {};
    let ringMs: number | undefined;
    for (const [key, value] of Object.entries(fields)) {
      const lower = key.toLowerCase();
      if (lower === 'async' || lower === 'action') continue;
      if (lower === 'timeout' && value !== undefined) ringMs = Number(value);
      rest[key] = value;
    }
    const prepared = this.prepare({ Action: 'Originate', ...rest, Async: true });
    const waitMs =
      options.timeoutMs ??
      (ringMs !== undefined && Number.isFinite(ringMs) ? ringMs : 30_000) + this.actionTimeoutMs;
    return new Promise<AmiEvent>((resolve, reject) => {
      const waiter: EventWaiter = {
        eventName: 'originateresponse',
        session: undefined,
        timer: undefined,
        resolve: (event) => {
          this.dropWaiter(prepared.actionId);
          resolve(event);
        },
        reject: (err) => {
          this.dropWaiter(prepared.actionId);
          reject(err);
        },
      };
      // Registered before sending: the OriginateResponse may follow the response in the same read.
      this.waiters.set(prepared.actionId, waiter);
      const onSent = (session: Session): void => {
        waiter.session = session;
        waiter.timer = setTimeout(() => {
          waiter.reject(
            new TimeoutError(
              `AMI Originate (ActionID ${prepared.actionId}) got no OriginateResponse within ${waitMs} ms`,
            ),
          );
        }, waitMs);
      };
      this.dispatch(prepared, this.actionTimeoutMs, onSent).catch((err: Error) => {
        if (this.waiters.get(prepared.actionId) === waiter) waiter.reject(err);
      });
    });
  }

  /**
   * Logs off (if connected) and closes the connection; stops reconnecting. Pending and queued
   * actions reject with AsteriskConnectionError. Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  // ---------------------------------------------------------------------------------------------

  private nextActionId(): string {
    this.counter += 1;
    return `${this.idPrefix}-${this.counter}`;
  }

  private prepare(fields: AmiActionFields): Prepared {
    let actionKey: string | undefined;
    for (const key of Object.keys(fields)) {
      const lower = key.toLowerCase();
      if (lower === 'actionid') {
        throw new InvalidInputError('AMI ActionID is assigned by AmiClient; remove it from the fields');
      }
      if (lower === 'action') actionKey = key;
    }
    const action = actionKey === undefined ? undefined : fields[actionKey];
    if (typeof action !== 'string' || action.trim() === '') {
      throw new InvalidInputError(
        'AMI action needs a non-empty string Action field, e.g. { Action: "Ping" }',
      );
    }
    // Validates every key and value (throws before anything exists to be sent).
    const entries = actionEntries(fields);
    const actionId = this.nextActionId();
    const ordered: AmiEntry[] = [
      ['Action', action],
      ['ActionID', actionId],
    ];
    for (const entry of entries) if (entry[0] !== actionKey) ordered.push(entry);
    return { action, actionId, text: serializeEntries(ordered) };
  }

  private liveSession(): Session | undefined {
    const s = this.session;
    return this.currentState === 'connected' && s && !s.closed && !s.socket.destroyed ? s : undefined;
  }

  private dispatch(
    prepared: Prepared,
    timeoutMs: number,
    onSent: ((session: Session) => void) | undefined,
  ): Promise<AmiResponse> {
    return new Promise<AmiResponse>((resolve, reject) => {
      const session = this.liveSession();
      if (session) {
        this.send(session, prepared, timeoutMs, resolve, reject, onSent);
        return;
      }
      switch (this.currentState) {
        case 'closed':
          reject(new AsteriskConnectionError(`AMI client is closed; ${prepared.action} not sent`));
          return;
        case 'failed':
          reject(
            this.failure ??
              new AsteriskConnectionError(`AMI client stopped after a failure; ${prepared.action} not sent`),
          );
          return;
        case 'idle':
        case 'disconnected':
          reject(
            new AsteriskConnectionError(
              `AMI is not connected to ${this.host}:${this.port}; call connect() first. ${prepared.action} not sent`,
            ),
          );
          return;
        default: {
          const queued: QueuedAction = { prepared, timeoutMs, resolve, reject, onSent, timer: undefined };
          queued.timer = setTimeout(() => {
            this.queue.delete(queued);
            reject(
              new AsteriskConnectionError(
                `AMI not connected to ${this.host}:${this.port} within ${this.queueWaitMs} ms; ` +
                  `${prepared.action} was not sent`,
              ),
            );
          }, this.queueWaitMs);
          this.queue.add(queued);
        }
      }
    });
  }

  private send(
    session: Session,
    prepared: Prepared,
    timeoutMs: number,
    resolve: (res: AmiResponse) => void,
    reject: (err: Error) => void,
    onSent: ((session: Session) => void) | undefined,
  ): void {
    const timer = setTimeout(() => {
      if (this.pending.get(prepared.actionId)?.timer !== timer) return;
      this.pending.delete(prepared.actionId);
      reject(
        new TimeoutError(
          `AMI ${prepared.action} (ActionID ${prepared.actionId}) got no response within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    this.pending.set(prepared.actionId, {
      actionId: prepared.actionId,
      action: prepared.action,
      session,
      resolve,
      reject,
      timer,
      listResponse: undefined,
      items: [],
    });
    // Only the action name and id: the fields may hold a Secret or a private message body.
    this.logger.debug({ action: prepared.action, actionId: prepared.actionId }, 'AMI action sent');
    session.socket.write(prepared.text);
    onSent?.(session);
  }

  private flushQueue(session: Session): void {
    for (const queued of [...this.queue]) {
      this.queue.delete(queued);
      clearTimeout(queued.timer);
      this.send(session, queued.prepared, queued.timeoutMs, queued.resolve, queued.reject, queued.onSent);
    }
  }

  private rejectQueue(err: Error): void {
    for (const queued of [...this.queue]) {
      this.queue.delete(queued);
      clearTimeout(queued.timer);
      queued.reject(err);
    }
  }

  private dropWaiter(actionId: string): void {
    const waiter = this.waiters.get(actionId);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(actionId);
  }

  // --- sessions --------------------------------------------------------------------------------

  private openSession(): Promise<Session> {
    return new Promise<Session>((resolve, reject) => {
      const socket = this.#tls
        ? tlsConnect({ host: this.host, port: this.port, ...this.#tls })
        : netConnect({ host: this.host, port: this.port });
      const session: Session = {
        id: ++this.sessionCounter,
        socket,
        parser: new AmiParser({
          expectGreeting: true,
          onProblem: (p) => {
            this.input.dropped++;
            const suppressed = this.inputLog.dropped.take();
            if (suppressed !== undefined)
              this.logger.warn({ problem: p.kind, length: p.length, suppressed }, 'AMI input dropped');
          },
        }),
        closed: false,
        shutdownAnnounced: false,
        error: undefined,
        closeReason: undefined,
        onGreeting: undefined,
        onClosed: undefined,
      };
      this.opening = session;
      let settled = false;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.opening === session) this.opening = undefined;
        if (err) {
          this.destroySession(session, err.message);
          reject(err);
        } else {
          resolve(session);
        }
      };
      const timer = setTimeout(() => {
        // A TLS listener waits for a ClientHello and never greets a plain client.
        const hint = this.#tls ? '' : ' (a TLS port? then connect with TLS, e.g. ASTERISK_AMI_TLS=true)';
        finish(
          new AsteriskConnectionError(
            `AMI at ${this.host}:${this.port} did not greet within ${this.connectTimeoutMs} ms${hint}`,
          ),
        );
      }, this.connectTimeoutMs);

      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
      socket.on('error', (err) => {
        session.error ??= err;
      });
      socket.on('data', (chunk: Buffer) => this.onData(session, chunk));
      socket.on('close', () => {
        session.closed = true;
        this.failSessionWork(session);
        if (!settled) {
          const tlsError = this.#tls
            ? tlsErrorOf(session.error, `AMI at ${this.host}:${this.port}`, this.#tls.servername ?? this.host)
            : undefined;
          if (tlsError) {
            finish(tlsError);
            return;
          }
          const why =
            session.closeReason ??
            (session.error ? errorText(session.error) : 'connection closed by the server');
          finish(
            new AsteriskConnectionError(`Cannot connect to AMI at ${this.host}:${this.port}: ${why}`, {
              cause: session.error,
            }),
          );
          return;
        }
        session.onClosed?.();
      });
      session.onGreeting = () => {
        clearTimeout(timer);
        const greeting = session.parser.greeting ?? '';
        if (!/call manager/i.test(greeting)) {
          // An HTTP or SIP port by mistake: say so instead of timing out on a Login.
          finish(
            new AsteriskConnectionError(
              `${this.host}:${this.port} is not an AMI port: it greeted ${JSON.stringify(greeting.slice(0, 80))}`,
            ),
          );
          return;
        }
        this.greetingLine = greeting;
        this.logger.debug({ greeting }, 'AMI greeting');
        this.login(session).then(
          () => finish(undefined),
          (err: Error) => finish(err),
        );
      };
    });
  }

  private async login(session: Session): Promise<void> {
    const prepared = this.prepare({
      Action: 'Login',
      Username: this.username,
      Secret: this.#password,
      Events: this.eventsHeader,
    });
    this.logger.debug({ username: this.username, actionId: prepared.actionId }, 'AMI login');
    try {
      await new Promise<AmiResponse>((resolve, reject) => {
        this.send(session, prepared, this.actionTimeoutMs, resolve, reject, undefined);
      });
    } catch (err) {
      if (err instanceof AmiActionError) {
        const message = typeof err.response.Message === 'string' ? err.response.Message : err.message;
        if (AUTH_FAILED.test(message)) {
          throw new AuthenticationError(
            `AMI login as ${JSON.stringify(this.username)} to ${this.host}:${this.port} failed: ` +
              'Authentication failed. Check the username and secret (manager.conf) and the permit/deny lists.',
          );
        }
        // `Asterisk is shutting down` during a slow restart, among others: retryable.
        throw new AsteriskConnectionError(`AMI login to ${this.host}:${this.port} was refused: ${message}`, {
          cause: err,
          code: 'AMI_LOGIN_REFUSED',
        });
      }
      if (err instanceof AsteramiskError && !(err instanceof AsteriskConnectionError)) {
        throw new AsteriskConnectionError(`AMI login to ${this.host}:${this.port} failed: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  private adopt(session: Session, isReconnect: boolean): void {
    this.session = session;
    this.currentState = 'connected';
    this.reconnectAttempt = 0;
    session.onClosed = () => this.onSessionLost(session);
    this.startKeepAlive(session);
    this.logger.info({ reconnect: isReconnect }, 'AMI connected');
    this.emitOwn('connected');
    if (isReconnect) this.emitOwn('reconnected');
    this.flushQueue(session);
  }

  private onSessionLost(session: Session): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.stopKeepAlive();
    if (this.currentState === 'closed') return;
    const info: AmiDisconnectInfo = {
      reason:
        session.closeReason ??
        (session.shutdownAnnounced
          ? 'Asterisk shut down'
          : session.error
            ? `socket error: ${errorText(session.error)}`
            : 'connection closed by Asterisk'),
      ...(session.error ? { error: session.error } : {}),
      shutdown: session.shutdownAnnounced,
    };
    this.logger.warn({ reason: info.reason }, 'AMI disconnected');
    if (this.reconnectEnabled) {
      this.currentState = 'reconnecting';
      this.emitOwn('disconnected', info);
      if (this.currentState === 'reconnecting') this.scheduleReconnect();
    } else {
      this.currentState = 'disconnected';
      this.emitOwn('disconnected', info);
      this.rejectQueue(new AsteriskConnectionError(`AMI connection lost: ${info.reason}`));
    }
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.reconnectAttempt, {
      initialMs: this.backoffInitialMs,
      maxMs: this.backoffMaxMs,
    });
    this.reconnectAttempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.attemptReconnect();
    }, delay);
  }

  private attemptReconnect(): void {
    if (this.currentState !== 'reconnecting') return;
    this.openSession().then(
      (session) => {
        if (this.currentState !== 'reconnecting') {
          this.destroySession(session, 'client closed during reconnect');
          return;
        }
        this.adopt(session, true);
      },
      (err: Error) => {
        if (this.currentState !== 'reconnecting') return;
        if (err instanceof AuthenticationError) {
          // A changed secret will not fix itself: stop, tell once, and fail whatever waits.
          this.currentState = 'failed';
          this.failure = err;
          this.rejectQueue(err);
          this.emitError(err);
          return;
        }
        this.logger.warn(
          { attempt: this.reconnectAttempt, error: err.message },
          'AMI reconnect attempt failed; retrying',
        );
        this.scheduleReconnect();
      },
    );
  }

  private destroySession(session: Session, reason: string): void {
    session.closeReason ??= reason;
    if (!session.socket.destroyed) session.socket.destroy();
  }

  /** Rejects what can no longer be answered on a closed session. Nothing is resent. */
  private failSessionWork(session: Session): void {
    for (const p of [...this.pending.values()]) {
      if (p.session !== session) continue;
      this.pending.delete(p.actionId);
      clearTimeout(p.timer);
      p.reject(
        new AsteriskConnectionError(
          `AMI connection lost before the response to ${p.action} (ActionID ${p.actionId}); it was not resent`,
          { cause: session.error },
        ),
      );
    }
    for (const [, waiter] of [...this.waiters]) {
      if (waiter.session !== session) continue;
      waiter.reject(
        new AsteriskConnectionError(
          `AMI connection lost while waiting for ${waiter.eventName === 'originateresponse' ? 'OriginateResponse' : waiter.eventName}; ` +
            'the call may or may not have been placed, and it was not retried',
          { cause: session.error },
        ),
      );
    }
  }

  private startKeepAlive(session: Session): void {
    this.stopKeepAlive();
    if (this.keepAliveMs <= 0) return;
    this.keepAliveTimer = setInterval(() => {
      if (this.pingInFlight || session !== this.session || session.closed) return;
      this.pingInFlight = true;
      const prepared = this.prepare({ Action: 'Ping' });
      new Promise<AmiResponse>((resolve, reject) => {
        this.send(session, prepared, this.keepAliveTimeoutMs, resolve, reject, undefined);
      })
        .catch((err: unknown) => {
          if (err instanceof TimeoutError && session === this.session) {
            // A half-open TCP connection looks alive until a write times out: drop it ourselves.
            this.logger.warn({ timeoutMs: this.keepAliveTimeoutMs }, 'AMI keep-alive Ping timed out');
            this.destroySession(session, 'keep-alive Ping timed out');
          }
        })
        .finally(() => {
          this.pingInFlight = false;
        });
    }, this.keepAliveMs);
    // The socket keeps the process alive while connected; the keep-alive timer need not.
    this.keepAliveTimer.unref();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    this.pingInFlight = false;
  }

  private async doClose(): Promise<void> {
    const session = this.session ?? this.opening;
    const wasConnected = this.currentState === 'connected';
    this.currentState = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopKeepAlive();
    this.rejectQueue(new AsteriskConnectionError('AMI client closed'));
    if (session && !session.closed) {
      const closed = new Promise<void>((resolve) => session.socket.once('close', () => resolve()));
      if (wasConnected && session === this.session) {
        const prepared = this.prepare({ Action: 'Logoff' });
        await new Promise<AmiResponse>((resolve, reject) => {
          this.send(session, prepared, Math.min(this.actionTimeoutMs, 2_000), resolve, reject, undefined);
        }).catch(() => undefined);
        session.socket.end();
        const timer = setTimeout(() => this.destroySession(session, 'client closed'), 1_000);
        await closed;
        clearTimeout(timer);
      } else {
        this.destroySession(session, 'client closed');
        await closed;
      }
    }
    this.session = undefined;
    for (const p of [...this.pending.values()]) {
      this.pending.delete(p.actionId);
      clearTimeout(p.timer);
      p.reject(new AsteriskConnectionError(`AMI client closed before the response to ${p.action}`));
    }
    for (const [, waiter] of [...this.waiters]) {
      waiter.reject(new AsteriskConnectionError('AMI client closed while waiting for an event'));
    }
    this.logger.debug({}, 'AMI client closed');
  }

  // --- input -----------------------------------------------------------------------------------

  private onData(session: Session, chunk: Buffer): void {
    if (session.closed) return;
    const hadGreeting = session.parser.greeting !== undefined;
    const messages = session.parser.push(chunk);
    this.input.messages += messages.length;
    if (session.parser.buffered > this.input.maxBuffered) this.input.maxBuffered = session.parser.buffered;
    if (!hadGreeting && session.parser.greeting !== undefined) session.onGreeting?.();
    for (const msg of messages) {
      if (session.closed || session.socket.destroyed) return;
      try {
        this.onMessage(session, msg);
      } catch (err) {
        // Our own bug or a listener's: never let it escape into the socket's event handler.
        this.logger.error({ error: errorText(err) }, 'AMI message handling failed');
      }
    }
  }

  private onMessage(session: Session, msg: AmiMessage): void {
    const eventName = msg.get('Event');
    // Checked first: OriginateResponse events carry a `Response:` header of their own.
    if (eventName !== undefined) {
      this.onEvent(session, msg, eventName);
      return;
    }
    const status = msg.get('Response');
    if (status !== undefined) {
      this.onResponse(session, msg, status);
      return;
    }
    this.input.ignored++;
    const suppressed = this.inputLog.ignored.take();
    if (suppressed !== undefined) {
      this.logger.debug(
        { lines: msg.entries.length + msg.rawLines.length, suppressed },
        'AMI message without Event or Response ignored',
      );
    }
  }

  private onResponse(session: Session, msg: AmiMessage, status: string): void {
    const actionId = msg.get('ActionID');
    const p = actionId === undefined ? undefined : this.pending.get(actionId);
    if (!p || p.session !== session) {
      this.input.unmatchedResponses++;
      const suppressed = this.inputLog.unmatched.take();
      if (suppressed !== undefined) {
        this.logger.debug(
          { actionId: actionId?.slice(0, 100), suppressed },
          'AMI response without a pending action (late or unknown)',
        );
      }
      return;
    }
    if (status.toLowerCase() === 'error') {
      this.settle(p);
      p.reject(new AmiActionError(p.action, msg.get('Message') ?? 'Response: Error', msg.toRecord()));
      return;
    }
    if (msg.get('EventList')?.toLowerCase() === 'start') {
      p.listResponse = msg;
      return;
    }
    this.settle(p);
    p.resolve(responseOf(msg, p.actionId, []));
  }

  private onEvent(session: Session, msg: AmiMessage, name: string): void {
    const event = eventOf(msg, name);
    const actionId = event.actionId;
    if (actionId !== undefined) {
      const p = this.pending.get(actionId);
      if (p && p.session === session && p.listResponse) {
        const isEnd = msg.get('EventList')?.toLowerCase() === 'complete' || /complete$/i.test(name);
        if (!isEnd) {
          p.items.push(event);
          return;
        }
        this.settle(p);
        p.resolve(responseOf(p.listResponse, p.actionId, p.items, event));
        return;
      }
      const waiter = this.waiters.get(actionId);
      if (waiter && waiter.session === session && waiter.eventName === name.toLowerCase()) {
        waiter.resolve(event);
      }
    }
    if (name.toLowerCase() === 'shutdown') {
      session.shutdownAnnounced = true;
      this.logger.info({ restart: event.message.get('Restart') }, 'Asterisk is shutting down');
    }
    this.emitOwn('event', event);
    if (!OWN_EVENTS.has(name)) this.emitSafe(name, [event]);
  }

  private settle(p: PendingAction): void {
    clearTimeout(p.timer);
    this.pending.delete(p.actionId);
  }

  // --- emitting --------------------------------------------------------------------------------

  private emitOwn<K extends keyof AmiClientEventMap>(name: K, ...args: AmiClientEventMap[K]): void {
    this.emitSafe(name, args);
  }

  private emitError(err: Error): void {
    if (this.emitter.listenerCount('error') === 0) {
      // EventEmitter would throw an unhandled 'error'; a library must not kill the process.
      this.logger.error({ error: err.message, code: (err as AsteramiskError).code }, 'AMI client error');
      return;
    }
    this.emitSafe('error', [err]);
  }

  /** Calls each listener in turn; one that throws is logged and the rest still run. */
  private emitSafe(name: string, args: readonly unknown[]): void {
    for (const listener of this.emitter.rawListeners(name)) {
      try {
        (listener as (...a: readonly unknown[]) => void)(...args);
      } catch (err) {
        this.logger.error({ listener: name, error: errorText(err) }, 'AMI listener threw');
      }
    }
  }
}
