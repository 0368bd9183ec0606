import { EventEmitter } from 'node:events';
import type { StasisStartEvent } from './asterisk/ari-events.js';
import { DialplanRegistrar } from './asterisk/dialplan-registrar.js';
import type { Config } from './config.js';
import { HangupError, InvalidInputError } from './errors.js';
import { childLogger, type Logger } from './logger.js';
import { Runtime, type RuntimeOptions } from './runtime.js';
import type { TextDeclineReason } from './ui/text-conversations.js';
import type { TextUI } from './ui/text-ui.js';
import type { VoiceUI } from './ui/voice-ui.js';

/** Handles one phone call. When it returns, the call is hung up. */
export type VoiceHandler = (ui: VoiceUI) => Promise<void> | void;

/** Handles one text conversation. When it returns, the conversation ends. */
export type TextHandler = (ui: TextUI) => Promise<void> | void;

/** The handlers of one number. */
export interface ExtensionHandlers {
  voice?: VoiceHandler;
  text?: TextHandler;
}

/** Options of {@link Server.create}: configuration (over environment variables), speech, texts. */
export interface ServerOptions extends RuntimeOptions {
  /**
   * `register` (default): each number with a voice handler is added to the call context over AMI.
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
  /** A text was not taken (no text handler for the number, over MAX_CONCURRENT_CONVERSATIONS). */
  textDeclined: [info: { to: string; from: string; reason: TextDeclineReason }];
  /** After AMI reconnected (Asterisk may have restarted), the numbers were registered again. */
  reregistered: [info: { numbers: string[]; failed: string[] }];
}

/**
 * Serves phone numbers: each call to a registered number runs its voice handler with a
 * {@link VoiceUI}; each text conversation with one runs its text handler with a {@link TextUI}.
 *
 * ```ts
 * const server = await Server.create();
 * await server.registerExtension('1000', {
 *   voice: async (ui) => { await ui.answer(); await ui.say('Hi!'); },
 *   text: async (ui) => { const name = await ui.prompt('Your name?'); await ui.say(`Hi ${name}!`); },
 * });
 * await server.serveForever();
 * ```
 *
 * Each call runs in its own task: a handler that throws is logged with the call id, the caller
 * hears a short apology and the call is hung up; other calls are untouched. Over
 * MAX_CONCURRENT_CALLS, new calls continue in the dialplan (where another instance may take them).
 */
export class Server extends EventEmitter<ServerEvents> {
  readonly config: Config;
  private readonly runtime: Runtime;
  private readonly registrar: DialplanRegistrar;
  private readonly logger: Logger;
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

  private constructor(runtime: Runtime, options: ServerOptions) {
    super();
    this.runtime = runtime;
    this.config = runtime.config;
    this.logger = runtime.logger;
    this.registrar = new DialplanRegistrar(runtime.connection.ami);
    this.mode = options.dialplan ?? 'register';
    this.apology = options.apology ?? 'Sorry, something went wrong. Goodbye.';
    const onAmiReconnected = () => void this.reregister();
    runtime.connection.ami.on('reconnected', onAmiReconnected);
    runtime.setTextHandlers((number) => this.extensions.get(number)?.text);
    this.detach.push(
      runtime.onInboundCall((event) => this.onInboundCall(event)),
      runtime.onTextDeclined((info) => this.emitSafely('textDeclined', info)),
      () => runtime.connection.ami.off('reconnected', onAmiReconnected),
      () => runtime.setTextHandlers(() => undefined),
    );
  }

  /**
   * Resolves the configuration (options over environment over defaults; a ConfigError names what
   * is wrong), checks the speech engines' credentials, and connects ARI and AMI. A Communicator
   * created later in the same process shares this connection.
   */
  static async create(options: ServerOptions = {}): Promise<Server> {
    const runtime = await Runtime.acquire(options, 'new');
    return new Server(runtime, options);
  }

  /** Number of calls being handled now. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Number of text conversations open now (inbound and outbound). */
  get activeConversations(): number {
    return this.runtime.conversations.size;
  }

  /** The Stasis application this server receives calls on. */
  get appName(): string {
    return this.config.appName;
  }

  /**
   * Serves `number`. A voice handler in `register` mode adds `Stasis(<app>,call)` for it to the
   * call context over AMI, stacked behind other instances' steps for the same number. A text
   * handler needs no dialplan: texts arrive through the app's subscription to PJSIP endpoints.
   */
  async registerExtension(number: string, handlers: ExtensionHandlers): Promise<void> {
    if (!/^[A-Za-z0-9_+*#.-]+$/.test(number))
      throw new InvalidInputError(`Not a dialable number: ${JSON.stringify(number)}`);
    if (!handlers.voice && !handlers.text)
      throw new InvalidInputError('registerExtension needs a voice or a text handler');
    if (handlers.text) await this.runtime.enableTextIntake();
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
   * Stops taking calls and texts, removes this server's dialplan steps, hangs up the calls in
   * progress (their handlers see HangupError), waits for the handlers and releases the
   * connection. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const errors = await this.registrar.removeAll();
    for (const error of errors) this.logger.warn({ err: error.message }, 'could not remove a dialplan step');
    for (const detach of this.detach) detach();
    await Promise.allSettled([...this.calls.values()].map((ui) => ui.hangup()));
    await Promise.allSettled([...this.handlerTasks]);
    await this.runtime.release();
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

  private onInboundCall(event: StasisStartEvent): void {
    const channel = event.channel;
    const log = childLogger(this.logger, {
      call: channel.id,
      from: channel.caller.number,
      to: channel.dialplan.exten,
    });
    const handler = this.extensions.get(channel.dialplan.exten)?.voice;
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
      this.runtime.connection.ari.channels
        .continueInDialplan(channel.id)
        .catch((error: unknown) => log.warn({ err: String(error) }, 'continue failed'));
      this.emitSafely('callDeclined', { channelId: channel.id, number: channel.dialplan.exten, reason });
      return;
    }
    const ui = this.runtime.createVoiceUI(channel, log);
    this.calls.set(channel.id, ui);
    this.emitSafely('callStarted', ui);
    const task = this.runHandler(ui, handler, log).then(async (outcome) => {
      await ui.ended;
      this.calls.delete(channel.id);
      this.handlerTasks.delete(task);
      this.emitSafely('callEnded', ui, outcome);
    });
    this.handlerTasks.add(task);
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
            if (this.runtime.services.speaker) await ui.say(this.apology);
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

  /** Emits without letting a listener's throw reach the call machinery. */
  private emitSafely<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ServerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.logger.error({ err: String(error), event }, 'a Server event listener threw');
    }
  }
}
