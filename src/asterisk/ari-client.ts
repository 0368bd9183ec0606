/**
 * asteramisk's own ARI client: typed REST resources, a typed event emitter on one events websocket
 * that reconnects forever, and channel resynchronisation after a reconnect. Everything is per
 * instance (credentials, sockets, listeners), so two clients may talk to two Asterisks in one process.
 */

import { AriListenerError, type AsteramiskError, AsteriskConnectionError, ConfigError } from '../errors.js';
import { LogThrottle } from '../log-throttle.js';
import { childLogger, type Logger, silentLogger } from '../logger.js';
import {
  type AriDisconnectInfo,
  AriEventStream,
  type AriEventStreamState,
  type ReconnectOptions,
} from './ari-event-stream.js';
import {
  type AriEvent,
  type AriEventOf,
  type AriEventType,
  parseAriEvent,
  type UnknownAriEvent,
} from './ari-events.js';
import {
  AriHttp,
  type AriHttpMethod,
  type AriHttpOptions,
  type AriRequestFn,
  type AriRequestObserver,
  type AriRequestOptions,
  basicAuthorization,
} from './ari-http.js';
import { ApplicationsResource } from './ari-resources/applications.js';
import { AsteriskResource } from './ari-resources/asterisk.js';
import { BridgesResource } from './ari-resources/bridges.js';
import { ChannelsResource } from './ari-resources/channels.js';
import { EndpointsResource } from './ari-resources/endpoints.js';
import { EventsResource } from './ari-resources/events.js';
import { PlaybacksResource } from './ari-resources/playbacks.js';
import { RecordingsResource } from './ari-resources/recordings.js';
import type { Channel } from './ari-types.js';
import { backoffDelay } from './backoff.js';
import type { AsteriskTlsOptions } from './tls.js';

export type { AriDisconnectInfo, AriEventStreamState, ReconnectOptions } from './ari-event-stream.js';

/** Options of {@link AriClient}. */
export interface AriClientOptions {
  /** ARI base, `http(s)://host:port` (e.g. `http://127.0.0.1:8088`); `/ari` is added. */
  url: string;
  /** ARI user (ari.conf). */
  username: string;
  /** ARI password; kept in this instance only, never logged. */
  password: string;
  /** Stasis application this client registers and receives events for. */
  app: string;
  /** Receive every event of the system, not only those of the app's channels. Default false. */
  subscribeAll?: boolean;
  /** Where the client logs. Default: silent. */
  logger?: Logger;
  /** Time limit per REST request in ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Most HTTP connections to ARI at once. Default 16 (see {@link AriHttpOptions.maxConnections}). */
  maxConnections?: number;
  /** Reconnection delays of the events websocket. Default `{ initialMs: 250, maxMs: 10_000 }`. */
  reconnect?: ReconnectOptions;
  /** Interval of the websocket ping watchdog in ms (0: off). Default 10 000. */
  pingIntervalMs?: number;
  /** A ping unanswered for this long (ms) counts as a dead connection. Default 5 000. */
  pongTimeoutMs?: number;
  /** Time limit of a websocket opening handshake in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /**
   * For an `https://` url (REST over https, events over wss): CAs trusted in addition to Node's
   * root CAs, and the name the certificate must carry when it is not the url's host. Asterisk's
   * certificate is always verified.
   */
  tls?: AsteriskTlsOptions;
}

/** What `reconnected` reports. */
export interface AriReconnectedInfo {
  /** Channels of this app that vanished while disconnected (each also got a `channelLost`). */
  lostChannelIds: string[];
  /** False when `GET /channels` failed, so lost channels could not be determined (an `error` says why). */
  resynchronised: boolean;
}

/**
 * The client's own events, with their listener arguments:
 * - `event`: every known ARI event (narrow it with `switch (e.type)`).
 * - `unknownEvent`: a valid event of a type this library does not model.
 * - `disconnected`: the events websocket went away; the client reconnects by itself.
 * - `reconnected`: the websocket is back and lost channels were reported.
 * - `channelLost`: a channel that was in this app (StasisStart seen, no StasisEnd) no longer exists
 *   after a reconnect, e.g. Asterisk restarted: its owner should end it.
 * - `error`: a problem that did not stop the client (malformed frame, throwing listener, failed
 *   resync), or an {@link AuthenticationError} on reconnect, after which the client stops.
 */
export interface AriClientOwnEvents {
  event: [event: AriEvent];
  unknownEvent: [event: UnknownAriEvent];
  disconnected: [info: AriDisconnectInfo];
  reconnected: [info: AriReconnectedInfo];
  channelLost: [channelId: string];
  error: [error: Error];
}

/** Every event name the client emits with its listener arguments: its own plus one per ARI event type. */
export type AriClientEvents = AriClientOwnEvents & { [K in AriEventType]: [event: AriEventOf<K>] };

/**
 * A listener of event `K`. It may be async (the `void` return type accepts a promise): a rejection
 * is reported like a throw.
 */
export type AriClientListener<K extends keyof AriClientEvents> = (...args: AriClientEvents[K]) => void;

/** Marks a once() wrapper with the listener it wraps, so off(listener) removes it too. */
const ORIGINAL = Symbol('original listener');

type AnyListener = ((...args: unknown[]) => unknown) & { [ORIGINAL]?: AnyListener };

/** Resync attempts of `GET /channels` after a reconnect before giving up (with an `error`). */
const RESYNC_ATTEMPTS = 3;

/**
 * How long a frame is remembered to recognise a second copy of it. Asterisk 22 sends an event once
 * per subscription that covers it: a channel in this app's Stasis whose endpoint the app is also
 * subscribed to (`endpoint:PJSIP`, needed for SIP MESSAGEs) has every channel event (DTMF, state,
 * variables, hangup request) sent twice, byte for byte, one right after the other.
 */
const DUPLICATE_WINDOW_MS = 1000;
/**
 * Frames longer than this are not remembered for duplicate detection: Asterisk's second copies are
 * channel events of a few KB, and remembering big frames would let a peer pin memory for a second.
 */
const DUPLICATE_MAX_FRAME = 64 * 1024;
/** Most characters of recent frames kept for duplicate detection; the oldest go first beyond it. */
const DUPLICATE_MAX_TOTAL = 4 * 1024 * 1024;

/**
 * A 32-bit fingerprint of an event frame: its length and its first 192 characters (type,
 * timestamp, and the start of the object the event is about). Distinct frames may share one; the
 * duplicate check compares the full text after it.
 */
function frameFingerprint(text: string): number {
  let h = text.length | 0;
  const end = Math.min(text.length, 192);
  for (let i = 0; i < end; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  return h;
}

/**
 * A client of one Asterisk's ARI for one Stasis application.
 *
 * ```ts
 * const ari = new AriClient({ url: 'http://127.0.0.1:8088', username: 'u', password: 'p', app: 'myapp' });
 * ari.on('StasisStart', async (e) => {
 *   await ari.channels.answer(e.channel.id);
 *   await ari.channels.play(e.channel.id, 'sound:hello-world');
 * });
 * ari.on('error', (err) => log.warn(err));
 * await ari.connect();
 * ```
 *
 * Listeners are registered once and survive reconnections. A listener that throws never breaks the
 * client: the error is emitted as `error` (or logged when it came from an `error` listener or no
 * `error` listener exists) — unlike Node's EventEmitter, an unheard `error` never throws.
 */
export class AriClient {
  /** The Stasis application. */
  readonly app: string;
  /** `/channels` operations. */
  readonly channels: ChannelsResource;
  /** `/bridges` operations. */
  readonly bridges: BridgesResource;
  /** `/playbacks` operations. */
  readonly playbacks: PlaybacksResource;
  /** `/recordings` operations. */
  readonly recordings: RecordingsResource;
  /** `/endpoints` operations, including text messages. */
  readonly endpoints: EndpointsResource;
  /** `/applications` operations (subscriptions). */
  readonly applications: ApplicationsResource;
  /** `/asterisk` operations (info, ping, modules, global variables). */
  readonly asterisk: AsteriskResource;
  /** `/events` operations (user events). */
  readonly events: EventsResource;

  readonly #http: AriHttp;
  readonly #stream: AriEventStream;
  readonly #logger: Logger;
  readonly #reconnect: ReconnectOptions | undefined;
  readonly #listeners = new Map<string, AnyListener[]>();
  /** Channels in this app: StasisStart seen, StasisEnd not yet. */
  readonly #stasisChannels = new Set<string>();
  /** Channels whose StasisStart arrived while the last reconnect's resync ran (see #onReopened). */
  #startedDuringResync: Set<string> | undefined;
  /** True between a `disconnected` and its `reconnected`, so each is emitted once per outage. */
  #disconnectAnnounced = false;
  /** Bumped on each disconnect and on close, so a resync that outlived its socket stops. */
  #generation = 0;
  /** Frames of the last {@link DUPLICATE_WINDOW_MS}, oldest first, with their arrival time. */
  readonly #recentFrames: string[] = [];
  /** Arrival time of each of #recentFrames; both are queues whose live part starts at #recentHead. */
  readonly #recentAt: number[] = [];
  #recentHead = 0;
  /** The recent frames by {@link frameFingerprint}: a frame, or several on a collision. */
  readonly #recentByPrint = new Map<number, string | string[]>();
  /** Characters held in #recentFrames. */
  #recentChars = 0;
  #duplicatesDropped = 0;
  #malformedDropped = 0;
  readonly #malformedLog = new LogThrottle();

  constructor(options: AriClientOptions) {
    if (!options.app) throw new ConfigError('app', 'AriClient needs a Stasis app name (option `app`)');
    this.app = options.app;
    this.#logger = childLogger(options.logger ?? silentLogger, { component: 'ari', app: options.app });
    this.#reconnect = options.reconnect;
    // Built once and handed to both halves; the password itself is not kept.
    const authorization = basicAuthorization(options.username, options.password);
    this.#http = new AriHttp({
      url: options.url,
      authorization,
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      logger: this.#logger,
    });
    this.#stream = new AriEventStream(
      {
        url: options.url,
        authorization,
        app: options.app,
        subscribeAll: options.subscribeAll,
        reconnect: options.reconnect,
        pingIntervalMs: options.pingIntervalMs,
        pongTimeoutMs: options.pongTimeoutMs,
        connectTimeoutMs: options.connectTimeoutMs,
        ...(options.tls ? { tls: options.tls } : {}),
        logger: this.#logger,
      },
      {
        onMessage: (text) => this.#onFrame(text),
        onDisconnected: (info) => this.#onDisconnected(info),
        onReopened: () => {
          this.#onReopened().catch((error: unknown) =>
            this.#emit(
              'error',
              new AsteriskConnectionError('Resynchronisation after reconnect failed', { cause: error }),
            ),
          );
        },
        onFatal: (error) => this.#emit('error', error),
      },
    );
    const request: AriRequestFn = (method, path, opts) => this.#http.request(method, path, opts);
    this.channels = new ChannelsResource(request, options.app);
    this.bridges = new BridgesResource(request);
    this.playbacks = new PlaybacksResource(request);
    this.recordings = new RecordingsResource(request);
    this.endpoints = new EndpointsResource(request);
    this.applications = new ApplicationsResource(request);
    this.asterisk = new AsteriskResource(request);
    this.events = new EventsResource(request, options.app);
  }

  /** The ARI base URL (`http(s)://host:port/ari`), without credentials. */
  get baseUrl(): string {
    return this.#http.baseUrl;
  }

  /** State of the events websocket. */
  get state(): AriEventStreamState {
    return this.#stream.state;
  }

  /** True while the events websocket is open. */
  get connected(): boolean {
    return this.#stream.state === 'open';
  }

  /**
   * Frames dropped as second copies of a frame just received (see {@link DUPLICATE_WINDOW_MS}):
   * each event is delivered once, however many of the app's subscriptions cover it.
   */
  get duplicateEventsDropped(): number {
    return this.#duplicatesDropped;
  }

  /**
   * Frames of the events websocket dropped as not ARI events: not JSON, not an object, no `type`,
   * a known type without a field it requires or with a field of the wrong type, or a binary frame.
   * Each is reported to `error` listeners (and logged at most once per 10 s), never thrown.
   */
  get malformedEventsDropped(): number {
    return this.#malformedDropped + this.#stream.binaryFramesDropped;
  }

  /** Ids of the channels currently in this app (StasisStart seen, StasisEnd not yet). */
  get stasisChannelIds(): ReadonlySet<string> {
    return this.#stasisChannels;
  }

  /**
   * Opens the events websocket and registers the app. Resolves once open, which also proves the
   * credentials. Rejects with {@link AuthenticationError} on a wrong user or password, and with
   * {@link AsteriskConnectionError} when Asterisk is unreachable or not ready; the first
   * connection is not retried. Once open, the client reconnects by itself until {@link close}.
   */
  connect(): Promise<void> {
    return this.#stream.connect();
  }

  /**
   * While the websocket is down, tries to reconnect now rather than after the backoff delay: for
   * a caller that knows Asterisk is back (AMI said FullyBooted). Otherwise does nothing.
   */
  reconnectNow(): void {
    this.#stream.reconnectNow();
  }

  /** Closes the websocket and stops reconnecting. Idempotent. Listeners stay registered. */
  async close(): Promise<void> {
    this.#generation++;
    this.#stasisChannels.clear();
    this.#recentFrames.length = 0;
    this.#recentAt.length = 0;
    this.#recentHead = 0;
    this.#recentByPrint.clear();
    this.#recentChars = 0;
    this.#disconnectAnnounced = false;
    await this.#stream.close();
    await this.#http.close();
  }

  /** Reports every REST request once it has an answer or failed (metrics); returns the undo. */
  observeRequests(observer: AriRequestObserver): () => void {
    return this.#http.observe(observer);
  }

  /**
   * Sends any ARI request, for operations without a typed method. `path` is relative to `/ari`
   * (`/deviceStates`); encode path segments with `encodeURIComponent`.
   */
  request<T>(method: AriHttpMethod, path: string, options?: AriRequestOptions): Promise<T> {
    return this.#http.request<T>(method, path, options);
  }

  /** Adds a listener, e.g. `on('StasisStart', e => e.args)` or `on('channelLost', id => …)`. */
  on<K extends keyof AriClientEvents>(name: K, listener: AriClientListener<K>): this {
    const list = this.#listeners.get(name) ?? [];
    list.push(listener as AnyListener);
    this.#listeners.set(name, list);
    return this;
  }

  /** Adds a listener called at most once. */
  once<K extends keyof AriClientEvents>(name: K, listener: AriClientListener<K>): this {
    // Returns the listener's result so a rejected promise of an async listener is still reported.
    const wrapper: AnyListener = (...args) => {
      this.off(name, wrapper as AriClientListener<K>);
      return (listener as AnyListener)(...args);
    };
    wrapper[ORIGINAL] = listener as AnyListener;
    return this.on(name, wrapper as AriClientListener<K>);
  }

  /** Removes a listener added with {@link on} or {@link once}. */
  off<K extends keyof AriClientEvents>(name: K, listener: AriClientListener<K>): this {
    const list = this.#listeners.get(name);
    if (!list) return this;
    const target = listener as AnyListener;
    const index = list.findIndex((l) => l === target || l[ORIGINAL] === target);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#listeners.delete(name);
    return this;
  }

  /** Number of listeners of an event. */
  listenerCount(name: keyof AriClientEvents): number {
    return this.#listeners.get(name)?.length ?? 0;
  }

  /** Calls each listener of `name`; a throw or rejection is reported, never propagated. */
  #emit<K extends keyof AriClientEvents>(name: K, ...args: AriClientEvents[K]): void {
    const list = this.#listeners.get(name);
    if (!list || list.length === 0) {
      if (name === 'error') {
        const error = args[0] as Error;
        this.#logger.error({ err: error.message, code: (error as AsteramiskError).code }, 'ARI client error');
      }
      return;
    }
    // A copy: a listener that removes itself (once) must not make the next one skipped.
    for (const listener of [...list]) {
      try {
        const result = listener(...args);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (error: unknown) => this.#listenerFailed(name, error));
        }
      } catch (error) {
        this.#listenerFailed(name, error);
      }
    }
  }

  #listenerFailed(name: string, error: unknown): void {
    if (name === 'error') {
      // Re-emitting would loop; the log is the last resort.
      this.#logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        "A listener of 'error' threw",
      );
      return;
    }
    this.#emit('error', new AriListenerError(name, error));
  }

  #onFrame(text: string): void {
    if (this.#isDuplicate(text)) {
      this.#duplicatesDropped++;
      return;
    }
    const parsed = parseAriEvent(text);
    if (parsed.kind === 'malformed') {
      this.#malformedDropped++;
      const suppressed = this.#malformedLog.take();
      if (suppressed !== undefined) {
        this.#logger.warn(
          { err: parsed.error.message.slice(0, 300), suppressed, total: this.#malformedDropped },
          'Dropped a malformed ARI event',
        );
      }
      // Reported to whoever listens; with nobody listening, the throttled line above is the report.
      if (this.listenerCount('error') > 0) this.#emit('error', parsed.error);
      return;
    }
    if (parsed.kind === 'unknown') {
      this.#emit('unknownEvent', parsed.event);
      return;
    }
    const event = parsed.event;
    // Tracking first, so a listener that asks stasisChannelIds sees the event's effect.
    this.#track(event);
    if (event.type === 'ApplicationReplaced') {
      this.#logger.warn(
        {},
        'Another websocket registered this ARI app; Asterisk sends this client no more events. ' +
          'Use one app name per client.',
      );
    }
    this.#emit('event', event);
    // The mapped type cannot follow `event.type` through the union; the key and payload match by construction.
    (this.#emit as (name: string, event: AriEvent) => void)(event.type, event);
  }

  /**
   * True for a frame identical to one received within {@link DUPLICATE_WINDOW_MS}. Every event
   * carries a millisecond timestamp and the full channel snapshot, so two distinct events are
   * never the same text; a repeat is a second delivery of one event.
   */
  #isDuplicate(text: string): boolean {
    const now = performance.now();
    const frames = this.#recentFrames;
    const times = this.#recentAt;
    while (
      this.#recentHead < frames.length &&
      (now - times[this.#recentHead]! > DUPLICATE_WINDOW_MS || this.#recentChars > DUPLICATE_MAX_TOTAL)
    ) {
      this.#forget(frames[this.#recentHead]!);
      this.#recentHead++;
    }
    if (this.#recentHead > 1024 && this.#recentHead * 2 > frames.length) {
      frames.splice(0, this.#recentHead);
      times.splice(0, this.#recentHead);
      this.#recentHead = 0;
    }
    // A cheap numeric fingerprint narrows the look-up; the full comparison decides (exact, as before).
    const print = frameFingerprint(text);
    const held = this.#recentByPrint.get(print);
    if (held !== undefined) {
      if (typeof held === 'string' ? held === text : held.includes(text)) return true;
    }
    if (text.length <= DUPLICATE_MAX_FRAME) {
      if (held === undefined) this.#recentByPrint.set(print, text);
      else if (typeof held === 'string') this.#recentByPrint.set(print, [held, text]);
      else held.push(text);
      frames.push(text);
      times.push(now);
      this.#recentChars += text.length;
    }
    return false;
  }

  /** Drops the oldest remembered frame, `text`, from the fingerprint index. */
  #forget(text: string): void {
    this.#recentChars -= text.length;
    const print = frameFingerprint(text);
    const held = this.#recentByPrint.get(print);
    if (held === undefined) return;
    if (typeof held === 'string') {
      this.#recentByPrint.delete(print);
      return;
    }
    const at = held.indexOf(text);
    if (at >= 0) held.splice(at, 1);
    if (held.length === 1) this.#recentByPrint.set(print, held[0]!);
  }

  #track(event: AriEvent): void {
    switch (event.type) {
      case 'StasisStart':
        this.#stasisChannels.add(event.channel.id);
        this.#startedDuringResync?.add(event.channel.id);
        if (event.replace_channel) this.#stasisChannels.delete(event.replace_channel.id);
        break;
      case 'StasisEnd':
      case 'ChannelDestroyed':
        this.#stasisChannels.delete(event.channel.id);
        break;
    }
  }

  #onDisconnected(info: AriDisconnectInfo): void {
    this.#generation++;
    if (this.#disconnectAnnounced) return;
    this.#disconnectAnnounced = true;
    this.#emit('disconnected', info);
  }

  /**
   * After a reconnect: finds which channels of this app vanished while the socket was down (their
   * StasisEnd was never seen: Asterisk does not replay events) and reports them, then announces
   * `reconnected`. Only channels tracked before the reconnect are checked, so a StasisStart that
   * arrives on the new socket during the check cannot be mistaken for a lost channel.
   */
  async #onReopened(): Promise<void> {
    const generation = this.#generation;
    const candidates = [...this.#stasisChannels];
    // A channel that (re)enters Stasis during the check is alive, even if the list was read before
    // it existed: a PBX restarted within a second can give a new channel an old one's id.
    const startedDuringResync = new Set<string>();
    this.#startedDuringResync = startedDuringResync;
    const lostChannelIds: string[] = [];
    let resynchronised = true;
    if (candidates.length > 0) {
      let channels: Channel[] | undefined;
      let lastError: unknown;
      for (let attempt = 0; attempt < RESYNC_ATTEMPTS && channels === undefined; attempt++) {
        try {
          channels = await this.channels.list();
        } catch (error) {
          lastError = error;
          if (generation !== this.#generation) return;
          const delay = backoffDelay(attempt, this.#reconnect ?? { initialMs: 250, maxMs: 2000 });
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
        if (generation !== this.#generation) return;
      }
      if (channels) {
        const alive = new Set(channels.map((channel) => channel.id));
        for (const id of candidates) {
          // Skipped if a StasisEnd for it arrived on the new socket meanwhile.
          if (alive.has(id) || !this.#stasisChannels.has(id) || startedDuringResync.has(id)) continue;
          this.#stasisChannels.delete(id);
          lostChannelIds.push(id);
        }
      } else {
        resynchronised = false;
        this.#emit(
          'error',
          new AsteriskConnectionError(
            'ARI reconnected but GET /channels failed; channels lost during the outage are unknown',
            { cause: lastError },
          ),
        );
      }
    }
    if (this.#startedDuringResync === startedDuringResync) this.#startedDuringResync = undefined;
    if (generation !== this.#generation) return;
    for (const id of lostChannelIds) {
      this.#logger.info({ channelId: id }, 'Channel lost while the ARI websocket was down');
      this.#emit('channelLost', id);
    }
    this.#disconnectAnnounced = false;
    this.#emit('reconnected', { lostChannelIds, resynchronised });
  }
}
