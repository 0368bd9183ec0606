/**
 * The simulator's AMI protocol layer: a TCP server that behaves on the wire like Asterisk 22's
 * manager (greeting, login and its failure delay, permission checks, error messages, event
 * timestamps and masks, Shutdown on restart). It knows nothing about calls: the PBX-specific
 * actions (Originate, Hangup, Getvar…) are plugged in with {@link AmiServer.registerAction}, and the
 * PBX's events are broadcast with {@link AmiServer.publishEvent}.
 */

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  AMI_GREETING,
  type AmiEntry,
  type AmiFields,
  type AmiMessage,
  AmiParser,
  serializeEntries,
  toEntries,
} from '../asterisk/ami-codec.js';
import { InvalidInputError } from '../errors.js';
import { childLogger, type Logger, silentLogger } from '../logger.js';

export type { AmiEntry, AmiFields } from '../asterisk/ami-codec.js';

/** One action as the server received it. */
export interface AmiRequest {
  /** The `Action:` value as sent (case kept), `''` when missing. */
  readonly action: string;
  /** The `ActionID:` value, `undefined` when the request had none (the reply then has none). */
  readonly actionId: string | undefined;
  /** Every header as received. */
  readonly message: AmiMessage;
  /**
   * The first value of `key`, case-insensitive, leading blanks skipped (Asterisk's
   * `astman_get_header`). `undefined` when absent.
   */
  get(key: string): string | undefined;
  /** Every value of `key` (repeated `Variable:` headers…), leading blanks skipped. */
  getAll(key: string): string[];
}

/** The list part of a reply: item events, then the closing `…Complete` event. */
export interface AmiListReply {
  /**
   * Item events in order; each must contain an `Event` field. The server adds `ActionID` right
   * after `Event` unless the item already has one. No Timestamp is added (Asterisk adds none).
   */
  items: readonly AmiFields[];
  /** Name of the closing event, e.g. `CoreShowChannelsComplete`. */
  completeEvent: string;
  /** Fields of the closing event after `EventList: Complete` and `ListItems: <n>`. */
  completeFields?: AmiFields;
}

/**
 * What a handler answers. Written as `Response`, `ActionID` (if the request had one),
 * `EventList: start` (list replies), `Message` (if given), then `fields` in order.
 */
export interface AmiReply {
  /** `Success` (default), `Error`, `Goodbye`… */
  response?: string;
  /** The `Message:` header. */
  message?: string;
  /** Further headers, in order (e.g. `Ping: Pong`, `Variable`/`Value`). */
  fields?: AmiFields;
  /** Makes this a list reply: `EventList: start`, the items, the closing event. */
  list?: AmiListReply;
  /** Close the connection (FIN) after writing the reply, as Logoff does. */
  close?: boolean;
  /**
   * Runs right after the reply (and its list events) has been written. Start asynchronous work
   * here whose events must follow the response on the wire, e.g. an async Originate's events.
   */
  after?: () => void;
}

/** Options of {@link AmiSessionContext.sendEvent} and {@link AmiServer.publishEvent}. */
export interface AmiEventOptions {
  /** Add `Timestamp: <epoch>.<micro>` after `Privilege` (or `Event`). Default true. */
  timestamp?: boolean;
}

/** The session an action came in on, handed to action handlers. */
export interface AmiSessionContext {
  /** Server-unique session number. */
  readonly sessionId: number;
  /** The logged-in user, `undefined` before login. */
  readonly username: string | undefined;
  /** `IPV4/TCP/<addr>/<port>` of the client, as Asterisk shows it. */
  readonly remoteAddress: string;
  /** False once the socket is closed or closing: later events are dropped. */
  readonly isOpen: boolean;
  /**
   * Sends an event to this session only, if it is logged in and its event mask lets the event's
   * `Privilege` class through (as Asterisk does). Adds a Timestamp unless told not to.
   * Returns whether it was written.
   *
   * @throws {InvalidInputError} when `fields` has no `Event` or a key/value contains CR/LF.
   */
  sendEvent(fields: AmiFields, options?: AmiEventOptions): boolean;
  /** Closes this session (FIN). */
  close(): void;
}

/**
 * Handles one action. Return a reply, `null` to send nothing (a server that never answers, for
 * time-out tests), or a promise of either. A handler that throws answers `Response: Error` with
 * the error's message (and is logged).
 */
export type AmiActionHandler = (
  req: AmiRequest,
  ctx: AmiSessionContext,
) => AmiReply | null | Promise<AmiReply | null>;

/** Output of a CLI command run through `Action: Command`. */
export interface AmiCliResult {
  /** False answers `Response: Error` (unknown command…), with the same `Output:` lines. */
  ok: boolean;
  /** Output lines, one `Output:` header each. */
  lines: string[];
}

/**
 * Runs a CLI command for `Action: Command`. Return `undefined` to fall back to the built-in
 * commands (`core show version`, `core show uptime`, `core show channels`, and Asterisk's
 * "No such command" answer).
 */
export type AmiCliHandler = (
  command: string,
  ctx: AmiSessionContext,
) => AmiCliResult | undefined | Promise<AmiCliResult | undefined>;

/** Call counters shown by `CoreStatus` (and the default `core show channels`). */
export interface AmiCallCounts {
  currentCalls: number;
  processedCalls: number;
}

/** Options of {@link AmiServer}. */
export interface AmiServerOptions {
  /** manager.conf users: `{ username: secret }`. Secrets are never logged. */
  users: Readonly<Record<string, string>>;
  /** Delay before `Authentication failed` (Asterisk sleeps 1 s). Default 1000 ms. */
  loginFailureDelayMs?: number;
  /** Unauthenticated sessions are closed after this long (Asterisk's `authtimeout`). Default 30 000 ms. */
  authTimeoutMs?: number;
  logger?: Logger;
  /** CLI handler for `Action: Command`; see {@link AmiCliHandler}. */
  cli?: AmiCliHandler;
  /** Call counters for CoreStatus. Default: zeros. */
  callCounts?: () => AmiCallCounts;
  /**
   * Longest line the request parser keeps; longer ones drop their request. Default 64 KiB. Lines
   * over Asterisk's own 1024 bytes never get that far: they are answered `Failed to parse message:
   * line too long`, as Asterisk answers them.
   */
  maxLineLength?: number;
}

/** Counters for tests and diagnostics. */
export interface AmiServerStats {
  /** TCP connections accepted. */
  connections: number;
  /** Bytes received from all clients. */
  bytesReceived: number;
  /** Requests (complete messages) received, valid or not. */
  actionsReceived: number;
  /** Login actions processed from unauthenticated sessions. */
  loginAttempts: number;
  /** Of those, refused. */
  loginFailures: number;
}

/** Events of {@link AmiServer} (an EventEmitter), for tests and the simulator. */
export interface AmiServerEventMap {
  /** Every request received, before it is handled. Beware: a Login request holds the Secret. */
  action: [req: AmiRequest, ctx: AmiSessionContext];
  /** A login attempt and its outcome. */
  login: [info: { username: string | undefined; ok: boolean; sessionId: number }];
  /** A session closed. */
  'session-closed': [info: { sessionId: number; username: string | undefined }];
}

/** A success reply: `Response: Success`, optional `Message`, then `fields`. */
export function amiSuccess(message?: string, fields?: AmiFields): AmiReply {
  return {
    response: 'Success',
    ...(message === undefined ? {} : { message }),
    ...(fields ? { fields } : {}),
  };
}

/** An error reply: `Response: Error` and `Message`. */
export function amiError(message: string, fields?: AmiFields): AmiReply {
  return { response: 'Error', message, ...(fields ? { fields } : {}) };
}

const ASTERISK_VERSION = '22.10.1';
const AMI_VERSION = '11.0.0';
const BUILD_INFO = 'built by root @ localhost on a x86_64 running Linux on 2026-11-23 08:26:59 UTC';
/** Actions allowed before login (Asterisk's exceptions in process_message). */
const UNAUTHENTICATED_OK: ReadonlySet<string> = new Set(['login', 'logoff', 'challenge']);
const PROTECTED: ReadonlySet<string> = new Set(['login', 'logoff', 'challenge']);

/** Words of the CLI commands the simulator knows, for Asterisk's "type 'core show help …'" hint. */
const KNOWN_CLI = [
  '!',
  'core show version',
  'core show uptime',
  'core show channels',
  'core show help',
  'core show settings',
  'core restart now',
  'core restart gracefully',
  'core stop now',
  'core reload',
  'core set verbose',
  'dialplan show',
  'dialplan reload',
  'manager show connected',
  'module reload',
  'module show',
  'pjsip show endpoints',
  'pjsip show contacts',
].map((c) => c.split(' '));

/** Event mask of a session: every class, none, or a set of class names. */
type EventMask = 'all' | 'none' | ReadonlySet<string>;

function parseEventMask(value: string | undefined): EventMask {
  if (value === undefined) return 'all';
  const v = value.trim().toLowerCase();
  if (['on', 'yes', 'true', 'y', 't', '1', 'all'].includes(v)) return 'all';
  if (['off', 'no', 'false', 'n', 'f', '0', ''].includes(v)) return 'none';
  const classes = v
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  if (classes.includes('all')) return 'all';
  return new Set(classes);
}

function maskAllows(mask: EventMask, privilege: string | undefined): boolean {
  if (mask === 'all') return true;
  if (mask === 'none') return false;
  if (privilege === undefined) return true;
  return privilege.split(',').some((c) => {
    const cls = c.trim().toLowerCase();
    return cls !== 'all' && mask.has(cls);
  });
}

/** `<epoch seconds>.<microseconds>`, as `timestampevents=yes` writes it. */
export function amiTimestamp(nowMs: number = performance.timeOrigin + performance.now()): string {
  const micros = Math.floor(nowMs * 1000);
  return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
}

/** `2026-11-23T09:16:47.265+0000`, the security events' time format. */
function eventTv(date: Date): string {
  return date.toISOString().replace('Z', '+0000');
}

function keyIs(entry: AmiEntry, key: string): boolean {
  return entry[0].toLowerCase() === key;
}

/** Inserts `[key, value]` after the entry named `after` (or at `fallback`), unless `key` exists. */
function withEntryAfter(entries: AmiEntry[], key: string, value: string, after: string[]): AmiEntry[] {
  const lower = key.toLowerCase();
  if (entries.some((e) => keyIs(e, lower))) return entries;
  let at = 0;
  for (const name of after) {
    const i = entries.findIndex((e) => keyIs(e, name));
    if (i >= 0) {
      at = i + 1;
      break;
    }
  }
  return [...entries.slice(0, at), [key, value], ...entries.slice(at)];
}

function eventEntries(fields: AmiFields, timestamp: boolean): AmiEntry[] {
  const entries = toEntries(fields);
  if (!entries.some((e) => keyIs(e, 'event'))) {
    throw new InvalidInputError('An AMI event needs an Event field');
  }
  return timestamp ? withEntryAfter(entries, 'Timestamp', amiTimestamp(), ['privilege', 'event']) : entries;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** Asterisk's uptime wording: `1 hour, 2 minutes, 3 seconds`. */
function uptimeText(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  const units: [number, string][] = [
    [365 * 86400, 'year'],
    [7 * 86400, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(plural(n, unit));
  }
  if (rest > 0 || parts.length === 0) parts.push(plural(rest, 'second'));
  return parts.join(', ');
}

/** The words Asterisk echoes in "type 'core show help …'": known prefixes plus the first unknown word. */
function bestHelpPrefix(words: string[]): string {
  const out: string[] = [];
  for (const word of words) {
    out.push(word);
    const n = out.length;
    // Asterisk's find_cli(match_type -1): a command of the same length whose words match, the
    // last one allowed to differ. `!` makes every single word pass, as in Asterisk.
    const found = KNOWN_CLI.some(
      (cmd) => cmd.length === n && cmd.slice(0, n - 1).every((w, i) => w === out[i]),
    );
    if (!found) break;
  }
  return out.join(' ');
}

function addressOf(
  family: string | undefined,
  address: string | undefined,
  port: number | undefined,
): string {
  const fam = family === 'IPv6' ? 'IPV6' : 'IPV4';
  return `${fam}/TCP/${address ?? '0.0.0.0'}/${port ?? 0}`;
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Asterisk reads AMI input into a 1024-byte buffer: each line, with its CR LF, must fit in it. */
const MAX_AMI_LINE_BYTES = 1024;
/** Stands in for a line too long for Asterisk, so the rest of its request (ActionID) still parses. */
const LINE_TOO_LONG_KEY = 'X-Simulator-Line-Too-Long';
const LINE_TOO_LONG_LINE = Buffer.from(`${LINE_TOO_LONG_KEY}: 1\r\n`);

/**
 * Replaces each request line longer than Asterisk reads (counted in bytes, with its line end) by a
 * marker line. Asterisk then answers that request `Failed to parse message: line too long`, with
 * its ActionID, and runs nothing (main/manager.c get_input and do_message).
 */
class LineLimiter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overflowed = false;

  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl + 1);
      start = nl + 1;
      const tooLong = this.overflowed || this.pendingBytes + piece.length > MAX_AMI_LINE_BYTES;
      out.push(...(tooLong ? [LINE_TOO_LONG_LINE] : [...this.pending, piece]));
      this.pending = [];
      this.pendingBytes = 0;
      this.overflowed = false;
    }
    if (start < chunk.length && !this.overflowed) {
      this.pendingBytes += chunk.length - start;
      this.overflowed = this.pendingBytes > MAX_AMI_LINE_BYTES;
      this.pending = this.overflowed ? [] : [...this.pending, Buffer.from(chunk.subarray(start))];
    }
    return Buffer.concat(out);
  }
}

class ServerSession implements AmiSessionContext {
  readonly sessionId: number;
  readonly socket: Socket;
  readonly parser: AmiParser;
  readonly lineLimiter = new LineLimiter();
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly asteriskSessionId = `0x7f${randomBytes(5).toString('hex')}`;
  username: string | undefined;
  authenticated = false;
  /** Set after Logoff or a failed login: further input is ignored. */
  closing = false;
  closed = false;
  mask: EventMask = 'all';
  challenge: string | undefined;
  authTimer: NodeJS.Timeout | undefined;

  constructor(id: number, socket: Socket, maxLineLength: number, onProblem: () => void) {
    this.sessionId = id;
    this.socket = socket;
    this.parser = new AmiParser({
      lineEnding: 'lf',
      maxLineLength,
      maxMessageLength: maxLineLength * 16,
      onProblem,
    });
    this.remoteAddress = addressOf(socket.remoteFamily, socket.remoteAddress, socket.remotePort);
    this.localAddress = addressOf(socket.localFamily, socket.localAddress, socket.localPort);
  }

  get isOpen(): boolean {
    return !this.closed && !this.closing && this.socket.writable;
  }

  write(text: string): boolean {
    if (this.closed || !this.socket.writable) return false;
    this.socket.write(text);
    return true;
  }

  sendEvent(fields: AmiFields, options: AmiEventOptions = {}): boolean {
    const entries = eventEntries(fields, options.timestamp ?? true);
    const text = serializeEntries(entries);
    const privilege = entries.find((e) => keyIs(e, 'privilege'))?.[1];
    return this.deliver(text, privilege);
  }

  deliver(text: string, privilege: string | undefined): boolean {
    if (!this.authenticated || this.closing || !maskAllows(this.mask, privilege)) return false;
    return this.write(text);
  }

  close(): void {
    this.closing = true;
    if (!this.closed) this.socket.end();
    // A peer that never answers our FIN must not keep the server from closing.
    setTimeout(() => {
      if (!this.closed) this.socket.destroy();
    }, 1_000).unref();
  }
}

function makeRequest(msg: AmiMessage): AmiRequest {
  const trimmed = (v: string): string => v.replace(/^[ \t]+/, '');
  const action = msg.get('Action');
  const actionId = msg.get('ActionID');
  return {
    action: action === undefined ? '' : trimmed(action),
    actionId: actionId === undefined ? undefined : trimmed(actionId),
    message: msg,
    get: (key) => {
      const v = msg.get(key);
      return v === undefined ? undefined : trimmed(v);
    },
    getAll: (key) => msg.getAll(key).map(trimmed),
  };
}

interface RegisteredAction {
  name: string;
  handler: AmiActionHandler;
  synopsis: string;
  privilege: string;
  /** The loadable module that provides it (`pbx_config`); undefined for the core's own actions. */
  module: string | undefined;
}

/**
 * Asterisk 22's manager on a TCP port, for the simulator and for tests.
 *
 * Built in: Login (plain and MD5 challenge), Logoff, Challenge, Ping, Events, Command (with a
 * pluggable CLI), CoreSettings, CoreStatus, ListCommands. Everything else is registered:
 *
 * ```ts
 * const ami = new AmiServer({ users: { asterisk: 'secret' } });
 * ami.registerAction('Hangup', (req) => {
 *   const channel = req.get('Channel');
 *   if (!channel) return amiError('No channel specified');
 *   return pbx.hangup(channel) ? amiSuccess('Channel Hungup') : amiError('No such channel');
 * });
 * ami.registerAction('Originate', (req, ctx) => ({
 *   message: 'Originate successfully queued',
 *   // Runs after the response is on the wire, so the OriginateResponse follows it.
 *   after: () => dial(req).then((r) => ami.publishEvent([
 *     ['Event', 'OriginateResponse'], ['Privilege', 'call,all'],
 *     ...(req.actionId ? [['ActionID', req.actionId] as const] : []),
 *     ['Response', r.ok ? 'Success' : 'Failure'], ['Channel', r.channel], ['Reason', String(r.reason)],
 *   ])),
 * }));
 * pbx.on('ami', (fields) => ami.publishEvent(fields));
 * await ami.listen(0);
 * ```
 */
export class AmiServer extends EventEmitter<AmiServerEventMap> {
  /** Counters for tests and diagnostics. */
  readonly stats: AmiServerStats = {
    connections: 0,
    bytesReceived: 0,
    actionsReceived: 0,
    loginAttempts: 0,
    loginFailures: 0,
  };

  private readonly users = new Map<string, string>();
  private readonly loginFailureDelayMs: number;
  private readonly authTimeoutMs: number;
  private readonly logger: Logger;
  private readonly maxLineLength: number;
  private cli: AmiCliHandler | undefined;
  private callCounts: () => AmiCallCounts;
  private readonly actions = new Map<string, RegisteredAction>();
  private readonly sessions = new Set<ServerSession>();
  private server: Server | undefined;
  private listenPort = 0;
  private sessionCounter = 0;
  private startedAt = new Date();
  private reloadedAt = new Date();
  private shuttingDown = false;
  private bootingState = false;
  /** Modules unloaded with {@link unloadModule}: their actions answer `Invalid/unknown command`. */
  private readonly unloadedModules = new Set<string>();
  private frozenState = false;
  /** Sockets corked and paused by {@link freeze}, released by {@link thaw}. */
  private readonly frozenSockets = new Set<Socket>();
  private closePromise: Promise<void> | undefined;

  constructor(options: AmiServerOptions) {
    super();
    for (const [user, secret] of Object.entries(options.users)) this.users.set(user, secret);
    this.loginFailureDelayMs = options.loginFailureDelayMs ?? 1_000;
    this.authTimeoutMs = options.authTimeoutMs ?? 30_000;
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'ami-server' });
    this.maxLineLength = options.maxLineLength ?? 64 * 1024;
    this.cli = options.cli;
    this.callCounts = options.callCounts ?? (() => ({ currentCalls: 0, processedCalls: 0 }));
    this.installBuiltIns();
  }

  /** The port listened on (after {@link listen}); 0 before. */
  get port(): number {
    return this.listenPort;
  }

  /** Number of open sessions (logged in or not). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Registers (or replaces, built-ins included) the handler of an action. Names are
   * case-insensitive, as in Asterisk. Login, Logoff and Challenge cannot be replaced. Registered
   * actions need a logged-in session: before login the server answers `Permission denied`.
   *
   * @throws {InvalidInputError} for an empty name, one with whitespace/`:`/CR/LF, or a protected one.
   */
  registerAction(
    name: string,
    handler: AmiActionHandler,
    options: { synopsis?: string; privilege?: string; module?: string } = {},
  ): void {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new InvalidInputError(`Invalid AMI action name ${JSON.stringify(name)}`);
    }
    if (PROTECTED.has(name.toLowerCase())) {
      throw new InvalidInputError(`AMI action ${name} is built in and cannot be replaced`);
    }
    this.setAction(name, handler, options.synopsis ?? name, options.privilege ?? '<none>', options.module);
  }

  /** Removes a registered action (it then answers `Invalid/unknown command`). */
  unregisterAction(name: string): void {
    if (PROTECTED.has(name.toLowerCase())) return;
    this.actions.delete(name.toLowerCase());
  }

  /** Replaces the CLI handler of `Action: Command`. */
  setCliHandler(handler: AmiCliHandler | undefined): void {
    this.cli = handler;
  }

  /** Replaces the call counters shown by CoreStatus. */
  setCallCounts(provider: () => AmiCallCounts): void {
    this.callCounts = provider;
  }

  /** Adds, changes (`secret` given) or removes (`undefined`) a manager user. Existing sessions stay. */
  setUser(username: string, secret: string | undefined): void {
    if (secret === undefined) this.users.delete(username);
    else this.users.set(username, secret);
  }

  /**
   * Broadcasts an event to every logged-in session whose event mask lets its `Privilege` through.
   * A `Timestamp` is added after `Privilege` (or `Event`) unless `options.timestamp` is false or
   * the fields already have one. Returns the number of sessions it was written to.
   *
   * @throws {InvalidInputError} when there is no `Event` field or a key/value contains CR/LF.
   */
  publishEvent(fields: AmiFields, options: AmiEventOptions = {}): number {
    const entries = eventEntries(fields, options.timestamp ?? true);
    const text = serializeEntries(entries);
    const privilege = entries.find((e) => keyIs(e, 'privilege'))?.[1];
    let delivered = 0;
    for (const session of this.sessions) if (session.deliver(text, privilege)) delivered++;
    return delivered;
  }

  /**
   * Listens on `port` (0: the OS picks one; read it from {@link port}). Resets the uptime, as a
   * freshly started Asterisk would.
   */
  async listen(port = 0, host = '127.0.0.1', tls?: { cert: string; key: string }): Promise<number> {
    if (this.server) throw new Error('AmiServer is already listening');
    // With `tls`, AMI over TLS (manager.conf tlsenable): sessions start after the handshake.
    const server = tls
      ? createTlsServer({ cert: tls.cert, key: tls.key }, (socket) => this.onConnection(socket))
      : createServer((socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ error: err.message }, 'AMI listener error'));
    this.server = server;
    this.closePromise = undefined;
    this.shuttingDown = false;
    const address = server.address();
    this.listenPort = typeof address === 'object' && address ? address.port : port;
    this.startedAt = new Date();
    this.reloadedAt = this.startedAt;
    this.logger.debug({ port: this.listenPort, host }, 'AMI server listening');
    return this.listenPort;
  }

  /**
   * Shuts down like `core stop now` / `core restart now`: logins are refused with `Asterisk is
   * shutting down` for `graceMs` (a slow restart; default 0), then every session gets
   * `Event: Shutdown` (`Shutdown: Cleanly`, `Restart: True|False`), and `closeDelayMs` later
   * (default 13, as measured) every socket is closed with a FIN and the port stops listening.
   * Call {@link listen} again (or create a new server) to come back.
   */
  async shutdown(
    options: { restart?: boolean; graceMs?: number; closeDelayMs?: number } = {},
  ): Promise<void> {
    this.shuttingDown = true;
    if (options.graceMs) await new Promise((r) => setTimeout(r, options.graceMs));
    this.publishEvent([
      ['Event', 'Shutdown'],
      ['Privilege', 'system,all'],
      ['Shutdown', 'Cleanly'],
      ['Restart', options.restart ? 'True' : 'False'],
    ]);
    await new Promise((r) => setTimeout(r, options.closeDelayMs ?? 13));
    await this.close();
  }

  /** True during the boot window (see {@link startBoot}). */
  get booting(): boolean {
    return this.bootingState;
  }

  /**
   * Starts the boot window of a (re)starting Asterisk: the manager is a built-in module loaded
   * before the others, so logins succeed (without `FullyBooted`), the core's actions answer, and
   * actions registered with a `module` (pbx_config's DialplanExtensionAdd/Remove) answer `Invalid/
   * unknown command` until {@link finishBoot}. Call it before {@link listen}.
   */
  startBoot(): void {
    this.bootingState = true;
  }

  /**
   * Ends the boot window: modules are loaded, and every logged-in session whose mask lets `system`
   * events through gets `Event: FullyBooted` (as asterisk.c publishes it, with a Timestamp).
   */
  finishBoot(): void {
    if (!this.bootingState) return;
    this.bootingState = false;
    const now = Date.now();
    this.publishEvent([
      ['Event', 'FullyBooted'],
      ['Privilege', 'system,all'],
      ['Status', 'Fully Booted'],
      ['Uptime', String(Math.floor((now - this.startedAt.getTime()) / 1000))],
      ['LastReload', String(Math.floor((now - this.reloadedAt.getTime()) / 1000))],
    ]);
  }

  /**
   * Like `module unload <name>` (or a module that failed to load): the actions registered with
   * that `module` answer `Invalid/unknown command` until {@link loadModule}.
   */
  unloadModule(name: string): void {
    this.unloadedModules.add(name);
  }

  /** Undoes {@link unloadModule}. */
  loadModule(name: string): void {
    this.unloadedModules.delete(name);
  }

  /** False for a module unloaded with {@link unloadModule}. */
  isModuleLoaded(name: string): boolean {
    return !this.unloadedModules.has(name);
  }

  /** True between {@link freeze} and {@link thaw}. */
  get frozen(): boolean {
    return this.frozenState;
  }

  /**
   * Stops answering without closing anything, as a process stopped with SIGSTOP (or a blackholed
   * port) does: every socket stops being read and whatever the server writes is held back; a new
   * connection is accepted but gets no greeting. {@link thaw} delivers what was held and reads on.
   */
  freeze(): void {
    if (this.frozenState) return;
    this.frozenState = true;
    for (const session of this.sessions) this.freezeSocket(session.socket);
  }

  /** Undoes {@link freeze}: held output is written, input is read again. */
  thaw(): void {
    if (!this.frozenState) return;
    this.frozenState = false;
    for (const socket of this.frozenSockets) {
      if (socket.destroyed) continue;
      socket.uncork();
      socket.resume();
    }
    this.frozenSockets.clear();
  }

  private freezeSocket(socket: Socket): void {
    if (this.frozenSockets.has(socket)) return;
    this.frozenSockets.add(socket);
    socket.cork();
    socket.pause();
  }

  /**
   * Stops listening and closes every session (FIN; destroyed if the peer lingers over 1 s).
   * Idempotent; resolves when every socket is closed.
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // A frozen process that is killed writes nothing more: what it held back is lost.
    for (const socket of this.frozenSockets) socket.destroy();
    this.frozenSockets.clear();
    this.frozenState = false;
    const closing = [...this.sessions].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.closed) resolve();
          else s.socket.once('close', () => resolve());
          s.close();
        }),
    );
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(closing);
  }

  // --- sessions --------------------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    this.stats.connections++;
    const session = new ServerSession(++this.sessionCounter, socket, this.maxLineLength, () =>
      this.logger.warn({ sessionId: session.sessionId }, 'AMI request line too long; request dropped'),
    );
    this.sessions.add(session);
    socket.setNoDelay(true);
    socket.on('error', (err) =>
      this.logger.debug({ sessionId: session.sessionId, error: err.message }, 'AMI socket error'),
    );
    socket.on('close', () => {
      session.closed = true;
      clearTimeout(session.authTimer);
      this.sessions.delete(session);
      this.emit('session-closed', { sessionId: session.sessionId, username: session.username });
    });
    socket.on('data', (chunk: Buffer) => {
      this.stats.bytesReceived += chunk.length;
      try {
        for (const msg of session.parser.push(session.lineLimiter.push(chunk))) this.onRequest(session, msg);
      } catch (err) {
        // Nothing a client sends may take the server down; log our bug and keep serving.
        this.logger.error(
          { sessionId: session.sessionId, error: String(err) },
          'AMI request handling failed',
        );
      }
    });
    session.authTimer = setTimeout(() => {
      if (!session.authenticated) session.socket.destroy();
    }, this.authTimeoutMs);
    session.authTimer.unref();
    // A frozen PBX's kernel still accepts the connection; the greeting waits for the thaw.
    if (this.frozenState) this.freezeSocket(socket);
    socket.write(`${AMI_GREETING}\r\n`);
  }

  private onRequest(session: ServerSession, msg: AmiMessage): void {
    if (session.closing || session.closed) return;
    this.stats.actionsReceived++;
    const req = makeRequest(msg);
    if (msg.get(LINE_TOO_LONG_KEY) !== undefined) {
      this.writeReply(session, req, amiError('Failed to parse message: line too long'));
      return;
    }
    this.emit('action', req, session);
    let result: AmiReply | null | Promise<AmiReply | null>;
    try {
      result = this.route(session, req);
    } catch (err) {
      result = this.handlerFailed(req, err);
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => this.writeReply(session, req, reply),
        (err: unknown) => this.writeReply(session, req, this.handlerFailed(req, err)),
      );
    } else {
      // Synchronous replies are written at once, so they keep the order the requests came in.
      this.writeReply(session, req, result);
    }
  }

  private handlerFailed(req: AmiRequest, err: unknown): AmiReply {
    const message = err instanceof Error ? err.message : String(err);
    this.logger.warn({ action: req.action, error: message }, 'AMI action handler failed');
    return amiError(message.replace(/[\r\n]+/g, ' ') || 'Internal error');
  }

  private route(session: ServerSession, req: AmiRequest): AmiReply | null | Promise<AmiReply | null> {
    if (req.action === '') return amiError('Missing action in request');
    const lower = req.action.toLowerCase();
    if (this.shuttingDown && lower !== 'logoff') return amiError('Asterisk is shutting down');
    if (!session.authenticated && !UNAUTHENTICATED_OK.has(lower)) return amiError('Permission denied');
    const registered = this.actions.get(lower);
    if (!registered || !this.available(registered)) {
      return amiError(
        `Invalid/unknown command: ${req.action}. Use Action: ListCommands to show available commands.`,
      );
    }
    return registered.handler(req, session);
  }

  private writeReply(session: ServerSession, req: AmiRequest, reply: AmiReply | null): void {
    if (!reply) return;
    let text: string;
    try {
      text = this.formatReply(req, reply);
    } catch (err) {
      // A handler produced a CR/LF in a field: never let it corrupt the stream.
      text = this.formatReply(req, this.handlerFailed(req, err));
    }
    session.write(text);
    if (reply.close) session.close();
    if (reply.after) {
      try {
        reply.after();
      } catch (err) {
        this.logger.warn({ action: req.action, error: String(err) }, 'AMI reply after() hook failed');
      }
    }
  }

  private formatReply(req: AmiRequest, reply: AmiReply): string {
    const entries: AmiEntry[] = [['Response', reply.response ?? 'Success']];
    if (req.actionId !== undefined) entries.push(['ActionID', req.actionId]);
    if (reply.list) entries.push(['EventList', 'start']);
    if (reply.message !== undefined) entries.push(['Message', reply.message]);
    if (reply.fields) entries.push(...toEntries(reply.fields));
    let text = serializeEntries(entries);
    if (reply.list) {
      const withId = (fields: AmiFields): AmiEntry[] => {
        const list = eventEntries(fields, false);
        return req.actionId === undefined ? list : withEntryAfter(list, 'ActionID', req.actionId, ['event']);
      };
      for (const item of reply.list.items) text += serializeEntries(withId(item));
      text += serializeEntries(
        withId([
          ['Event', reply.list.completeEvent],
          ['EventList', 'Complete'],
          ['ListItems', String(reply.list.items.length)],
          ...toEntries(reply.list.completeFields ?? []),
        ]),
      );
    }
    return text;
  }

  // --- built-in actions ------------------------------------------------------------------------

  private setAction(
    name: string,
    handler: AmiActionHandler,
    synopsis: string,
    privilege: string,
    module?: string,
  ): void {
    this.actions.set(name.toLowerCase(), { name, handler, synopsis, privilege, module });
  }

  /** Whether an action answers now: a module's actions exist only once (and while) it is loaded. */
  private available(action: RegisteredAction): boolean {
    return action.module === undefined || (!this.bootingState && !this.unloadedModules.has(action.module));
  }

  private installBuiltIns(): void {
    this.setAction('Login', (req, ctx) => this.login(req, ctx as ServerSession), 'Login Manager.', '<none>');
    this.setAction(
      'Logoff',
      (_req, ctx) => {
        (ctx as ServerSession).closing = true;
        return { response: 'Goodbye', message: 'Thanks for all the fish.', close: true };
      },
      'Logoff Manager.',
      '<none>',
    );
    this.setAction(
      'Challenge',
      (req, ctx) => this.challenge(req, ctx as ServerSession),
      'Generate Challenge for MD5 Auth.',
      '<none>',
    );
    this.setAction(
      'Ping',
      () =>
        amiSuccess(undefined, [
          ['Ping', 'Pong'],
          ['Timestamp', amiTimestamp()],
        ]),
      'Keepalive command.',
      '<none>',
    );
    this.setAction(
      'Events',
      (req, ctx) => this.events(req, ctx as ServerSession),
      'Control Event Flow.',
      '<none>',
    );
    this.setAction(
      'Command',
      (req, ctx) => this.command(req, ctx),
      'Execute Asterisk CLI Command.',
      'command,all',
    );
    this.setAction(
      'CoreSettings',
      () => this.coreSettings(),
      'Show PBX core settings (version etc).',
      'system,reporting,all',
    );
    this.setAction(
      'CoreStatus',
      () => this.coreStatus(),
      'Show PBX core status variables.',
      'system,reporting,all',
    );
    this.setAction('ListCommands', () => this.listCommands(), 'List available manager commands.', '<none>');
  }

  private login(req: AmiRequest, session: ServerSession): AmiReply | Promise<AmiReply> {
    if (session.authenticated) return amiSuccess('Already authenticated');
    this.stats.loginAttempts++;
    const username = req.get('Username');
    const secret = username === undefined ? undefined : this.users.get(username);
    let ok = false;
    if (secret !== undefined) {
      if (req.get('AuthType')?.toLowerCase() === 'md5') {
        const key = req.get('Key') ?? '';
        const expected = session.challenge
          ? createHash('md5')
              .update(session.challenge + secret)
              .digest('hex')
          : undefined;
        ok = expected !== undefined && sameSecret(key.toLowerCase(), expected);
      } else {
        ok = sameSecret(req.get('Secret') ?? '', secret);
      }
    }
    this.emit('login', { username, ok, sessionId: session.sessionId });
    if (!ok) {
      this.stats.loginFailures++;
      session.closing = true;
      // The username only: the secret given is never logged, right or wrong.
      this.logger.warn({ sessionId: session.sessionId, username }, 'AMI login failed');
      return new Promise<AmiReply>((resolve) => {
        const timer = setTimeout(
          () => resolve({ response: 'Error', message: 'Authentication failed', close: true }),
          this.loginFailureDelayMs,
        );
        session.socket.once('close', () => clearTimeout(timer));
      });
    }
    session.authenticated = true;
    session.username = username;
    session.mask = parseEventMask(req.get('Events'));
    clearTimeout(session.authTimer);
    this.logger.debug({ sessionId: session.sessionId, username }, 'AMI login accepted');
    return {
      response: 'Success',
      message: 'Authentication accepted',
      after: () => {
        const now = Date.now();
        // manager.c sends it at login only once ast_fully_booted is set; during the boot window the
        // session gets the broadcast FullyBooted at the end of boot instead (see finishBoot).
        if (!this.bootingState) {
          session.sendEvent(
            [
              ['Event', 'FullyBooted'],
              ['Privilege', 'system,all'],
              ['Uptime', String(Math.floor((now - this.startedAt.getTime()) / 1000))],
              ['LastReload', String(Math.floor((now - this.reloadedAt.getTime()) / 1000))],
              ['Status', 'Fully Booted'],
            ],
            { timestamp: false },
          );
        }
        const tv = eventTv(new Date(now));
        session.sendEvent([
          ['Event', 'SuccessfulAuth'],
          ['Privilege', 'security,all'],
          ['EventTV', tv],
          ['Severity', 'Informational'],
          ['Service', 'AMI'],
          ['EventVersion', '1'],
          ['AccountID', username ?? ''],
          ['SessionID', session.asteriskSessionId],
          ['LocalAddress', session.localAddress],
          ['RemoteAddress', session.remoteAddress],
          ['UsingPassword', '0'],
          ['SessionTV', tv],
        ]);
      },
    };
  }

  private challenge(req: AmiRequest, session: ServerSession): AmiReply {
    if (req.get('AuthType')?.toLowerCase() !== 'md5') return amiError('Must specify AuthType');
    session.challenge ??= String(randomInt(100_000_000, 999_999_999));
    return amiSuccess(undefined, [['Challenge', session.challenge]]);
  }

  private events(req: AmiRequest, session: ServerSession): AmiReply {
    const mask = parseEventMask(req.get('EventMask') ?? 'off');
    session.mask = mask;
    return amiSuccess(undefined, [['Events', mask === 'none' ? 'Off' : 'On']]);
  }

  private command(req: AmiRequest, ctx: AmiSessionContext): AmiReply | Promise<AmiReply> {
    const command = req.get('Command');
    if (command === undefined || command.trim() === '') return amiError('No command provided');
    const reply = (result: AmiCliResult | undefined): AmiReply => {
      const { ok, lines } = result ?? this.builtInCli(command);
      // One Output header per line; a CR or LF inside a line would end the header early.
      const output = lines.flatMap((l) => l.split('\n')).map((l) => l.replace(/\r/g, ''));
      return {
        response: ok ? 'Success' : 'Error',
        message: 'Command output follows',
        fields: output.map((l): AmiEntry => ['Output', l]),
      };
    };
    const result = this.cli?.(command, ctx);
    // Stay synchronous when the CLI is: replies then keep the order of the requests, as in Asterisk.
    return result instanceof Promise ? result.then(reply) : reply(result);
  }

  private builtInCli(command: string): AmiCliResult {
    const words = command.trim().split(/\s+/);
    const cmd = words.join(' ').toLowerCase();
    const now = Date.now();
    if (cmd === 'core show version') {
      return { ok: true, lines: [`Asterisk ${ASTERISK_VERSION} ${BUILD_INFO}`] };
    }
    if (cmd === 'core show uptime' || cmd === 'core show uptime seconds') {
      const up = (now - this.startedAt.getTime()) / 1000;
      const reload = (now - this.reloadedAt.getTime()) / 1000;
      if (cmd.endsWith('seconds')) {
        return {
          ok: true,
          lines: [`System uptime: ${Math.floor(up)}`, `Last reload: ${Math.floor(reload)}`],
        };
      }
      return { ok: true, lines: [`System uptime: ${uptimeText(up)}`, `Last reload: ${uptimeText(reload)}`] };
    }
    if (cmd === 'core show channels') {
      const counts = this.callCounts();
      return {
        ok: true,
        lines: [
          `${'Channel'.padEnd(64)} ${'Location'.padEnd(32)} ${'State'.padEnd(7)} ${'Application(Data)'.padEnd(30)}`,
          `${plural(counts.currentCalls, 'active channel')}`,
          `${plural(counts.currentCalls, 'active call')}`,
          `${plural(counts.processedCalls, 'call')} processed`,
        ],
      };
    }
    return {
      ok: false,
      lines: [
        `No such command '${command}' (type 'core show help ${bestHelpPrefix(words)}' for other possible commands)`,
      ],
    };
  }

  private coreSettings(): AmiReply {
    return amiSuccess(undefined, [
      ['AMIversion', AMI_VERSION],
      ['AsteriskVersion', ASTERISK_VERSION],
      ['SystemName', ''],
      ['CoreMaxCalls', '0'],
      ['CoreMaxLoadAvg', '0.000000'],
      ['CoreRunUser', ''],
      ['CoreRunGroup', ''],
      ['CoreMaxFilehandles', '0'],
      ['CoreRealTimeEnabled', 'No'],
      ['CoreCDRenabled', 'Yes'],
      ['CoreHTTPenabled', 'Yes'],
      ['SoundsSearchCustomDir', 'No'],
    ]);
  }

  private coreStatus(): AmiReply {
    const counts = this.callCounts();
    const day = (d: Date): string => d.toISOString().slice(0, 10);
    const time = (d: Date): string => d.toISOString().slice(11, 19);
    return amiSuccess(undefined, [
      ['CoreStartupDate', day(this.startedAt)],
      ['CoreStartupTime', time(this.startedAt)],
      ['CoreReloadDate', day(this.reloadedAt)],
      ['CoreReloadTime', time(this.reloadedAt)],
      ['CoreCurrentCalls', String(counts.currentCalls)],
      ['CoreProcessedCalls', String(counts.processedCalls)],
    ]);
  }

  private listCommands(): AmiReply {
    const fields: AmiEntry[] = [...this.actions.values()]
      .filter((a) => this.available(a))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((a) => [a.name, `${a.synopsis} (Priv: ${a.privilege})`]);
    return amiSuccess(undefined, fields);
  }
}
