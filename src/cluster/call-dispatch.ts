/**
 * Spreads new calls among the app instances of a fleet on one Asterisk. Every instance adds its own
 * `Stasis(<app>.<instance>,call)` step to each number, stacked one after another (the registrar's
 * stacking): the first live instance in the stack receives the call (a dead one's Stasis fails at
 * once and the dialplan goes on), looks at which fleet apps are registered on that Asterisk now
 * (`GET /applications`: registered means alive) and how many channels each holds, and moves the call
 * to the least loaded with one `POST /channels/{id}/move` (or keeps it when it is the least loaded
 * itself).
 *
 * Why not a random pick in the dialplan (`Goto(${RAND(…)})`): the shared lines would have to be
 * rewritten by every instance whenever one joins or leaves, instances would race to write the same
 * extension over AMI, a killed instance cannot remove itself, and a random pick ignores load. Here
 * each instance only ever writes its own step, the live set comes from Asterisk itself, and the pick
 * is by load. The price is one extra ARI request for the calls that move (measured in bench/).
 */
import type { AriClient } from '../asterisk/ari-client.js';
import type { Logger } from '../logger.js';

/** Options of {@link CallDispatcher}. */
export interface CallDispatcherOptions {
  ari: AriClient;
  /** This instance's Stasis app (`<appName>.<instanceId>`). */
  selfApp: string;
  /** The apps of the fleet start with this (`<appName>.`). */
  fleetPrefix: string;
  logger: Logger;
  /** The list of apps is read again after this long. Default 250 ms. */
  refreshMs?: number;
}

/** Picks the fleet app a new call goes to. */
export class CallDispatcher {
  private readonly ari: AriClient;
  private readonly selfApp: string;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly refreshMs: number;
  /** Channels per live fleet app, as last read (plus the calls sent since). */
  private loads = new Map<string, number>();
  /** The channels each live fleet app held at the last read: a dead one's calls to end. */
  private channels = new Map<string, readonly string[]>();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading?: Promise<void>;
  private readonly removedListeners = new Set<(app: string, channelIds: readonly string[]) => void>();

  constructor(options: CallDispatcherOptions) {
    this.ari = options.ari;
    this.selfApp = options.selfApp;
    this.prefix = options.fleetPrefix;
    this.logger = options.logger;
    this.refreshMs = options.refreshMs ?? 250;
  }

  /** The live fleet apps as last read (this one included). */
  get members(): string[] {
    return [...this.loads.keys()];
  }

  /**
   * Calls `listener` with each fleet app that was registered and is not any more (it died or
   * left), and the channels it held at the last read before.
   */
  onMemberGone(listener: (app: string, channelIds: readonly string[]) => void): () => void {
    this.removedListeners.add(listener);
    return () => this.removedListeners.delete(listener);
  }

  /**
   * The app that should take a new call: the least loaded live fleet app, this one on a tie (no
   * hop). Never rejects: when Asterisk cannot be asked, the call stays here.
   */
  async pick(): Promise<string> {
    try {
      await this.refresh();
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'could not list the fleet: keeping the call');
      return this.selfApp;
    }
    let best = this.selfApp;
    let bestLoad = this.loads.get(this.selfApp) ?? 0;
    for (const [app, load] of this.loads) {
      if (load < bestLoad) {
        best = app;
        bestLoad = load;
      }
    }
    // Count the call now (a caller and a media leg), so the next picks spread before the next read.
    this.loads.set(best, bestLoad + 2);
    return best;
  }

  /** Reads the apps again (at most every refreshMs; concurrent callers share one read). */
  refresh(force = false): Promise<void> {
    if (!force && performance.now() - this.readAt < this.refreshMs) return Promise.resolve();
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    const apps = await this.ari.applications.list();
    const next = new Map<string, number>();
    const channels = new Map<string, readonly string[]>();
    for (const app of apps) {
      if (app.name === this.selfApp || app.name.startsWith(this.prefix)) {
        next.set(app.name, app.channel_ids.length);
        channels.set(app.name, app.channel_ids);
      }
    }
    next.set(this.selfApp, next.get(this.selfApp) ?? 0);
    const gone = [...this.loads.keys()].filter((app) => !next.has(app));
    const lastChannels = this.channels;
    this.loads = next;
    this.channels = channels;
    this.readAt = performance.now();
    for (const app of gone) {
      const held = lastChannels.get(app) ?? [];
      this.logger.warn({ app, channels: held.length }, 'a fleet instance left this Asterisk');
      for (const l of this.removedListeners) l(app, held);
    }
  }
}
