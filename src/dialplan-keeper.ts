import type { BackoffOptions } from './asterisk/backoff.js';
import { backoffDelay } from './asterisk/backoff.js';
import type { DialplanEntry, DialplanRegistrar } from './asterisk/dialplan-registrar.js';
import type { PbxReadiness } from './asterisk/pbx-readiness.js';
import { AsteriskConnectionError, TimeoutError } from './errors.js';
import type { Logger } from './logger.js';
import { pause, type RecoveryAttemptFailure } from './runtime.js';

/** The step a Server wants for one number. */
interface WantedStep {
  context: string;
  application: string;
  applicationData: string;
}

/** One recovery: the numbers registered again after an outage. */
interface Round {
  controller: AbortController;
  started: number;
  numbers: Set<string>;
  attempts: number;
  /** Loops still running. */
  active: number;
}

/** What the keeper reports to its owner. */
export interface DialplanKeeperEvents {
  /** The set of registered or pending numbers changed. */
  onChange(reason: string): void;
  /** One attempt to register a number again failed; another follows. */
  onAttemptFailed(info: RecoveryAttemptFailure): void;
  /** Every wanted number is registered again after an outage. */
  onRestored(info: { numbers: string[]; attempts: number; ms: number }): void;
}

/**
 * Keeps a Server's dialplan steps in place across Asterisk restarts and AMI outages. When AMI goes
 * down, every step counts as pending (Asterisk may have restarted and forgotten it). When Asterisk
 * is ready again (logged in and FullyBooted, see {@link PbxReadiness}), each pending number is
 * registered again, retried with capped jittered backoff until it works, the number is
 * unregistered, AMI goes down again (a new round starts when it is back) or {@link stop} is called.
 * No failure is silent: each is a warning with the attempt count and an `onAttemptFailed` report.
 */
export class DialplanKeeper {
  private readonly wanted = new Map<string, WantedStep>();
  /** Numbers whose first registration (registerExtension) is under way: neither registered nor pending. */
  private readonly adding = new Set<string>();
  private round: Round | undefined;
  private stopped = false;
  private suspended = false;
  /** Steps forgotten when AMI went down: gone if Asterisk restarted, still there if not. */
  private forgotten: DialplanEntry[] = [];

  constructor(
    private readonly registrar: DialplanRegistrar,
    private readonly readiness: PbxReadiness,
    private readonly backoff: BackoffOptions,
    private readonly logger: Logger,
    private readonly events: DialplanKeeperEvents,
  ) {}

  /** Numbers whose step is in place. */
  registered(): string[] {
    const present = new Set(this.registrar.entries().map((e) => e.extension));
    return [...this.wanted.keys()].filter((n) => present.has(n));
  }

  /** Numbers waiting to be registered (again); none once stopped. */
  pending(): string[] {
    if (this.stopped) return [];
    const present = new Set(this.registrar.entries().map((e) => e.extension));
    return [...this.wanted.keys()].filter((n) => !present.has(n) && !this.adding.has(n));
  }

  /**
   * Registers `number` now when Asterisk is ready (an error is thrown as it came, and the number is
   * not kept); otherwise keeps it pending, to be registered as soon as Asterisk is ready.
   */
  async add(number: string, step: WantedStep): Promise<'registered' | 'pending'> {
    this.wanted.set(number, step);
    this.adding.add(number);
    // Logged in but no FullyBooted yet: it usually follows the login at once.
    await this.readiness.settled();
    this.adding.delete(number);
    if (this.wanted.get(number) !== step) return 'pending';
    if (!this.readiness.ready) {
      this.events.onChange(`number ${number} waits for Asterisk`);
      return 'pending';
    }
    this.adding.add(number);
    try {
      await this.registrar.add(step.context, number, step.application, step.applicationData);
    } catch (error) {
      this.adding.delete(number);
      if (this.wanted.get(number) !== step) throw error;
      if (
        !this.readiness.ready ||
        error instanceof AsteriskConnectionError ||
        error instanceof TimeoutError
      ) {
        // The connection failed under it, not Asterisk's answer: a recovery round registers it.
        this.events.onChange(`number ${number} waits for Asterisk`);
        if (this.readiness.ready) this.resume();
        return 'pending';
      }
      this.wanted.delete(number);
      throw error;
    }
    this.adding.delete(number);
    if (this.wanted.get(number) !== step) {
      // Unregistered while the add was under way.
      await this.registrar.remove(number).catch(() => undefined);
    }
    this.events.onChange(`number ${number} registered`);
    return 'registered';
  }

  /** Stops keeping `number` and removes its step. */
  async remove(number: string): Promise<void> {
    this.wanted.delete(number);
    try {
      await this.registrar.remove(number);
    } finally {
      this.events.onChange(`number ${number} unregistered`);
    }
  }

  /** Stops for good and removes every step; returns the removal errors. */
  async removeAll(): Promise<Error[]> {
    this.stop();
    // Steps forgotten in an outage may still be there (no restart happened): removed if still ours.
    this.registrar.remember(this.forgotten);
    this.forgotten = [];
    const errors = await this.registrar.removeAll();
    this.wanted.clear();
    this.events.onChange('dialplan steps removed');
    return errors;
  }

  /** Stops retrying (the steps stay). */
  stop(): void {
    this.stopped = true;
    this.round?.controller.abort();
    this.round = undefined;
  }

  /** AMI is down or Asterisk is not booted: every step is unknown, so pending. Idempotent. */
  suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    this.round?.controller.abort();
    this.round = undefined;
    this.forgotten.push(...this.registrar.forgetAll());
    if (this.wanted.size > 0) this.events.onChange('dialplan steps pending until Asterisk is ready');
  }

  /**
   * Asterisk is ready: registers every pending number again, each retried until it works. Numbers
   * already being retried keep their loop; a call while nothing is pending does nothing.
   */
  resume(): void {
    if (this.stopped) return;
    this.suspended = false;
    const pending = this.pending().filter((n) => !this.round?.numbers.has(n));
    if (pending.length === 0) return;
    const round = this.round ?? {
      controller: new AbortController(),
      started: performance.now(),
      numbers: new Set<string>(),
      attempts: 0,
      active: 0,
    };
    this.round = round;
    for (const number of pending) {
      round.numbers.add(number);
      round.active++;
      void this.keep(number, round).finally(() => {
        round.active--;
        if (round.active > 0 || round.controller.signal.aborted || this.round !== round) return;
        this.round = undefined;
        const registered = new Set(this.registered());
        // Every step is known again (found and adopted, or added): nothing forgotten is left.
        if (this.pending().length === 0) this.forgotten = [];
        const numbers = [...round.numbers].filter((n) => registered.has(n));
        const ms = Math.round(performance.now() - round.started);
        this.logger.info({ numbers, attempts: round.attempts, ms }, 'numbers registered again');
        this.events.onRestored({ numbers, attempts: round.attempts, ms });
      });
    }
  }

  private async keep(number: string, round: Round): Promise<void> {
    const signal = round.controller.signal;
    for (let attempt = 1; ; attempt++) {
      const step = this.wanted.get(number);
      if (signal.aborted || !step) return;
      round.attempts++;
      try {
        await this.registrar.add(step.context, number, step.application, step.applicationData);
        if (signal.aborted) return;
        if (this.wanted.get(number) !== step) {
          await this.registrar.remove(number).catch(() => undefined);
          return;
        }
        this.events.onChange(`number ${number} registered again`);
        return;
      } catch (error) {
        if (signal.aborted) return;
        const retryInMs = backoffDelay(attempt - 1, this.backoff);
        this.logger.warn(
          { number, attempt, err: error instanceof Error ? error.message : String(error), retryInMs },
          'could not register a number again; retrying',
        );
        this.events.onAttemptFailed({
          what: 'registration',
          number,
          attempt,
          error: error instanceof Error ? error : new Error(String(error)),
          retryInMs,
        });
        await pause(retryInMs, signal);
      }
    }
  }
}
