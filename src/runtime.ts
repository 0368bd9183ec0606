import type { StasisStartEvent, TextMessageReceivedEvent } from './asterisk/ari-events.js';
import type { Channel } from './asterisk/ari-types.js';
import { AsteriskConnection } from './asterisk/asterisk-connection.js';
import { messageDestination, sendMessage } from './asterisk/message-sender.js';
import { type CallServices, type CallServicesOptions, createCallServices } from './call-services.js';
import { type Config, type ConfigOptions, redactConfig, resolveConfig } from './config.js';
import { InvalidInputError } from './errors.js';
import { childLogger, createDefaultLogger, type Logger } from './logger.js';
import { CallEventRouter } from './ui/call-event-router.js';
import { parseIncomingText, type TextPeer } from './ui/sip-address.js';
import {
  type TextConversationHandler,
  TextConversations,
  type TextDeclineReason,
  type TextOverflow,
} from './ui/text-conversations.js';
import { TextOutbox, type TextRateLimit } from './ui/text-outbox.js';
import { VoiceUI } from './ui/voice-ui.js';

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
}

/** Longest in-call text: an AMI line is at most 1024 bytes with its CR LF, and `Message: ` takes 9. */
const MAX_IN_CALL_TEXT_BYTES = 1013;

/** A StasisStart this runtime did not originate: a call into `Stasis(<app>,call)`. */
export type InboundCallListener = (event: StasisStartEvent) => void;

/** Finds the text handler of one of our numbers. */
export type TextHandlerLookup = (number: string) => TextConversationHandler | undefined;

/** A text that was not taken. */
export type TextDeclinedListener = (info: { to: string; from: string; reason: TextDeclineReason }) => void;

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
  private readonly pending = new Map<string, PendingOriginate>();
  private readonly detach: (() => void)[] = [];
  private users = 0;
  private closing?: Promise<void>;
  private readonly explicitApp: boolean;

  private constructor(
    config: Config,
    connection: AsteriskConnection,
    services: CallServices,
    logger: Logger,
    options: RuntimeOptions,
  ) {
    this.config = config;
    this.connection = connection;
    this.services = services;
    this.logger = logger;
    this.explicitApp = options.appName !== undefined;
    this.outbox = new TextOutbox(options.textRateLimit);
    this.conversations = new TextConversations({
      config,
      logger,
      send: (localNumber, peer, body) =>
        this.outbox.enqueue(peer.number, () => this.sendText(localNumber, peer, body)),
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
    const onReconnected = () => {
      if (this.textIntake) void this.subscribeToTexts().catch(() => {});
    };
    ari.on('event', onEvent);
    ari.on('StasisStart', onStasisStart);
    ari.on('channelLost', onLost);
    ari.on('TextMessageReceived', onText);
    ari.on('reconnected', onReconnected);
    this.detach.push(
      () => ari.off('event', onEvent),
      () => ari.off('StasisStart', onStasisStart),
      () => ari.off('channelLost', onLost),
      () => ari.off('TextMessageReceived', onText),
      () => ari.off('reconnected', onReconnected),
    );
  }

  /**
   * The runtime for these options: an existing one of this process when it talks to the same
   * Asterisk as the same user (and, if `appName` is given, the same app) and `share` allows it,
   * otherwise a new one. Validates the config (ConfigError) and connects.
   */
  static async acquire(options: RuntimeOptions, share: 'join' | 'new'): Promise<Runtime> {
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
    const services = await createCallServices(config, options, logger);
    const connection = await AsteriskConnection.open(config, logger);
    const runtime = new Runtime(config, connection, services, logger, options);
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
      await this.conversations.close();
      await this.outbox.close();
      for (const d of this.detach) d();
      await this.connection.close();
      await this.services.close();
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
    this.textIntake ??= this.subscribeToTexts().catch((error: unknown) => {
      this.textIntake = undefined;
      throw error;
    });
    return this.textIntake;
  }

  private textIntake?: Promise<void>;

  private async subscribeToTexts(): Promise<void> {
    try {
      await this.connection.ari.applications.subscribe(this.config.appName, 'endpoint:PJSIP');
    } catch (error) {
      this.logger.error({ err: String(error) }, 'could not subscribe to SIP MESSAGEs; texts will not arrive');
      throw error;
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

  private onText(event: TextMessageReceivedEvent): void {
    const text = parseIncomingText(event);
    if (!text) {
      this.logger.warn({ to: event.message.to }, 'a SIP MESSAGE without a usable From/To was ignored');
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
    // A text from the caller to the number of their call belongs to that call (see README: in-call text).
    for (const ui of this.calls.values()) {
      if (ui.active && ui.localNumber === text.to && ui.remoteNumber === text.peer.number) {
        ui.receiveText(text.body);
        return;
      }
    }
    const declined = this.conversations.deliver(text, this.textHandlers(text.to));
    if (!declined) return;
    this.logger.info({ to: text.to, from: text.peer.number, reason: declined }, 'a text was not taken');
    for (const listener of this.textDeclined)
      listener({ to: text.to, from: text.peer.number, reason: declined });
  }
}
