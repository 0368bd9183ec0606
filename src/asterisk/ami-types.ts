/**
 * Public types of the AMI client: what an action resolves with, what an event looks like, and
 * the options and events of {@link AmiClient}.
 */

import type { Logger } from '../logger.js';
import type { AmiMessage } from './ami-codec.js';
import type { AsteriskTlsOptions } from './tls.js';

/** Header values as a record: a key that occurs once maps to a string, a repeated key to an array. */
export type AmiFieldRecord = Readonly<Record<string, string | string[]>>;

/** An AMI event, e.g. `Hangup`, `UserEvent`, `OriginateResponse`. */
export interface AmiEvent {
  /** The `Event:` header, e.g. `Hangup`. */
  readonly name: string;
  /** The `ActionID` header, present on events caused by an action (list items, OriginateResponse). */
  readonly actionId?: string;
  /** Every header; repeated keys (`Exten` of a dialplan UserEvent) as arrays. */
  readonly fields: AmiFieldRecord;
  /** The parsed message, for ordered access and case-insensitive `get`/`getAll`. */
  readonly message: AmiMessage;
}

/** The `Response:` of an action. Asterisk uses these four; others are passed through. */
export type AmiResponseStatus = 'Success' | 'Error' | 'Goodbye' | 'Follows' | (string & Record<never, never>);

/** What {@link AmiClient.action} resolves with. */
export interface AmiResponse {
  /** `Success`, `Goodbye` (Logoff), `Follows` (legacy Command)… never `Error` (that rejects). */
  readonly response: AmiResponseStatus;
  /** The ActionID the client assigned. */
  readonly actionId: string;
  /** The `Message:` header, if any. */
  readonly message?: string;
  /** Every header of the response; repeated keys (`Output`) as arrays. */
  readonly fields: AmiFieldRecord;
  /**
   * For list actions (response with `EventList: start`): the item events, in order, without the
   * final `…Complete` event. Empty for other actions.
   */
  readonly events: readonly AmiEvent[];
  /** For list actions: the closing event (`CoreShowChannelsComplete`, `ListItems: n`…). */
  readonly complete?: AmiEvent;
  /** The parsed response message. */
  readonly raw: AmiMessage;
}

/** Reconnection delays: capped exponential backoff with jitter (see `backoff.ts`). */
export interface AmiReconnectBackoff {
  /** First delay in ms. Default 250. */
  initialMs?: number;
  /** Largest delay in ms. Default 10 000. */
  maxMs?: number;
}

/** Options of {@link AmiClient}. */
export interface AmiClientOptions {
  host: string;
  port: number;
  /** manager.conf user. */
  username: string;
  /** That user's secret. Never logged, never shown in an error. */
  password: string;
  logger?: Logger;
  /** Time limit of one action (and of the Login) in ms. Default 10 000. */
  actionTimeoutMs?: number;
  /** Time limit for the TCP connection plus the greeting, in ms. Default: `actionTimeoutMs`. */
  connectTimeoutMs?: number;
  /** Interval of keep-alive Pings in ms; 0 disables them. Default 20 000. */
  keepAliveMs?: number;
  /**
   * A keep-alive Ping unanswered for this long (ms) counts as a dead connection (a stopped or
   * unreachable Asterisk that closed nothing): the socket is dropped and the client reconnects.
   * A dead connection is noticed within `keepAliveMs + keepAliveTimeoutMs`. Default: `actionTimeoutMs`.
   */
  keepAliveTimeoutMs?: number;
  /** Reconnect (and log in again) after a lost connection, forever. Default true. */
  reconnect?: boolean;
  /** Delays between reconnection attempts. */
  reconnectBackoff?: AmiReconnectBackoff;
  /** How long an action issued while disconnected waits for the connection, in ms. Default 5 000. */
  queueWhileDisconnectedMs?: number;
  /**
   * Which events to receive: `true` (all, the default), `false` (none), or event classes such as
   * `['call', 'system', 'user']`. `originate()` needs the `call` class.
   */
  events?: boolean | readonly string[];
  /**
   * Connect over TLS (manager.conf `tlsenable`, usually port 5039), verifying Asterisk's
   * certificate against Node's root CAs plus `ca`, for `host` or `servername`. `true`: TLS with the
   * defaults. Default: plain TCP.
   */
  tls?: boolean | AsteriskTlsOptions;
}

/** Why the connection went away, passed to the `disconnected` listeners. */
export interface AmiDisconnectInfo {
  /** A short human-readable reason (`socket closed`, `keep-alive timed out`, `Asterisk shut down`…). */
  readonly reason: string;
  /** The socket error, if there was one. */
  readonly error?: Error;
  /** True when Asterisk announced it (`Event: Shutdown`) before closing. */
  readonly shutdown: boolean;
}

/** The client's own events and their listener arguments. Any other name is an AMI event name. */
export interface AmiClientEventMap {
  /** Every AMI event that is not part of a list action's answer. */
  event: [event: AmiEvent];
  /** Logged in (first connect and every reconnect). */
  connected: [];
  /** The logged-in connection was lost. Follows with `reconnected` when it comes back. */
  disconnected: [info: AmiDisconnectInfo];
  /** Logged in again after a `disconnected`. */
  reconnected: [];
  /**
   * A failure outside any call: a wrong secret at re-login (an AuthenticationError; reconnecting
   * stops). Without an `error` listener it is logged instead of thrown, so the process lives.
   */
  error: [error: Error];
}

/** Options of one action. */
export interface AmiActionOptions {
  /** Time limit for this action in ms (after it was sent). Default: the client's `actionTimeoutMs`. */
  timeoutMs?: number;
}

/** Options of {@link AmiClient.originate}. */
export interface AmiOriginateOptions {
  /**
   * How long to wait for `OriginateResponse` in ms. Default: the `Timeout` field (Asterisk's
   * default 30 000 when absent) plus `actionTimeoutMs`.
   */
  timeoutMs?: number;
}

/**
 * What the client did with its input, since it was created (all connections). Input that is not
 * a usable AMI message is dropped and counted here (and logged, at most once per 10 s per kind),
 * never thrown at listeners.
 */
export interface AmiInputStats {
  /** Messages parsed (events, responses and the rest). */
  readonly messages: number;
  /** Lines or messages the parser dropped for being over a limit (line length, message length, line count). */
  readonly dropped: number;
  /** Messages with neither `Event` nor `Response` (garbage, a partial frame). */
  readonly ignored: number;
  /** Responses whose ActionID matches no action in flight (late after a timeout, or unknown). */
  readonly unmatchedResponses: number;
  /**
   * Most UTF-16 units the parser held at once for an unfinished line or message: bounded by its
   * limits (1 MiB line, 16 MiB message), whatever the peer sends.
   */
  readonly maxBuffered: number;
}
