import type { StasisStartEvent } from './asterisk/ari-events.js';
import { DialplanRegistrar } from './asterisk/dialplan-registrar.js';
import { CallDispatcher } from './cluster/call-dispatch.js';
import { endOrphanedCalls } from './cluster/orphan-calls.js';
import { DialplanKeeper, type DialplanKeeperEvents } from './dialplan-keeper.js';
import { AriNotFoundError } from './errors.js';
import { childLogger, type Logger } from './logger.js';
import type { Runtime } from './runtime.js';

/** Moves tried for one call before it stays with the instance that received it. */
const MAX_MOVE_TRIES = 3;

/** What a {@link ServerNode} tells its Server. */
export interface ServerNodeHooks extends DialplanKeeperEvents {
  /** A call of this node is to be taken by this instance (the Server runs its handler or declines it). */
  accept(event: StasisStartEvent, node: ServerNode): void;
  /** Whether the Server still takes new calls (not draining or closed). */
  serving(): boolean;
  /** The numbers with a voice handler (whose dialplan steps a dead fleet member left behind). */
  voiceNumbers(): string[];
}

/**
 * One Asterisk a Server serves: its connection (a Runtime), the dialplan steps this instance keeps
 * there, and, in a fleet, the dispatch of its new calls to the least loaded instance. A Server has
 * one node per Asterisk (`asterisks`); a node that goes down only affects its own calls.
 */
export class ServerNode {
  readonly runtime: Runtime;
  readonly registrar: DialplanRegistrar;
  readonly keeper: DialplanKeeper;
  /** `host:port` of its ARI, for logs and health. */
  readonly name: string;
  readonly logger: Logger;
  private dispatcher?: CallDispatcher;
  /**
   * Calls moved to another instance and not yet confirmed there, by channel id, with the number of
   * moves tried for each.
   */
  private readonly moving = new Map<string, { event: StasisStartEvent; tries: number }>();
  private readonly detach: (() => void)[] = [];

  constructor(
    runtime: Runtime,
    private readonly mode: 'register' | 'static',
    logger: Logger,
    private readonly hooks: ServerNodeHooks,
  ) {
    this.runtime = runtime;
    this.name = `${runtime.config.asteriskHost}:${runtime.config.ariPort}`;
    this.logger = logger;
    this.registrar = new DialplanRegistrar(runtime.connection.ami);
    this.keeper = new DialplanKeeper(
      this.registrar,
      runtime.connection.readiness,
      runtime.recoveryBackoff,
      logger,
      hooks,
    );
    const onStatus = () => {
      if (this.mode !== 'register' || !this.hooks.serving()) return;
      const status = runtime.status;
      // AMI not ready: Asterisk may have restarted and forgotten the steps. Ready, and the app's
      // websocket is back (a step must not send calls to an app that is not there): set them up.
      if (status.ami !== 'ready') this.keeper.suspend();
      else if (status.ari === 'up') this.keeper.resume();
    };
    runtime.events.on('status', onStatus);
    this.detach.push(
      runtime.onInboundCall((event) => this.onInboundCall(event)),
      () => runtime.events.off('status', onStatus),
    );
  }

  /**
   * Joins the fleet on this Asterisk: new calls go to the least loaded instance; a dead one's
   * calls are ended.
   */
  startFleet(selfApp: string, prefix: string, refreshMs: number): void {
    const ari = this.runtime.connection.ari;
    const dispatcher = new CallDispatcher({
      ari,
      selfApp,
      fleetPrefix: prefix,
      logger: this.logger,
      refreshMs,
    });
    this.dispatcher = dispatcher;
    const offGone = dispatcher.onMemberGone((app, channelIds) => {
      endOrphanedCalls(ari, app, channelIds, this.logger).catch((error: unknown) =>
        this.logger.warn(
          { app, err: String(error) },
          'could not end the calls of a fleet instance that left',
        ),
      );
      void this.retireSteps(app);
    });
    // Beats this instance's heartbeat, and reads the fleet regularly, so a killed instance's calls
    // end within a few refreshMs even when no call arrives here.
    const up = () => this.runtime.status.ari === 'up';
    const beat = () => {
      if (up()) dispatcher.heartbeat().catch(() => {});
    };
    const beater = setInterval(beat, Math.max(100, refreshMs / 2));
    const reader = setInterval(() => {
      if (up()) dispatcher.refresh(true).catch(() => {});
    }, refreshMs);
    beater.unref();
    reader.unref();
    beat();
    void dispatcher.refresh(true).catch(() => {});
    // Steps of members that died before this one started (and are no longer listed, so never
    // seen dying): once a heartbeat had time to show, every fleet step whose app is not alive goes.
    const sweep = setTimeout(() => void this.retireStrangers(prefix, dispatcher), 4 * refreshMs);
    sweep.unref();
    this.detach.push(() => clearTimeout(sweep));
    // A move fails when no websocket holds the target app (an instance that just died, not yet
    // seen dead): the call goes to the next best instance, or stays here after MAX_MOVE_TRIES.
    const onMoveFailed = (event: { channel: { id: string }; destination: string }) => {
      const moved = this.moving.get(event.channel.id);
      if (!moved) return;
      this.moving.delete(event.channel.id);
      dispatcher.markUnreachable(event.destination);
      const again = moved.tries < MAX_MOVE_TRIES;
      this.logger.warn(
        { call: event.channel.id, target: event.destination },
        again
          ? 'moving a call to another instance failed: picking another'
          : 'moving a call to another instance failed: taking it here',
      );
      if (again) void this.dispatch(dispatcher, moved.event, moved.tries);
      else this.hooks.accept(moved.event, this);
    };
    ari.on('ApplicationMoveFailed', onMoveFailed);
    const onEnd = (event: { channel: { id: string } }) => this.moving.delete(event.channel.id);
    ari.on('StasisEnd', onEnd);
    this.detach.push(
      offGone,
      () => clearInterval(beater),
      () => clearInterval(reader),
      () => ari.off('ApplicationMoveFailed', onMoveFailed),
      () => ari.off('StasisEnd', onEnd),
    );
  }

  /**
   * Takes out the dialplan steps of a fleet member that died (it cannot remove them itself), so
   * they do not pile up with every crash. Every survivor may try: the registrar's removal is safe to
   * race (a step already replaced or removed is left alone).
   */
  private async retireSteps(app: string): Promise<void> {
    if (this.mode !== 'register') return;
    const context = this.runtime.config.incomingCallContext;
    for (const number of this.hooks.voiceNumbers()) {
      try {
        if (await this.registrar.retire(context, number, 'Stasis', `${app},call`))
          this.logger.info({ app, number }, 'removed the dialplan step of a fleet instance that died');
      } catch (error) {
        this.logger.warn(
          { app, number, err: String(error) },
          'could not remove the step of a fleet instance that died',
        );
      }
    }
  }

  private async retireStrangers(prefix: string, dispatcher: CallDispatcher): Promise<void> {
    if (this.mode !== 'register' || this.runtime.status.ari !== 'up') return;
    try {
      await dispatcher.refresh(true);
    } catch {
      return;
    }
    const alive = new Set(dispatcher.alive);
    const context = this.runtime.config.incomingCallContext;
    for (const number of this.hooks.voiceNumbers()) {
      try {
        for (const step of await this.registrar.steps(context, number)) {
          const app = step.appData.split(',')[0] ?? '';
          if (step.application.toLowerCase() === 'stasis' && app.startsWith(prefix) && !alive.has(app))
            await this.retireSteps(app);
        }
      } catch (error) {
        this.logger.warn(
          { number, err: String(error) },
          'could not look for the steps of dead fleet instances',
        );
      }
    }
  }

  /** Stops listening to the node's calls and fleet (the Server releases the runtime). */
  close(): void {
    for (const d of this.detach.splice(0)) d();
  }

  /**
   * In a fleet, a call that comes from the dialplan goes to the least loaded instance (possibly
   * this one); a call moved here by another instance, or any call outside a fleet, is taken.
   */
  private onInboundCall(event: StasisStartEvent): void {
    const dispatcher = this.dispatcher;
    if (dispatcher && event.args[1] !== 'moved' && this.hooks.serving()) {
      void this.dispatch(dispatcher, event);
      return;
    }
    this.hooks.accept(event, this);
  }

  /** Sends a call that came from the dialplan to the pick (`tries`: moves already tried for it). */
  private async dispatch(dispatcher: CallDispatcher, event: StasisStartEvent, tries = 0): Promise<void> {
    const target = await dispatcher.pick();
    if (target === this.runtime.config.appName) {
      this.hooks.accept(event, this);
      return;
    }
    this.moving.set(event.channel.id, { event, tries: tries + 1 });
    try {
      await this.runtime.connection.ari.channels.move(event.channel.id, target, ['call', 'moved']);
    } catch (error) {
      if (!this.moving.delete(event.channel.id)) return;
      if (error instanceof AriNotFoundError) return; // the caller hung up meanwhile
      childLogger(this.logger, { call: event.channel.id }).warn(
        { target, err: String(error) },
        'could not move a call: taking it here',
      );
      this.hooks.accept(event, this);
    }
  }
}
