import { EventEmitter } from 'node:events';
import type { StasisStartEvent } from './asterisk/ari-events.js';
import { AsteriskConnection } from './asterisk/asterisk-connection.js';
import { DialplanRegistrar } from './asterisk/dialplan-registrar.js';
import { type CallServices, type CallServicesOptions, createCallServices } from './call-services.js';
import { type Config, type ConfigOptions, redactConfig, resolveConfig } from './config.js';
import { HangupError, InvalidInputError } from './errors.js';
import { childLogger, createDefaultLogger, type Logger } from './logger.js';
import { CallEventRouter } from './ui/call-event-router.js';
import { VoiceUI } from './ui/voice-ui.js';

/** Handles one phone call. When it returns, the call is hung up. */
export type VoiceHandler = (ui: VoiceUI) => Promise<void> | void;

/**
 * Handles one text conversation (see TextUI). Declared here so a number can be registered for
 * both; conversations arrive once text support is enabled.
 */
export type TextHandler = (ui: unknown) => Promise<void> | void;

/** The handlers of one number. */
export interface ExtensionHandlers {
  voice?: VoiceHandler;
  text?: TextHandler;
}

/** Options of {@link Server.create}: configuration (over environment variables) plus services. */
export interface ServerOptions extends ConfigOptions, CallServicesOptions {
  /** Where to log. Default: pino to stdout, level from ASTERAMISK_LOG_LEVEL. */
  logger?: Logger;
  /**
   * `register` (default): each registered number is added to the dialplan over AMI.
   * `static`: the dialplan already sends calls to `Stasis(<appName>,call)` (see
   * example-configs/extensions.conf); the Server routes by the dialed number.
   */
  dialplan?: 'register' | 'static';
  /** Said when a handler throws, before hanging up. */
  apology?: string;
}

/** Events of a {@link Server}: for metrics, supervision and tests. */
export interface ServerEvents {
  /** A call to a registered number got its VoiceUI; its handler is about to run. */
  callStarted: [ui: VoiceUI];
  /** A call's handler finished and the call's resources are released. */
  callEnded: [ui: VoiceUI, outcome: { error?: unknown }];
  /** A call was not taken (unknown number, over capacity, closing) and continues in the dialplan. */
  callDeclined: [info: { channelId: string; number: string; reason: string }];
  /** After AMI reconnected (Asterisk may have restarted), the numbers were registered again. */
  reregistered: [info: { numbers: string[]; failed: string[] }];
}

/**
 * Serves phone numbers: each call to a registered number runs its handler with a {@link VoiceUI}.
 *
 * ```ts
 * const server = await Server.create();
 * await server.registerExtension('1000', { voice: async (ui) => { await ui.answer(); await ui.say('Hi!'); } });
 * await server.serveForever();
 * ```
 *
 * Each call runs in its own task: a handler that throws is logged with the call id, the caller
 * hears a short apology and the call is hung up; other calls are untouched. Over
 * MAX_CONCURRENT_CALLS, new calls continue in the dialplan (where another instance may take them).
 */
export class Server extends EventEmitter<ServerEvents> {
  readonly config: Config;
  private readonly connection: AsteriskConnection;
  private readonly registrar: DialplanRegistrar;
  private readonly logger: Logger;
  private readonly router = new CallEventRouter();
  private readonly services: CallServices;
  private readonly extensions = new Map<string, ExtensionHandlers>();
  private readonly calls = new Map<string, VoiceUI>();
  private readonly handlerTasks = new Set<Promise<void>>();
  private readonly mode: 'register' | 'static';
  private readonly apology: string;
  private closing?: Promise<void>;
  private closedResolve!: () => void;
  private readonly closed = new Promise<void>((resolve) => {
    this.closedResolve = resolve;
  });
  private readonly detach: (() => void)[] = [];

  private constructor(
    config: Config,
    connection: AsteriskConnection,
    services: CallServices,
    options: ServerOptions,
    logger: Logger,
  ) {
    super();
    this.config = config;
    this.connection = connection.retain();
    this.services = services;
    this.logger = logger;
    this.registrar = new DialplanRegistrar(connection.ami);
    this.mode = options.dialplan ?? 'register';
    this.apology = options.apology ?? 'Sorry, something went wrong. Goodbye.';
    const ari = connection.ari;
    const onEvent = (event: Parameters<CallEventRouter['dispatch']>[0]) => {
      this.router.dispatch(event);
    };
    const onStasisStart = (event: StasisStartEvent) => this.onStasisStart(event);
    const onLost = (channelId: string) => this.router.channelLost(channelId);
    const onAmiReconnected = () => void this.reregister();
    ari.on('event', onEvent);
    ari.on('StasisStart', onStasisStart);
    ari.on('channelLost', onLost);
    connection.ami.on('reconnected', onAmiReconnected);
    this.detach.push(
      () => ari.off('event', onEvent),
      () => ari.off('StasisStart', onStasisStart),
      () => ari.off('channelLost', onLost),
      () => connection.ami.off('reconnected', onAmiReconnected),
    );
  }

  /**
   * Resolves the configuration (options over environment over defaults; a ConfigError names what
   * is wrong), checks the speech engines' credentials, and connects ARI and AMI.
   */
  static async create(options: ServerOptions = {}): Promise<Server> {
    const config = resolveConfig(options);
    const logger = childLogger(options.logger ?? createDefaultLogger(), { app: config.appName });
    const services = await createCallServices(config, options, logger);
    const connection = await AsteriskConnection.open(config, logger);
    logger.info({ config: redactConfig(config) }, 'asteramisk server connected');
    return new Server(config, connection, services, options, logger);
  }

  /** Number of calls being handled now. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** The Stasis application this server receives calls on. */
  get appName(): string {
    return this.config.appName;
  }

  /**
   * Serves `number` with `handlers`. In `register` mode, adds `Stasis(<app>,call)` for it to the
   * call context over AMI, stacked behind other instances' steps for the same number.
   */
  async registerExtension(number: string, handlers: ExtensionHandlers): Promise<void> {
    if (!/^[A-Za-z0-9_+*#.-]+$/.test(number))
      throw new InvalidInputError(`Not a dialable number: ${JSON.stringify(number)}`);
    if (!handlers.voice && !handlers.text)
      throw new InvalidInputError('registerExtension needs a voice or a text handler');
    this.extensions.set(number, handlers);
    if (this.mode === 'register' && handlers.voice) {
      const entry = await this.registrar.add(
        this.config.incomingCallContext,
        number,
        'Stasis',
        `${this.config.appName},call`,
      );
      this.logger.info({ number, context: entry.context, priority: entry.priority }, 'registered number');
    }
  }

  /** Stops serving `number` and removes exactly the dialplan steps this server added for it. */
  async unregisterExtension(number: string): Promise<void> {
    this.extensions.delete(number);
    if (this.mode === 'register') await this.registrar.remove(number);
  }

  /** Resolves once {@link close} has finished. SIGINT and SIGTERM close the server gracefully. */
  async serveForever(): Promise<void> {
    const onSignal = (signal: NodeJS.Signals) => {
      this.logger.info({ signal }, 'closing on signal');
      void this.close();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await this.closed;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  /**
   * Stops taking calls, removes this server's dialplan steps, hangs up the calls in progress (their
   * handlers see HangupError), waits for the handlers and closes the connections. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const errors = await this.registrar.removeAll();
    for (const error of errors) this.logger.warn({ err: error.message }, 'could not remove a dialplan step');
    await Promise.allSettled([...this.calls.values()].map((ui) => ui.hangup()));
    await Promise.allSettled([...this.handlerTasks]);
    for (const detach of this.detach) detach();
    await this.connection.release();
    await this.services.close();
    this.closedResolve();
  }

  /** After an AMI reconnect (Asterisk may have restarted and forgotten them) the steps are added again. */
  private async reregister(): Promise<void> {
    if (this.mode !== 'register' || this.closing) return;
    const previous = this.registrar.forgetAll();
    const numbers: string[] = [];
    const failed: string[] = [];
    for (const entry of previous) {
      try {
        await this.registrar.add(entry.context, entry.extension, entry.application, entry.applicationData);
        numbers.push(entry.extension);
      } catch (error) {
        failed.push(entry.extension);
        this.logger.error(
          { err: String(error), number: entry.extension },
          'could not register a number again',
        );
      }
    }
    this.emitSafely('reregistered', { numbers, failed });
  }

  private onStasisStart(event: StasisStartEvent): void {
    // Only calls sent by Stasis(<app>,call); our own externalMedia legs arrive with no arguments.
    if (event.args[0] !== 'call') return;
    const channel = event.channel;
    const log = childLogger(this.logger, {
      call: channel.id,
      from: channel.caller.number,
      to: channel.dialplan.exten,
    });
    const handler = this.extensions.get(channel.dialplan.exten)?.voice;
    const ari = this.connection.ari;
    const declineReason = this.closing
      ? 'server is closing'
      : !handler
        ? 'no handler for this number'
        : this.calls.size >= this.config.maxConcurrentCalls
          ? `over MAX_CONCURRENT_CALLS (${this.config.maxConcurrentCalls})`
          : undefined;
    if (declineReason || !handler) {
      const reason = declineReason ?? 'no handler for this number';
      log.warn({ reason }, 'call continues in the dialplan');
      ari.channels
        .continueInDialplan(channel.id)
        .catch((error: unknown) => log.warn({ err: String(error) }, 'continue failed'));
      this.emitSafely('callDeclined', { channelId: channel.id, number: channel.dialplan.exten, reason });
      return;
    }

    const ui = new VoiceUI({
      ari,
      channel,
      config: this.config,
      logger: log,
      speaker: this.services.speaker,
      stt: this.services.stt,
      openAudio: (channelId, onBridge) => this.services.openAudio(ari, channelId, onBridge, log),
      decodeWav: this.services.decodeWav,
    });
    ui.routeBridge = (bridgeId) => this.router.addBridge(bridgeId, ui);
    const unroute = this.router.addChannel(channel.id, ui);
    this.calls.set(channel.id, ui);
    this.emitSafely('callStarted', ui);
    const task = this.runHandler(ui, handler, log).then(async (outcome) => {
      await ui.ended;
      unroute();
      this.calls.delete(channel.id);
      this.handlerTasks.delete(task);
      this.emitSafely('callEnded', ui, outcome);
    });
    this.handlerTasks.add(task);
  }

  /** Emits without letting a listener's throw reach the call machinery. */
  private emitSafely<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ServerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.logger.error({ err: String(error), event }, 'a Server event listener threw');
    }
  }

  private async runHandler(ui: VoiceUI, handler: VoiceHandler, log: Logger): Promise<{ error?: unknown }> {
    log.info({}, 'call started');
    const outcome: { error?: unknown } = {};
    try {
      await handler(ui);
    } catch (error) {
      outcome.error = error;
      if (error instanceof HangupError) {
        log.info({}, 'caller hung up');
      } else {
        log.error(
          { err: error instanceof Error ? (error.stack ?? error.message) : String(error) },
          'call handler failed',
        );
        if (ui.active) {
          try {
            if (this.services.speaker) await ui.say(this.apology);
            else await ui.play('sound:an-error-has-occurred');
          } catch {
            // The apology is best effort: the call may be failing for the same reason.
          }
        }
      }
    } finally {
      // A handler that returns hangs up; a transferred call is no longer ours to hang up.
      if (ui.active) await ui.hangup();
      log.info({}, 'call ended');
    }
    return outcome;
  }
}
