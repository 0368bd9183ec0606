import { EventEmitter } from 'node:events';
import type { StasisStartEvent, TextMessageReceivedEvent } from './asterisk/ari-events.js';
import type { Channel } from './asterisk/ari-types.js';
import { AsteriskConnection, type AsteriskConnectionTuning } from './asterisk/asterisk-connection.js';
import { type BackoffOptions, backoffDelay } from './asterisk/backoff.js';
import { messageDestination, sendMessage } from './asterisk/message-sender.js';
import { type CallServices, type CallServicesOptions, createCallServices } from './call-services.js';
import { type ClusterOptions, messageIdOf, TextCluster } from './cluster/text-cluster.js';
import { type Config, type ConfigOptions, redactConfig, resolveConfig } from './config.js';
import { InvalidInputError } from './errors.js';
import { LogThrottle } from './log-throttle.js';
import { childLogger, createDefaultLogger, type Logger } from './logger.js';
import { CallEventRouter } from './ui/call-event-router.js';
import { type IncomingText, parseIncomingText, type TextPeer } from './ui/sip-address.js';
import {
  type ConversationSync,
  type ResumedConversation,
  type TextConversationHandler,
  TextConversations,
  type TextDeclineReason,
  type TextOverflow,
} from './ui/text-conversations.js';
import { DEFAULT_TEXT_RATE_LIMIT, TextOutbox, type TextRateLimit } from './ui/text-outbox.js';
import { type CallObserver, VoiceUI } from './ui/voice-ui.js';

/** Options shared by Server.create and Communicator.create. */
export interface RuntimeOptions extends ConfigOptions, CallServicesOptions {
  /** Where to log. Default: pino to stdout, level from ASTERAMISK_LOG_LEVEL. */
  logger?: Logger;
  /** Texts per recipient per window; beyond it texts queue (never dropped). Default 30 a minute. */
  textRateLimit?: TextRateLimit;
  /** Seconds without a text from the peer after which a conversation ends. Default 600. */
  textIdleTimeout?: number;
  /** Default seconds to wait for a reply in a text prompt/gather/menu. Default 300. */
  textReplyTimeout?: number;
  /** Over MAX_CONCURRENT_CONVERSATIONS: send a busy reply (default) or ignore the text. */
  textOverflow?: TextOverflow;
  /**
   * Keep-alive, time limits and reconnection delays of the ARI and AMI connections. By default a
   * silent Asterisk is noticed within 15 s (10 s ping interval + 5 s without an answer).
   */
  connection?: AsteriskConnectionTuning;
  /**
   * Delays between attempts to set up again what an Asterisk restart lost (a Server's dialplan
   * steps, the text subscription): capped exponential backoff with jitter, forever, until it works
   * or the Server closes. Default `{ initialMs: 500, maxMs: 10_000 }`.
   */
  recoveryBackoff?: { initialMs: number; maxMs: number };
  /**
   * Several app instances sharing texts through Redis (see README: Several instances): each text
   * is handled once by the instance owning its conversation, a conversation moves to another
   * instance with its history when its owner dies, and the per-recipient text rate limit holds
   * across the fleet. ASTERAMISK_REDIS_URL sets `{ redis: url }`. Off by default: one instance.
   */
  cluster?: ClusterOptions;
}

/** Default of {@link RuntimeOptions.recoveryBackoff}. */
export const DEFAULT_RECOVERY_BACKOFF = { initialMs: 500, maxMs: 10_000 } as const;

/** State of the app's subscription to SIP MESSAGEs: not wanted, in place, or being set up again. */
export type TextIntakeState = 'off' | 'up' | 'pending';

/** What a Runtime's connection can do now. */
export interface RuntimeStatus {
  /** The ARI events websocket is open (and resynchronised after a reconnect). */
  ari: 'up' | 'down';
  /** AMI: logged in to a fully booted Asterisk (`ready`), logged in while it boots, or not logged in. */
  ami: 'ready' | 'booting' | 'down';
  texts: TextIntakeState;
}

/** One failed attempt to set something up again after an outage; another follows after `retryInMs`. */
export interface RecoveryAttemptFailure {
  /** What failed: a number's dialplan registration, or the subscription to SIP MESSAGEs. */
  what: 'registration' | 'text-subscription';
  /** The number, for a registration. */
  number?: string;
  /** 1 for the first failure of this round. */
  attempt: number;
  error: Error;
  retryInMs: number;
}

/** Events of a Runtime, for the Server. */
interface RuntimeEvents {
  /** The status changed (see {@link Runtime.status}); `reason` says why. */
  status: [reason: string];
  attemptFailed: [info: RecoveryAttemptFailure];
}

/** Waits `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Longest in-call text: an AMI line is at most 1024 bytes with its CR LF, and `Message: ` takes 9. */
const MAX_IN_CALL_TEXT_BYTES = 1013;

/** A StasisStart this runtime did not originate: a call into `Stasis(<app>,call)`. */
export type InboundCallListener = (event: StasisStartEvent) => void;

/** Finds the text handler of one of our numbers. */
export type TextHandlerLookup = (number: string) => TextConversationHandler | undefined;

/** A text that was not taken. */
export type TextDeclinedListener = (info: { to: string; from: string; reason: TextDeclineReason }) => void;

/** @internal Observes calls and texts for metrics (a Server with `metrics` adds one). */
export interface RuntimeObserver extends CallObserver {
  /** A text arrived from a phone (to a conversation, a call, or declined). */
  textIn(): void;
  /** A text went out to a phone (a conversation's or an in-call one). */
  textOut(): void;
}

/** An outbound channel waiting to be answered (Communicator.makeCall). */
interface PendingOriginate {
  onStart: (channel: Channel) => void;
}

/**
 * What one process needs to talk to one Asterisk: the ARI/AMI connection, the event router, the
 * speech engines and the RTP port range. A Server and a Communicator in the same process share
 * one (one Stasis app, one AMI login, one port range); it closes when the last user releases it.
 *
 * @internal Used by Server and Communicator; not part of the public API.
 */
export class Runtime {
  private static readonly live = new Set<Runtime>();

  readonly config: Config;
  readonly logger: Logger;
  readonly connection: AsteriskConnection;
  readonly router = new CallEventRouter();
  readonly services: CallServices;
  /** Calls with a VoiceUI, by channel id. */
  readonly calls = new Map<string, VoiceUI>();
  private readonly inboundListeners = new Set<InboundCallListener>();
  /** Open text conversations, inbound and outbound. */
  readonly conversations: TextConversations;
  private readonly outbox: TextOutbox;
  private textHandlers: TextHandlerLookup = () => undefined;
  private readonly textDeclined = new Set<TextDeclinedListener>();
  /** Metrics observers; empty unless a Server has `metrics` on. */
  readonly observers = new Set<RuntimeObserver>();
  /** What every VoiceUI reports to: fans out to {@link observers} (nothing to do when empty). */
  private readonly callObserver: CallObserver = {
    verb: (verb, seconds, outcome) => {
      for (const o of this.observers) o.verb(verb, seconds, outcome);
    },
    mediaClosed: (stats) => {
      for (const o of this.observers) o.mediaClosed(stats);
    },
  };
  /** Status changes and failed recovery attempts, for the Server. */
  readonly events = new EventEmitter<RuntimeEvents>();
  readonly recoveryBackoff: BackoffOptions;
  private ariUp = true;
  private textIntakeState: TextIntakeState = 'off';
  /** Aborted when the ARI websocket drops again or the runtime closes: stops a resubscription round. */
  private textRound?: AbortController;
  /** New inbound text conversations are refused with this reason (the Server is draining). */
  private refuseNewTexts?: TextDeclineReason;
  private readonly pending = new Map<string, PendingOriginate>();
  private readonly detach: (() => void)[] = [];
  private users = 0;
  private closing?: Promise<void>;
  private readonly explicitApp: boolean;
  /** False when the speech engines belong to another runtime (another node of the same Server). */
  private ownsServices = true;
  /** Texts shared with other instances through Redis, when `cluster` is set. */
  readonly cluster: TextCluster | undefined;

  private constructor(
    config: Config,
    connection: AsteriskConnection,
    services: CallServices,
    logger: Logger,
    options: RuntimeOptions,
    cluster: TextCluster | undefined,
  ) {
    this.config = config;
    this.connection = connection;
    this.services = services;
    this.logger = logger;
    this.explicitApp = options.appName !== undefined;
    this.cluster = cluster;
    this.outbox = new TextOutbox(options.textRateLimit);
    const rateLimit = options.textRateLimit ?? DEFAULT_TEXT_RATE_LIMIT;
    this.conversations = new TextConversations({
      config,
      logger,
      send: (localNumber, peer, body) =>
        this.outbox.enqueue(peer.number, async () => {
          // The recipient's turn in the whole fleet, then in this process.
          await cluster?.waitTurn(peer.number, rateLimit);
          await this.sendText(localNumber, peer, body);
        }),
      ...(cluster ? { sync: clusterSync(cluster) } : {}),
      ...(options.textIdleTimeout !== undefined ? { idleTimeoutMs: options.textIdleTimeout * 1000 } : {}),
      ...(options.textReplyTimeout !== undefined ? { replyTimeoutMs: options.textReplyTimeout * 1000 } : {}),
      ...(options.textOverflow ? { overflow: options.textOverflow } : {}),
    });
    const ari = connection.ari;
    const onEvent = (event: Parameters<CallEventRouter['dispatch']>[0]) => {
      this.router.dispatch(event);
    };
    const onStasisStart = (event: StasisStartEvent) => this.onStasisStart(event);
    const onLost = (channelId: string) => this.router.channelLost(channelId);
    const onText = (event: TextMessageReceivedEvent) => this.onText(event);
    this.recoveryBackoff = options.recoveryBackoff ?? DEFAULT_RECOVERY_BACKOFF;
    const onDisconnected = () => {
      this.ariUp = false;
      this.textRound?.abort();
      if (this.textIntakeState === 'up') this.textIntakeState = 'pending';
      this.events.emit('status', 'ARI websocket disconnected');
    };
    const onReconnected = () => {
      this.ariUp = true;
      // Subscriptions live with the websocket: set the text one up again, retrying until it works.
      if (this.textIntakeState !== 'off') void this.resubscribeToTexts();
      this.events.emit('status', 'ARI websocket reconnected');
    };
    ari.on('event', onEvent);
    ari.on('StasisStart', onStasisStart);
    ari.on('channelLost', onLost);
    ari.on('TextMessageReceived', onText);
    ari.on('disconnected', onDisconnected);
    ari.on('reconnected', onReconnected);
    const offReadiness = connection.readiness.onChange((state, reason) => {
      // Asterisk is booted: ARI answers now, so its websocket need not wait out its backoff.
      if (state === 'ready' && !this.ariUp) connection.ari.reconnectNow();
      this.events.emit('status', reason);
    });
    this.detach.push(
      () => ari.off('event', onEvent),
      () => ari.off('StasisStart', onStasisStart),
      () => ari.off('channelLost', onLost),
      () => ari.off('TextMessageReceived', onText),
      () => ari.off('disconnected', onDisconnected),
      () => ari.off('reconnected', onReconnected),
      offReadiness,
      () => this.textRound?.abort(),
    );
  }

  /** Texts waiting in the outbox for their recipient's rate limit. */
  get textsQueued(): number {
    return this.outbox.queued;
  }

  /** What the connection can do now: ARI, AMI readiness, the text subscription. */
  get status(): RuntimeStatus {
    return {
      ari: this.ariUp && this.connection.ari.connected ? 'up' : 'down',
      ami: this.connection.readiness.state,
      texts: this.textIntakeState,
    };
  }

  /**
   * While set, a text that would open a new inbound conversation is declined with `reason` (a busy
   * reply goes back unless textOverflow is 'ignore'); texts of open conversations still reach them.
   */
  refuseNewConversations(reason: TextDeclineReason | undefined): void {
    this.refuseNewTexts = reason;
  }

  /**
   * The runtime for these options: an existing one of this process when it talks to the same
   * Asterisk as the same user (and, if `appName` is given, the same app) and `share` allows it,
   * otherwise a new one. Validates the config (ConfigError) and connects.
   */
  /**
   * @param sharedServices speech engines of another runtime of the same Server (another Asterisk
   * node), used as they are and left to that runtime to close.
   */
  static async acquire(
    options: RuntimeOptions,
    share: 'join' | 'new',
    sharedServices?: CallServices,
  ): Promise<Runtime> {
    const config = resolveConfig(options);
    if (share === 'join') {
      const existing = [...Runtime.live]
        .reverse()
        .find((r) => r.matches(config, options.appName !== undefined));
      if (existing) {
        existing.users++;
        return existing;
      }
    }
    const logger = childLogger(options.logger ?? createDefaultLogger(), { app: config.appName });
    const clusterOptions =
      options.cluster ??
      (process.env.ASTERAMISK_REDIS_URL ? { redis: process.env.ASTERAMISK_REDIS_URL } : undefined);
    const cluster = clusterOptions ? await TextCluster.connect(clusterOptions, logger) : undefined;
    let services: CallServices;
    try {
      services =
        sharedServices ??
        (await createCallServices(
          config,
          cluster && clusterOptions?.sharedTtsCache !== false && !options.ttsSharedCache
            ? { ...options, ttsSharedCache: cluster.ttsStore() }
            : options,
          logger,
        ));
    } catch (error) {
      await cluster?.close();
      throw error;
    }
    let connection: AsteriskConnection;
    try {
      connection = await AsteriskConnection.open(config, logger, options.connection);
    } catch (error) {
      await cluster?.close();
      if (!sharedServices) await services.close();
      throw error;
    }
    const runtime = new Runtime(config, connection, services, logger, options, cluster);
    runtime.ownsServices = sharedServices === undefined;
    logger.info({ config: redactConfig(config) }, 'asteramisk connected');
    runtime.users = 1;
    Runtime.live.add(runtime);
    return runtime;
  }

  private matches(config: Config, explicitApp: boolean): boolean {
    return (
      !this.closing &&
      this.config.asteriskHost === config.asteriskHost &&
      this.config.ariPort === config.ariPort &&
      this.config.ariUser === config.ariUser &&
      (!explicitApp || (this.explicitApp && this.config.appName === config.appName))
    );
  }

  /** Drops a user; the last one closes the connection and the engines. */
  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) await this.close();
  }

  private close(): Promise<void> {
    this.closing ??= (async () => {
      Runtime.live.delete(this);
      this.textRound?.abort();
      await this.conversations.close();
      await this.outbox.close();
      for (const d of this.detach) d();
      await this.connection.close();
      if (this.ownsServices) await this.services.close();
      await this.cluster?.close();
    })();
    return this.closing;
  }

  /**
   * Starts receiving SIP MESSAGEs (idempotent): the first text handler, outbound conversation or
   * in-call text listener calls it. SIP MESSAGEs reach an ARI app only for endpoints it subscribed
   * to; subscribing to the whole PJSIP technology covers every endpoint, including ones configured
   * later. The price, measured on Asterisk 22: the app then also receives every event of every
   * PJSIP channel (the client drops the duplicates this causes for its own calls), so it is not
   * paid by voice-only deployments. Subscriptions live with the websocket, so this runs again
   * after every reconnect.
   */
  enableTextIntake(): Promise<void> {
    this.textIntake ??= this.subscribeToTexts().then(
      () => {
        this.textIntakeState = 'up';
        this.events.emit('status', 'subscribed to SIP MESSAGEs');
      },
      (error: unknown) => {
        if (!this.ariUp && !this.closing) {
          // ARI is down (Asterisk restarting): the subscription is made when it is back.
          this.textIntakeState = 'pending';
          this.logger.warn({ err: String(error) }, 'ARI is down: texts arrive once it is back');
          this.events.emit('status', 'text subscription waits for ARI');
          return;
        }
        this.textIntake = undefined;
        this.logger.error(
          { err: String(error) },
          'could not subscribe to SIP MESSAGEs; texts will not arrive',
        );
        throw error;
      },
    );
    return this.textIntake;
  }

  private textIntake?: Promise<void>;

  private async subscribeToTexts(): Promise<void> {
    await this.connection.ari.applications.subscribe(this.config.appName, 'endpoint:PJSIP');
  }

  /**
   * After an ARI reconnect: subscribes again, retrying with capped backoff until it works, the
   * websocket drops again (the next reconnect starts a new round) or the runtime closes. Each
   * failure is a warning and an `attemptFailed` event; none is silent.
   */
  private async resubscribeToTexts(): Promise<void> {
    this.textRound?.abort();
    const round = new AbortController();
    this.textRound = round;
    this.textIntakeState = 'pending';
    for (let attempt = 1; !round.signal.aborted && !this.closing; attempt++) {
      try {
        await this.subscribeToTexts();
        if (round.signal.aborted) return;
        this.textIntakeState = 'up';
        if (attempt > 1) this.logger.info({ attempts: attempt }, 'subscribed to SIP MESSAGEs again');
        this.events.emit('status', 'subscribed to SIP MESSAGEs again');
        return;
      } catch (error) {
        if (round.signal.aborted || this.closing) return;
        const retryInMs = backoffDelay(attempt - 1, this.recoveryBackoff);
        this.logger.warn(
          { attempt, err: String(error), retryInMs },
          'could not subscribe to SIP MESSAGEs again; retrying',
        );
        this.events.emit('attemptFailed', {
          what: 'text-subscription',
          attempt,
          error: error instanceof Error ? error : new Error(String(error)),
          retryInMs,
        });
        await pause(retryInMs, round.signal);
      }
    }
  }

  /** Adds a listener for inbound calls; returns the function that removes it. */
  onInboundCall(listener: InboundCallListener): () => void {
    this.inboundListeners.add(listener);
    return () => this.inboundListeners.delete(listener);
  }

  /** Sets where inbound texts find the handler of the number they were sent to (the Server's table). */
  setTextHandlers(lookup: TextHandlerLookup): void {
    this.textHandlers = lookup;
  }

  /** Adds a listener for texts that were not taken; returns the function that removes it. */
  onTextDeclined(listener: TextDeclinedListener): () => void {
    this.textDeclined.add(listener);
    return () => this.textDeclined.delete(listener);
  }

  /**
   * Sends one text from `localNumber` to `peer` (ARI sendMessage): to the peer's endpoint, or to
   * the peer's number through its trunk endpoint (the number is then the Request-URI user).
   */
  private async sendText(localNumber: string, peer: TextPeer, body: string): Promise<void> {
    await sendMessage(this.connection.ari, {
      destination: messageDestination(peer.number, peer.endpoint),
      from: `sip:${localNumber}@${this.config.asteriskHost}`,
      body,
    });
    for (const o of this.observers) o.textOut();
  }

  /** Waits for the StasisStart of an originated channel carrying `token` as its second app argument. */
  expectOriginate(token: string, onStart: (channel: Channel) => void): () => void {
    this.pending.set(token, { onStart });
    return () => this.pending.delete(token);
  }

  /** Creates the VoiceUI of a channel in Stasis and routes its events to it until it ends. */
  createVoiceUI(
    channel: Channel,
    log: Logger,
    parties?: { localNumber: string; remoteNumber: string; remoteName?: string },
  ): VoiceUI {
    const ari = this.connection.ari;
    const ui = new VoiceUI({
      ari,
      channel,
      config: this.config,
      logger: log,
      speaker: this.services.speaker,
      stt: this.services.stt,
      openAudio: (channelId, onBridge) => this.services.openAudio(ari, channelId, onBridge, log),
      decodeWav: this.services.decodeWav,
      sendText: (text) => this.sendInCallText(channel.name, text),
      enableTextIntake: () => this.enableTextIntake(),
      routeBridge: (bridgeId, owner) => this.router.addBridge(bridgeId, owner),
      observer: this.callObserver,
      ...(parties ? { parties } : {}),
    });
    const unroute = this.router.addChannel(channel.id, ui);
    this.calls.set(channel.id, ui);
    void ui.ended.then(() => {
      unroute();
      this.calls.delete(channel.id);
    });
    return ui;
  }

  /**
   * In-call text to the phone: AMI SendText sends an in-dialog SIP MESSAGE. Asterisk reads each AMI
   * line into a 1024-byte buffer, so `Message: <text>` plus CR LF must fit in it.
   */
  private async sendInCallText(channelName: string, text: string): Promise<void> {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_IN_CALL_TEXT_BYTES) {
      throw new InvalidInputError(
        `In-call text is limited to ${MAX_IN_CALL_TEXT_BYTES} bytes (one AMI line); this one has ${bytes}: send several texts`,
      );
    }
    await this.connection.ami.action({
      Action: 'SendText',
      Channel: channelName,
      Message: text,
      'Content-Type': 'text/plain;charset=UTF-8',
    });
    for (const o of this.observers) o.textOut();
  }

  private onStasisStart(event: StasisStartEvent): void {
    const [kind, token] = event.args;
    if (kind === 'outbound' && token !== undefined) {
      const pending = this.pending.get(token);
      if (pending) {
        this.pending.delete(token);
        pending.onStart(event.channel);
      }
      return;
    }
    if (kind !== 'call') return;
    for (const listener of this.inboundListeners) listener(event);
  }

  /** Texts without a usable sender or recipient are logged at most once per 10 s. */
  private readonly unusableTextLog = new LogThrottle();

  private onText(event: TextMessageReceivedEvent): void {
    const text = parseIncomingText(event);
    if (!text) {
      const suppressed = this.unusableTextLog.take();
      if (suppressed !== undefined) {
        this.logger.warn(
          { to: event.message.to.slice(0, 200), suppressed },
          'a SIP MESSAGE without a usable From/To was ignored',
        );
      }
      return;
    }
    for (const o of this.observers) o.textIn();
    // Floods first: a sender over the rate costs a counter, not a log line or a routing decision.
    if (!this.conversations.admit(text)) {
      for (const listener of this.textDeclined)
        listener({ to: text.to, from: text.peer.number, reason: 'over the inbound text rate' });
      return;
    }
    const sentBytes = Number(event.message.variables?.['Content-Length'] ?? 0);
    if (text.body === '' && sentBytes > 0) {
      // res_pjsip_messaging copies the body into a 1024-byte buffer and passes on nothing when it does not fit.
      this.logger.warn(
        { to: text.to, from: text.peer.number, bytes: sentBytes },
        'a text arrived empty: Asterisk passes on SIP MESSAGE bodies of at most 1023 bytes',
      );
    }
    if (this.cluster) {
      void this.routeShared(
        this.cluster,
        text,
        messageIdOf({
          ...event.message,
          asteriskId: event.asterisk_id ?? '',
          timestamp: event.timestamp ?? '',
        }),
      );
      return;
    }
    this.dispatchText(text);
  }

  /**
   * With other instances: handles the text only if this instance owns its conversation (or takes
   * it over from an owner that did not take it), resuming it with its history after a takeover.
   */
  private async routeShared(cluster: TextCluster, text: IncomingText, messageId: string): Promise<void> {
    try {
      const route = await cluster.route(text.to, text.peer.number, messageId);
      if (!route.handle) return;
      // A conversation begun elsewhere (its owner died, or closed) resumes here with its history.
      let resumed: ResumedConversation | undefined;
      if (!this.conversations.find(text.to, text.peer.number)?.active) {
        const history = await cluster.history(text.to, text.peer.number);
        if (route.tookOver || history.length > 0) resumed = { history };
      }
      this.dispatchText(text, resumed);
    } catch (error) {
      this.logger.error(
        { to: text.to, from: text.peer.number, err: String(error) },
        'a text could not be routed through Redis; another instance may take it',
      );
    }
  }

  /** Gives a text to the call it belongs to, its open conversation, or a new one. */
  private dispatchText(text: IncomingText, resumed?: ResumedConversation): void {
    // A text from the caller to the number of their call belongs to that call (see README: in-call text).
    for (const ui of this.calls.values()) {
      if (ui.active && ui.localNumber === text.to && ui.remoteNumber === text.peer.number) {
        ui.receiveText(text.body);
        return;
      }
    }
    const declined = this.conversations.deliver(
      text,
      this.textHandlers(text.to),
      this.refuseNewTexts,
      resumed,
    );
    if (!declined) return;
    this.logger.info({ to: text.to, from: text.peer.number, reason: declined }, 'a text was not taken');
    for (const listener of this.textDeclined)
      listener({ to: text.to, from: text.peer.number, reason: declined });
  }
}

/** Shares each conversation's lease and history with the other instances. */
function clusterSync(cluster: TextCluster): ConversationSync {
  return {
    opened: (ui) =>
      cluster.opened(ui.localNumber, ui.remoteNumber, () => {
        // Another instance took it over (this one was too slow to take a text): it continues there.
        void ui.end('moved to another instance');
      }),
    text: (ui, from, body) => cluster.record(ui.localNumber, ui.remoteNumber, { from, body, at: Date.now() }),
    ended: (ui, reason) => {
      // Closing or moved: the conversation goes on elsewhere, with its history.
      const finished = reason !== 'closed' && reason !== 'draining' && reason !== 'moved to another instance';
      void cluster.ended(ui.localNumber, ui.remoteNumber, finished);
    },
  };
}
