import { type Logger, silentLogger } from '../logger.js';
import type { AmiClient } from './ami-client.js';

/**
 * Where Asterisk is, as seen over AMI:
 * - `down`: not logged in (disconnected, reconnecting), or Asterisk announced its shutdown;
 * - `booting`: logged in, but Asterisk has not said `FullyBooted` yet: modules are still loading,
 *   and pbx_config's DialplanExtensionAdd answers `Invalid/unknown command`;
 * - `ready`: logged in and fully booted.
 */
export type PbxReadinessState = 'down' | 'booting' | 'ready';

/** Options of {@link PbxReadiness}. */
export interface PbxReadinessOptions {
  /**
   * How long to wait for `FullyBooted` after a login before assuming Asterisk is booted (ms).
   * It never comes to a session that does not receive `system` events (manager.conf `read` without
   * `system`, or `Events: off`); callers then fall back on retrying. Default 15 000.
   */
  bootWaitMs?: number;
  logger?: Logger;
}

/** Default of {@link PbxReadinessOptions.bootWaitMs}. */
export const DEFAULT_BOOT_WAIT_MS = 15_000;

/**
 * Tells when Asterisk is ready for what a Server sets up (dialplan steps): after every AMI login
 * it waits for `Event: FullyBooted`. Asterisk 22 (main/manager.c) sends that event right after the
 * login response when it is already booted, and to every session at the end of boot otherwise
 * (main/asterisk.c), so a client that logs in during the boot window of a restart gets it late.
 *
 * Must be created before the client connects, so the first login's FullyBooted is seen.
 */
export class PbxReadiness {
  readonly #ami: AmiClient;
  readonly #logger: Logger;
  readonly #bootWaitMs: number;
  readonly #listeners = new Set<(state: PbxReadinessState, reason: string) => void>();
  readonly #detach: (() => void)[] = [];
  #state: PbxReadinessState = 'down';
  /** FullyBooted seen since the last disconnect. It may arrive before the client reports `connected`. */
  #bootedSeen = false;
  #bootWaitTimer: NodeJS.Timeout | undefined;

  constructor(ami: AmiClient, options: PbxReadinessOptions = {}) {
    this.#ami = ami;
    this.#logger = options.logger ?? silentLogger;
    this.#bootWaitMs = options.bootWaitMs ?? DEFAULT_BOOT_WAIT_MS;
    const onBooted = () => {
      this.#bootedSeen = true;
      if (this.#ami.connected) this.#set('ready', 'Asterisk is fully booted');
    };
    const onConnected = () => {
      if (this.#bootedSeen) {
        this.#set('ready', 'Asterisk is fully booted');
        return;
      }
      this.#set('booting', 'logged in to AMI; Asterisk is still booting');
      this.#startBootWait();
    };
    const onDisconnected = (info: { reason: string }) => {
      this.#bootedSeen = false;
      this.#set('down', `AMI disconnected: ${info.reason}`);
    };
    const onShutdown = () => {
      this.#bootedSeen = false;
      this.#set('down', 'Asterisk is shutting down');
    };
    ami.on('FullyBooted', onBooted);
    ami.on('connected', onConnected);
    ami.on('disconnected', onDisconnected);
    ami.on('Shutdown', onShutdown);
    this.#detach.push(
      () => ami.off('FullyBooted', onBooted),
      () => ami.off('connected', onConnected),
      () => ami.off('disconnected', onDisconnected),
      () => ami.off('Shutdown', onShutdown),
    );
  }

  /** The current state. */
  get state(): PbxReadinessState {
    return this.#state;
  }

  /** True when logged in to a fully booted Asterisk. */
  get ready(): boolean {
    return this.#state === 'ready';
  }

  /**
   * Resolves with the state once it is not `booting` (at once when it is not): a login's
   * FullyBooted may come a moment after the login (in its own TLS record), or at the end of boot.
   * Bounded by `bootWaitMs`.
   */
  settled(): Promise<PbxReadinessState> {
    if (this.#state !== 'booting') return Promise.resolve(this.#state);
    return new Promise((resolve) => {
      const off = this.onChange((state) => {
        if (state === 'booting') return;
        off();
        resolve(state);
      });
    });
  }

  /** Calls `listener` on every change of state; returns the remover. */
  onChange(listener: (state: PbxReadinessState, reason: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops watching the client. */
  close(): void {
    clearTimeout(this.#bootWaitTimer);
    for (const detach of this.#detach.splice(0)) detach();
    this.#listeners.clear();
  }

  #startBootWait(): void {
    clearTimeout(this.#bootWaitTimer);
    this.#bootWaitTimer = setTimeout(() => {
      if (this.#state !== 'booting' || !this.#ami.connected) return;
      this.#logger.warn(
        { bootWaitMs: this.#bootWaitMs },
        'No FullyBooted from Asterisk after the AMI login; assuming it is booted. The AMI user needs ' +
          'read=system (or all) in manager.conf for asteramisk to know when Asterisk is ready',
      );
      this.#set('ready', `no FullyBooted within ${this.#bootWaitMs} ms; assumed booted`);
    }, this.#bootWaitMs);
    this.#bootWaitTimer.unref();
  }

  #set(state: PbxReadinessState, reason: string): void {
    if (state !== 'booting') clearTimeout(this.#bootWaitTimer);
    if (this.#state === state) return;
    this.#state = state;
    this.#logger.info({ state, reason }, 'Asterisk readiness changed');
    for (const listener of [...this.#listeners]) {
      try {
        listener(state, reason);
      } catch (error) {
        this.#logger.error({ err: String(error) }, 'a readiness listener threw');
      }
    }
  }
}
