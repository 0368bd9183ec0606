import { EventEmitter } from 'node:events';
import type { StasisStartEvent } from './asterisk/ari-events.js';
import { type AsteriskNodeOptions, nodeOptionsOf } from './asterisk-nodes.js';
import { type FleetOptions, fleetApp } from './cluster/fleet.js';
import type { Config } from './config.js';
import { type ConsoleOptions, ConsoleServer } from './console/console-server.js';
import { AsteramiskError, ConfigError, HangupError, InvalidInputError } from './errors.js';
import { childLogger, type Logger } from './logger.js';
import { type MetricsOptions, ServerMetrics } from './metrics.js';
import {
  type RecoveryAttemptFailure,
  Runtime,
  type RuntimeOptions,
  type TextIntakeState,
} from './runtime.js';
import { ServerNode } from './server-node.js';
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
  /** Said when a handler throws, before hanging up; `sound:an-error-has-occurred` is played instead when it cannot be said. */
  apology?: string;
  /**
   * Seconds {@link Server.serveForever} lets calls and text conversations finish after SIGTERM or
   * SIGINT before hanging up the rest (see {@link Server.close}). Default 30.
   */
  drainSeconds?: number;
  /**
   * Serves Prometheus metrics at `http://host:port/metrics` (see README: Metrics), in a registry of
   * this Server's own. Off by default. `port: 0` picks a free port ({@link Server.metricsUrl}).
   */
  metrics?: MetricsOptions;
  /**
   * Serves the live web console at `http://host:port/` (see README: Web console): calls and
   * conversations with their transcripts, the last ended ones, health. Read-only unless `token` is
   * set. Off by default; ASTERAMISK_CONSOLE_PORT (and ASTERAMISK_CONSOLE_TOKEN) turn it on too.
   */
  console?: ConsoleOptions;
  /**
   * Several instances of this app share the calls to its numbers (see README: Several instances):
   * each registers the Stasis app `<name>.<instanceId>` behind the others, and the first live one
   * sends each new call to the least loaded live instance. A killed instance's calls are ended by
   * the others. Needs `dialplan: 'register'`. Texts are shared with `cluster` (Redis).
   */
  fleet?: FleetOptions;
  /**
   * Several Asterisk nodes served at once (see README: Several instances): each entry's fields
   * override the connection options above for that node. Calls and texts are taken from every
   * node; each call stays on its node; a node that goes down only affects its own calls and is
   * served again when it returns. ASTERISK_HOST=host1,host2 does the same for nodes that differ
   * only by host.
   */
  asterisks?: AsteriskNodeOptions[];
}

/** Played when a failed handler's apology cannot be said (no TTS engine, or it failed). */
export const APOLOGY_SOUND = 'sound:an-error-has-occurred';

/** Default of {@link ServerOptions.drainSeconds}. */
export const DEFAULT_DRAIN_SECONDS = 30;

/** How long handlers may still run after their call was hung up at the end of a drain. */
const HANDLER_EXIT_GRACE_MS = 5_000;

/**
 * Whether a Server can serve, for a supervisor or a load balancer: {@link Server.health} returns
 * it, and the `ready` / `degraded` events report each change of `ready`.
 */
export interface ServerHealth {
  /**
   * True when calls and texts to every number reach this server: ARI and AMI up, no number
   * pending, the text subscription (if any) in place, not draining or closed.
   */
  ready: boolean;
  /** The ARI events websocket: open and resynchronised, or down (it reconnects by itself). */
  ari: 'up' | 'down';
  /**
   * AMI: `up` once logged in to a fully booted Asterisk (AMI `FullyBooted` seen); `down` while
   * disconnected, while Asterisk boots after a restart, or once it announced its shutdown.
   */
  ami: 'up' | 'down';
  /** Numbers whose dialplan step is in place (in `static` dialplan mode: every voice number). */
  registered: string[];
  /** Numbers whose step is being set up again after an outage (retried until it is). */
  pending: string[];
  /** The app's subscription to SIP MESSAGEs: not needed, in place, or being set up again. */
  texts: TextIntakeState;
  /** `serving`, `draining` (a close with `drainSeconds` under way) or `closed`. */
  state: 'serving' | 'draining' | 'closed';
  /**
   * With several Asterisk nodes: each one's health (the fields above are then their sum: `up`
   * when every node is up, `registered` on every node, `pending` on any).
   */
  nodes?: NodeHealth[];
}

/** The health of one Asterisk node of a Server ({@link ServerHealth.nodes}). */
export interface NodeHealth {
  /** `host:ariPort`. */
  node: string;
  ari: 'up' | 'down';
  ami: 'up' | 'down';
  registered: string[];
  pending: string[];
  texts: TextIntakeState;
}

/** Options of {@link Server.close}. */
export interface CloseOptions {
  /**
   * Seconds to let calls and text conversations in progress finish before hanging up the rest.
   * Default 0: hang up at once.
   */
  drainSeconds?: number;
}

/** What a drain did (the `drained` event). */
export interface DrainResult {
  /** Calls whose handler finished by itself during the drain. */
  callsFinished: number;
  /** Calls still up at the deadline, hung up (their handlers saw HangupError). */
  callsHungUp: number;
  /** Inbound text conversations whose handler finished (returned or idle timeout) during the drain. */
  conversationsFinished: number;
  /** Conversations still open at the deadline, ended (their handlers saw HangupError). */
  conversationsEnded: number;
  /** Milliseconds from the start of the close to the end of the drain. */
  ms: number;
}

/** Events of a {@link Server}: for metrics, supervision and tests. */
export interface ServerEvents {
  /** A call to a registered number got its VoiceUI; its handler is about to run. */
  callStarted: [ui: VoiceUI];
  /** A text conversation opened (inbound, its opening text in `ui.firstMessage`, or outbound). */
  conversationStarted: [ui: TextUI];
  /** A call's handler finished and the call's resources are released. */
  callEnded: [ui: VoiceUI, outcome: { error?: unknown }];
  /** A call was not taken (unknown number, over capacity, draining or closed) and continues in the dialplan. */
  callDeclined: [info: { channelId: string; number: string; reason: string }];
  /** A text was not taken (no text handler for the number, over MAX_CONCURRENT_CONVERSATIONS, draining). */
  textDeclined: [info: { to: string; from: string; reason: TextDeclineReason }];
  /**
   * After an outage (AMI reconnected, Asterisk booted again), every pending number is registered
   * again: `attempts` counts the tries (one per number when nothing failed), `ms` is the time from
   * Asterisk being ready again (AMI FullyBooted and the ARI websocket back) to the last registration.
   */
  reregistered: [info: { numbers: string[]; attempts: number; ms: number }];
  /**
   * Something set up at start failed to come back after an outage (a number's dialplan step, the
   * text subscription); it is retried after `retryInMs`, forever, until it works or the server closes.
   */
  recoveryAttemptFailed: [info: RecoveryAttemptFailure];
  /** Any field of {@link Server.health} changed (for metrics and tests; `ready`/`degraded` are the summary). */
  health: [health: ServerHealth, reason: string];
  /** {@link ServerHealth.ready} became true: every number and the text intake are in place again. */
  ready: [health: ServerHealth];
  /** {@link ServerHealth.ready} became false (ARI or AMI down, Asterisk restarting, draining…). */
  degraded: [health: ServerHealth, reason: string];
  /** A close began: the dialplan steps are removed and no new call or conversation is taken. */
  draining: [info: { drainSeconds: number; activeCalls: number; activeConversations: number }];
  /** The drain ended; what is left is hung up and the connection closes next. */
  drained: [info: DrainResult];
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
  /** One per Asterisk served; the first one's runtime holds the configuration and the logger. */
  private readonly nodes: ServerNode[];
  private readonly runtime: Runtime;
  private readonly logger: Logger;
  private readonly extensions = new Map<string, ExtensionHandlers>();
  private readonly calls = new Map<string, VoiceUI>();
  private readonly handlerTasks = new Set<Promise<void>>();
  private readonly mode: 'register' | 'static';
  private readonly apology: string;
  private readonly drainSeconds: number;
  private state: ServerHealth['state'] = 'serving';
  private lastReady: boolean;
  private lastHealth = '';
  /** Ends a drain early (a second signal, or close() with drainSeconds 0 during a drain). */
  private cutDrain?: () => void;
  private closing?: Promise<void>;
  private closedResolve!: () => void;
  private readonly closed = new Promise<void>((resolve) => {
    this.closedResolve = resolve;
  });
  private readonly detach: (() => void)[] = [];
  private metrics?: ServerMetrics;
  private console?: ConsoleServer;

  private constructor(runtimes: Runtime[], options: ServerOptions) {
    super();
    const runtime = runtimes[0]!;
    this.runtime = runtime;
    this.config = runtime.config;
    this.logger = runtime.logger;
    this.mode = options.dialplan ?? 'register';
    this.apology = options.apology ?? 'Sorry, something went wrong. Goodbye.';
    this.drainSeconds = options.drainSeconds ?? DEFAULT_DRAIN_SECONDS;
    this.nodes = runtimes.map((r) => {
      const logger =
        runtimes.length > 1
          ? childLogger(this.logger, { node: `${r.config.asteriskHost}:${r.config.ariPort}` })
          : this.logger;
      return new ServerNode(r, this.mode, logger, {
        onChange: (reason) => this.refreshHealth(reason),
        onAttemptFailed: (info) => this.emitSafely('recoveryAttemptFailed', info),
        onRestored: (info) => this.emitSafely('reregistered', info),
        accept: (event, node) => this.accept(event, node),
        serving: () => this.state === 'serving',
        voiceNumbers: () => [...this.extensions].filter(([, h]) => h.voice).map(([number]) => number),
      });
    });
    for (const node of this.nodes) {
      const r = node.runtime;
      const onStatus = (reason: string) => this.refreshHealth(reason);
      const onAttemptFailed = (info: RecoveryAttemptFailure) =>
        this.emitSafely('recoveryAttemptFailed', info);
      r.events.on('status', onStatus);
      r.events.on('attemptFailed', onAttemptFailed);
      r.setTextHandlers((number) => this.extensions.get(number)?.text);
      this.detach.push(
        () => node.close(),
        r.onTextDeclined((info) => this.emitSafely('textDeclined', info)),
        r.conversations.onStarted((ui) => this.emitSafely('conversationStarted', ui)),
        () => r.events.off('status', onStatus),
        () => r.events.off('attemptFailed', onAttemptFailed),
        () => r.setTextHandlers(() => undefined),
        () => r.refuseNewConversations(undefined),
      );
    }
    this.lastReady = this.health().ready;
    this.lastHealth = JSON.stringify(this.health());
  }

  /**
   * Resolves the configuration (options over environment over defaults; a ConfigError names what
   * is wrong), checks the speech engines' credentials, and connects ARI and AMI. A Communicator
   * created later in the same process shares this connection.
   */
  static async create(options: ServerOptions = {}): Promise<Server> {
    // Read before connecting: a bad ASTERAMISK_CONSOLE_PORT must not leave a connected runtime behind.
    const consoleOptions = options.console ?? consoleFromEnvironment(process.env);
    let fleet: ReturnType<typeof fleetApp> | undefined;
    if (options.fleet) {
      if (options.dialplan === 'static') {
        throw new ConfigError(
          'fleet',
          "A fleet shares calls through registered dialplan steps: use dialplan: 'register'",
        );
      }
      fleet = fleetApp({
        ...options.fleet,
        ...(options.fleet.instanceId === undefined && options.cluster?.instanceId
          ? { instanceId: options.cluster.instanceId }
          : {}),
      });
      options = {
        ...options,
        appName: fleet.app,
        ...(options.cluster ? { cluster: { ...options.cluster, instanceId: fleet.instanceId } } : {}),
      };
    }
    const runtimes = await acquireNodes(nodeOptionsOf(options, process.env));
    const server = new Server(runtimes, options);
    if (fleet) {
      for (const node of server.nodes)
        node.startFleet(fleet.app, fleet.prefix, options.fleet?.refreshMs ?? 2000);
    }
    try {
      if (options.metrics)
        server.metrics = await ServerMetrics.start(server, runtimes, options.metrics, server.logger);
      if (consoleOptions) server.console = await ConsoleServer.start(server, consoleOptions, server.logger);
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** `http://host:port/` of the web console when `console` is on, else undefined. */
  get consoleUrl(): string | undefined {
    return this.console?.url || undefined;
  }

  /** `http://host:port/metrics` when `metrics` is on, else undefined. */
  get metricsUrl(): string | undefined {
    return this.metrics?.url;
  }

  /** Number of calls being handled now. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Number of text conversations open now (inbound and outbound). */
  get activeConversations(): number {
    return this.nodes.reduce((n, node) => n + node.runtime.conversations.size, 0);
  }

  /** The Stasis application this server receives calls on. */
  get appName(): string {
    return this.config.appName;
  }

  /**
   * Whether this server can serve now: ARI and AMI, which numbers are registered and which are
   * waiting to be registered again, the text subscription, draining. The `ready` and `degraded`
   * events report each change of `ready`.
   */
  health(): ServerHealth {
    if (this.state === 'closed') {
      return {
        ready: false,
        ari: 'down',
        ami: 'down',
        registered: [],
        pending: [],
        texts: 'off',
        state: 'closed',
      };
    }
    const nodes = this.nodes.map((node) => this.nodeHealth(node));
    const every = <K extends 'ari' | 'ami'>(field: K) =>
      nodes.every((n) => n[field] === 'up') ? 'up' : 'down';
    const ari = every('ari');
    const ami = every('ami');
    const registered = nodes[0]!.registered.filter((n) => nodes.every((h) => h.registered.includes(n)));
    const pending = [...new Set(nodes.flatMap((h) => h.pending))];
    const texts: TextIntakeState = nodes.some((h) => h.texts === 'pending')
      ? 'pending'
      : nodes.some((h) => h.texts === 'up')
        ? 'up'
        : 'off';
    const ready =
      this.state === 'serving' && ari === 'up' && ami === 'up' && pending.length === 0 && texts !== 'pending';
    return {
      ready,
      ari,
      ami,
      registered,
      pending,
      texts,
      state: this.state,
      ...(nodes.length > 1 ? { nodes } : {}),
    };
  }

  private nodeHealth(node: ServerNode): NodeHealth {
    const status = node.runtime.status;
    return {
      node: node.name,
      ari: status.ari,
      ami: status.ami === 'ready' ? 'up' : 'down',
      registered:
        this.mode === 'register'
          ? node.keeper.registered()
          : [...this.extensions].filter(([, h]) => h.voice).map(([number]) => number),
      pending: this.mode === 'register' ? node.keeper.pending() : [],
      texts: status.texts,
    };
  }

  /**
   * Serves `number`. A voice handler in `register` mode adds `Stasis(<app>,call)` for it to the
   * call context over AMI, stacked behind other instances' steps for the same number. A text
   * handler needs no dialplan: texts arrive through the app's subscription to PJSIP endpoints.
   *
   * When Asterisk is not ready (AMI down, or booting after a restart), the number is kept pending
   * and registered as soon as it is (see {@link health}); otherwise a refused registration throws.
   */
  async registerExtension(number: string, handlers: ExtensionHandlers): Promise<void> {
    if (!/^[A-Za-z0-9_+*#.-]+$/.test(number))
      throw new InvalidInputError(`Not a dialable number: ${JSON.stringify(number)}`);
    if (!handlers.voice && !handlers.text)
      throw new InvalidInputError('registerExtension needs a voice or a text handler');
    if (this.state !== 'serving')
      throw new AsteramiskError(`The server is ${this.state}: it takes no new number`, {
        code: 'SERVER_CLOSING',
      });
    if (handlers.text) await Promise.all(this.nodes.map((node) => node.runtime.enableTextIntake()));
    const previous = this.extensions.get(number);
    this.extensions.set(number, handlers);
    if (this.mode === 'register' && handlers.voice) {
      const context = this.config.incomingCallContext;
      let outcomes: ('registered' | 'pending')[];
      try {
        outcomes = await Promise.all(
          this.nodes.map((node) =>
            node.keeper.add(number, {
              context,
              application: 'Stasis',
              applicationData: `${this.config.appName},call`,
            }),
          ),
        );
      } catch (error) {
        if (this.extensions.get(number) === handlers) {
          if (previous) this.extensions.set(number, previous);
          else this.extensions.delete(number);
        }
        throw error;
      }
      this.nodes.forEach((node, i) => {
        if (outcomes[i] === 'registered') {
          const entry = node.registrar.entries().find((e) => e.extension === number);
          node.logger.info({ number, context, priority: entry?.priority }, 'registered number');
        } else {
          node.logger.warn({ number, context }, 'Asterisk is not ready: the number is registered once it is');
        }
      });
    }
    this.refreshHealth(`number ${number} served`);
  }

  /** Stops serving `number` and removes exactly the dialplan steps this server added for it. */
  async unregisterExtension(number: string): Promise<void> {
    this.extensions.delete(number);
    if (this.mode === 'register') await Promise.all(this.nodes.map((node) => node.keeper.remove(number)));
    this.refreshHealth(`number ${number} no longer served`);
  }

  /**
   * Resolves once {@link close} has finished. SIGTERM and SIGINT close the server gracefully: a
   * drain of `drainSeconds` (default: the `drainSeconds` option, 30) lets calls and conversations
   * finish; a second signal ends the drain at once (hangs up what is left); a third one gets
   * Node's default behaviour (the process exits).
   */
  async serveForever(options: { drainSeconds?: number } = {}): Promise<void> {
    const drainSeconds = options.drainSeconds ?? this.drainSeconds;
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (!signalled) {
        signalled = true;
        this.logger.info({ signal, drainSeconds }, 'closing on signal: draining calls and conversations');
        void this.close({ drainSeconds });
        return;
      }
      this.logger.warn(
        { signal },
        'second signal: hanging up what is left now (a third one kills the process)',
      );
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      void this.close({ drainSeconds: 0 });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await this.closed;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  /**
   * Closes the server. In order: removes this server's dialplan steps (new calls then go to the
   * next instance's step or the dialplan's fallback) and stops taking calls (one that still
   * arrives continues in the dialplan) and new text conversations (the sender gets the busy
   * reply); lets the calls and conversations in progress finish for up to `drainSeconds`
   * (conversations also end by their idle timeout); then hangs up what is left (handlers see
   * HangupError), waits for the handlers and releases the connection. Emits `draining`, then
   * `drained`. Idempotent; a call with `drainSeconds: 0` during a drain ends it at once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const drainSeconds = Math.max(0, options.drainSeconds ?? 0);
    if (this.closing) {
      if (drainSeconds === 0) this.cutDrain?.();
      return this.closing;
    }
    this.closing = this.shutdown(drainSeconds);
    return this.closing;
  }

  private async shutdown(drainSeconds: number): Promise<void> {
    const started = performance.now();
    const cut = new Promise<void>((resolve) => {
      this.cutDrain = resolve;
    });
    this.state = 'draining';
    const all = this.nodes.map((node) => node.runtime.conversations);
    const conversations = {
      get handling() {
        return all.reduce((n, c) => n + c.handling, 0);
      },
      settled: () => Promise.all(all.map((c) => c.settled())),
      endHandled: (reason: string) => all.reduce((n, c) => n + c.endHandled(reason), 0),
    };
    const activeCalls = this.calls.size;
    const activeConversations = conversations.handling;
    for (const node of this.nodes) node.runtime.refuseNewConversations('server is draining');
    this.logger.info({ drainSeconds, activeCalls, activeConversations }, 'draining');
    this.emitSafely('draining', { drainSeconds, activeCalls, activeConversations });
    this.refreshHealth('draining');

    // First the dialplan: calls placed from now on go to another instance or the fallback.
    for (const node of this.nodes) node.keeper.stop();
    const errors =
      this.mode === 'register'
        ? (await Promise.all(this.nodes.map((node) => node.keeper.removeAll()))).flat()
        : [];
    for (const error of errors) this.logger.warn({ err: error.message }, 'could not remove a dialplan step');

    if (drainSeconds > 0 && (this.handlerTasks.size > 0 || conversations.handling > 0)) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = Math.max(0, drainSeconds * 1000 - (performance.now() - started));
      await Promise.race([
        Promise.all([this.handlersDone(), conversations.settled()]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, deadline);
        }),
        cut,
      ]);
      clearTimeout(timer);
    }
    this.cutDrain = undefined;

    const left = [...this.calls.values()].filter((ui) => ui.active);
    await Promise.allSettled(left.map((ui) => ui.hangup()));
    const conversationsEnded = conversations.endHandled('draining');
    const result: DrainResult = {
      callsFinished: Math.max(0, activeCalls - left.length),
      callsHungUp: left.length,
      conversationsFinished: Math.max(0, activeConversations - conversationsEnded),
      conversationsEnded,
      ms: Math.round(performance.now() - started),
    };
    this.logger.info({ ...result }, 'drained');
    this.emitSafely('drained', result);

    // Handlers that ignore their HangupError get a few seconds, not forever.
    let graceTimer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      Promise.all([this.handlersDone(), conversations.settled()]).then(() => true),
      new Promise<boolean>((resolve) => {
        graceTimer = setTimeout(() => resolve(false), HANDLER_EXIT_GRACE_MS);
      }),
    ]);
    clearTimeout(graceTimer);
    if (!exited)
      this.logger.warn(
        { calls: this.handlerTasks.size, conversations: conversations.handling },
        'handlers still running after their calls were hung up; closing anyway',
      );
    this.state = 'closed';
    this.refreshHealth('closed');
    await this.metrics?.close();
    await this.console?.close();
    await Promise.all(this.nodes.map((node) => node.runtime.release()));
    // Detached last: a call or a text arriving until the connection closes is still declined.
    for (const detach of this.detach) detach();
    this.closedResolve();
  }

  /** Resolves once no call handler runs (none starts while draining). */
  private async handlersDone(): Promise<void> {
    while (this.handlerTasks.size > 0) await Promise.allSettled([...this.handlerTasks]);
  }

  /** Recomputes health and reports a change (`health`), and a change of `ready` (`ready`/`degraded`). */
  private refreshHealth(reason: string): void {
    const health = this.health();
    const signature = JSON.stringify(health);
    if (signature === this.lastHealth) return;
    this.lastHealth = signature;
    this.emitSafely('health', health, reason);
    if (health.ready === this.lastReady) return;
    this.lastReady = health.ready;
    if (health.ready) {
      this.logger.info({ reason }, 'server ready');
      this.emitSafely('ready', health);
    } else {
      this.logger.warn(
        { reason, ari: health.ari, ami: health.ami, pending: health.pending, texts: health.texts },
        'server degraded',
      );
      this.emitSafely('degraded', health, reason);
    }
  }

  /** Takes a call here: runs its number's handler, or lets it continue in the dialplan. */
  private accept(event: StasisStartEvent, node: ServerNode): void {
    const channel = event.channel;
    const log = childLogger(node.logger, {
      call: channel.id,
      from: channel.caller.number,
      to: channel.dialplan.exten,
    });
    const handler = this.extensions.get(channel.dialplan.exten)?.voice;
    const declineReason =
      this.state !== 'serving'
        ? `server is ${this.state}`
        : !handler
          ? 'no handler for this number'
          : this.calls.size >= this.config.maxConcurrentCalls
            ? `over MAX_CONCURRENT_CALLS (${this.config.maxConcurrentCalls})`
            : undefined;
    if (declineReason || !handler) {
      const reason = declineReason ?? 'no handler for this number';
      log.warn({ reason }, 'call continues in the dialplan');
      node.runtime.connection.ari.channels
        .continueInDialplan(channel.id)
        .catch((error: unknown) => log.warn({ err: String(error) }, 'continue failed'));
      this.emitSafely('callDeclined', { channelId: channel.id, number: channel.dialplan.exten, reason });
      return;
    }
    const ui = node.runtime.createVoiceUI(channel, log);
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
          // The apology is best effort: the call may be failing for the same reason. When it cannot
          // be said (no TTS, or the engine failing), a built-in sound stands in: never silence.
          let apologised = false;
          if (ui.canSpeak) {
            try {
              await ui.say(this.apology);
              apologised = true;
            } catch (sayError) {
              if (sayError instanceof HangupError) apologised = true;
            }
          }
          if (!apologised && ui.active) await ui.play(APOLOGY_SOUND).catch(() => {});
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

/**
 * The console options from ASTERAMISK_CONSOLE_PORT / _HOST / _TOKEN (so that `asteramisk console
 * app.ts` can turn the console on in an app that does not set it), or undefined when no port is set.
 */
function consoleFromEnvironment(env: NodeJS.ProcessEnv): ConsoleOptions | undefined {
  const port = env.ASTERAMISK_CONSOLE_PORT;
  if (port === undefined || port === '') return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(
      'ASTERAMISK_CONSOLE_PORT',
      `ASTERAMISK_CONSOLE_PORT must be a TCP port (0-65535), not ${JSON.stringify(port)}`,
    );
  }
  return {
    port: n,
    ...(env.ASTERAMISK_CONSOLE_HOST ? { host: env.ASTERAMISK_CONSOLE_HOST } : {}),
    ...(env.ASTERAMISK_CONSOLE_TOKEN ? { token: env.ASTERAMISK_CONSOLE_TOKEN } : {}),
  };
}

/**
 * Connects to every node (one Runtime each). The speech engines and their cache are made once and
 * shared by all nodes. A node that cannot be reached at start fails the whole start, as a single
 * Asterisk does: a Server starts complete or not at all.
 */
async function acquireNodes(nodes: RuntimeOptions[]): Promise<Runtime[]> {
  const runtimes: Runtime[] = [];
  try {
    for (const options of nodes) {
      runtimes.push(await Runtime.acquire(options, 'new', runtimes[0]?.services));
    }
  } catch (error) {
    await Promise.all(runtimes.map((r) => r.release()));
    throw error;
  }
  return runtimes;
}
