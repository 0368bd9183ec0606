/**
 * Spreads new calls among the app instances of a fleet on one Asterisk. Every instance adds its own
 * `Stasis(<app>.<instance>,call)` step to each number, stacked one after another (the registrar's
 * stacking): the first live instance in the stack receives the call (Stasis() into a dead one
 * fails at once and the dialplan goes on), and moves it to the least loaded live instance with one
 * `POST /channels/{id}/move` (or keeps it when it is the least loaded itself).
 *
 * Who is alive: each instance beats a heartbeat into a global variable of its own on each
 * Asterisk (`ASTERAMISK_FLEET_<app>`, a counter, every half `refreshMs`), and the others read it.
 * `GET /applications` alone cannot tell: Asterisk 22 keeps listing an app whose websocket went away
 * as long as channels are in it (they stay in Stasis, silent). The load of each one is the number of
 * channels it holds (from that same listing).
 *
 * Why not a random pick in the dialplan (`Goto(${RAND(…)})`): the shared lines would have to be
 * rewritten by every instance whenever one joins or leaves, instances would race to write the same
 * extension over AMI, a killed instance cannot remove itself, and a random pick ignores load. Here
 * each instance only ever writes its own step and its own heartbeat, and the pick is by load. The
 * price: one more ARI request for each call that moves, and a heartbeat request and a read per peer
 * every `refreshMs`.
 */
import type { AriClient } from '../asterisk/ari-client.js';
import type { Logger } from '../logger.js';

/** Options of {@link CallDispatcher}. */
export interface CallDispatcherOptions {
  ari: AriClient;
  /** This instance's Stasis app (`<name>.<instanceId>`). */
  selfApp: string;
  /** The apps of the fleet start with this (`<name>.`). */
  fleetPrefix: string;
  logger: Logger;
  /**
   * The fleet is read again after this long (at most; a pick reads it when older than a quarter of
   * it). A member whose heartbeat has not moved for 3 × refreshMs is dead. Default 2000 ms.
   */
  refreshMs?: number;
}

/** The global variable holding `app`'s heartbeat (variable names allow letters, digits and `_`). */
export function heartbeatVariable(app: string): string {
  return `ASTERAMISK_FLEET_${app.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

interface Member {
  /** Channels it holds now. */
  channels: readonly string[];
  /** Its heartbeat as last read, and when (this process's clock) it last changed. */
  beat: string;
  changedAt: number;
}

/** Picks the fleet app a new call goes to, and notices members that died. */
export class CallDispatcher {
  private readonly ari: AriClient;
  private readonly selfApp: string;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly refreshMs: number;
  /** Fleet apps listed by Asterisk, alive or not yet known dead. */
  private readonly members = new Map<string, Member>();
  /** Calls sent to each app since the last read (so the next picks spread before the next read). */
  private readonly sent = new Map<string, number>();
  /** Apps found dead; forgotten when Asterisk stops listing them. */
  private readonly dead = new Set<string>();
  /**
   * Apps a call could not be moved to (Asterisk answered ApplicationMoveFailed: no websocket holds
   * the app), with their heartbeat at that moment: no call is sent there until it beats again.
   */
  private readonly unreachable = new Map<string, string>();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading?: Promise<void>;
  private beat = 0;
  private readonly removedListeners = new Set<(app: string, channelIds: readonly string[]) => void>();

  constructor(options: CallDispatcherOptions) {
    this.ari = options.ari;
    this.selfApp = options.selfApp;
    this.prefix = options.fleetPrefix;
    this.logger = options.logger;
    this.refreshMs = options.refreshMs ?? 2000;
  }

  /** The members alive as last read (this one included). */
  get alive(): string[] {
    return [this.selfApp, ...[...this.members.keys()].filter((a) => a !== this.selfApp && !this.dead.has(a))];
  }

  /**
   * Calls `listener` with each fleet member that died (its heartbeat stopped, or Asterisk stopped
   * listing it) and the channels it held.
   */
  onMemberGone(listener: (app: string, channelIds: readonly string[]) => void): () => void {
    this.removedListeners.add(listener);
    return () => this.removedListeners.delete(listener);
  }

  /** Writes this instance's heartbeat (the Server does it every half refreshMs). */
  async heartbeat(): Promise<void> {
    this.beat++;
    await this.ari.asterisk.setGlobalVariable(heartbeatVariable(this.selfApp), String(this.beat));
  }

  /**
   * Takes `app` out of the picks after a call could not be moved to it, until its heartbeat moves
   * again. Why: a killed instance stays listed (and beating, as far as the last read knows) for up
   * to 3 × refreshMs, and once another survivor has ended its calls it is listed with none, the
   * least loaded of all: every pick would go to it, every move fail, and every call fall back to
   * the instance that picked.
   */
  markUnreachable(app: string): void {
    if (app === this.selfApp) return;
    this.unreachable.set(app, this.members.get(app)?.beat ?? '');
  }

  /**
   * The app that should take a new call: the least loaded live fleet app that calls can be moved
   * to, this one on a tie (no hop). Never rejects: when Asterisk cannot be asked, the call stays
   * here.
   */
  async pick(): Promise<string> {
    try {
      await this.refresh(false);
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'could not read the fleet: keeping the call');
      return this.selfApp;
    }
    const load = (app: string) =>
      (this.members.get(app)?.channels.length ?? 0) + 2 * (this.sent.get(app) ?? 0);
    let best = this.selfApp;
    for (const app of this.alive) if (!this.unreachable.has(app) && load(app) < load(best)) best = app;
    this.sent.set(best, (this.sent.get(best) ?? 0) + 1);
    return best;
  }

  /**
   * Reads the fleet again: always with `force`, else when the last read is older than a quarter of
   * refreshMs. Concurrent callers share one read.
   */
  refresh(force = true): Promise<void> {
    if (!force && performance.now() - this.readAt < this.refreshMs / 4) return Promise.resolve();
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    const apps = (await this.ari.applications.list()).filter(
      (a) => a.name === this.selfApp || a.name.startsWith(this.prefix),
    );
    const now = performance.now();
    const listed = new Set(apps.map((a) => a.name));
    const beats = await Promise.all(
      apps.map((a) =>
        a.name === this.selfApp
          ? Promise.resolve('')
          : this.ari.asterisk.getGlobalVariable(heartbeatVariable(a.name)).catch(() => ''),
      ),
    );
    const gone: [string, readonly string[]][] = [];
    apps.forEach((app, i) => {
      const beat = beats[i]!;
      const known = this.members.get(app.name);
      const member: Member =
        known && known.beat === beat
          ? { ...known, channels: app.channel_ids }
          : { channels: app.channel_ids, beat, changedAt: now };
      this.members.set(app.name, member);
      const unreachableAt = this.unreachable.get(app.name);
      if (unreachableAt !== undefined && unreachableAt !== beat) this.unreachable.delete(app.name);
      const stale = app.name !== this.selfApp && now - member.changedAt > 3 * this.refreshMs;
      if (stale && !this.dead.has(app.name)) {
        this.dead.add(app.name);
        gone.push([app.name, app.channel_ids]);
      } else if (!stale && this.dead.delete(app.name)) {
        // Its heartbeat moves again (it was stalled, not dead): it takes calls again.
        this.logger.info({ app: app.name }, 'a fleet instance is back');
      }
    });
    for (const [app, member] of this.members) {
      if (listed.has(app)) continue;
      this.members.delete(app);
      this.unreachable.delete(app);
      // Unlisted: it left with no channel, or its last ones just ended; any it held are ours to end.
      if (!this.dead.delete(app)) gone.push([app, member.channels]);
    }
    this.sent.clear();
    this.readAt = now;
    for (const [app, channels] of gone) {
      this.logger.warn({ app, channels: channels.length }, 'a fleet instance is gone from this Asterisk');
      for (const l of this.removedListeners) l(app, channels);
    }
  }
}
