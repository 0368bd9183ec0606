import { HangupError, RealtimeConnectionError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AgentEndReason, AgentEvent } from './agent-options.js';
import type { AgentRecord } from './agent-record.js';
import type { RealtimeSessionConfig, RealtimeTransport } from './realtime-transport.js';

type Extra = Parameters<AgentRecord['result']>[1];

/**
 * The start and end of one agent session, shared by the voice and text sessions: the first
 * reason to end wins, the session's signal aborts (tool handlers and the model connection see
 * it), and what was registered with {@link onEnd} is undone once.
 */
export class SessionLifecycle {
  readonly #controller = new AbortController();
  readonly #cleanups: (() => void)[] = [];
  readonly #emitTo: (event: AgentEvent) => void;
  readonly #logger: Logger;
  #outcome: { reason: AgentEndReason; extra: Extra } | undefined;
  #resolveEnded!: () => void;
  /** Resolves when a reason to end was given. */
  readonly ended: Promise<void> = new Promise((resolve) => {
    this.#resolveEnded = resolve;
  });

  constructor(emit: (event: AgentEvent) => void, logger: Logger) {
    this.#emitTo = emit;
    this.#logger = logger;
  }

  /** Aborted when the session ends. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Why it ended, once it has. */
  get outcome(): { reason: AgentEndReason; extra: Extra } | undefined {
    return this.#outcome;
  }

  /** Ends the session for `reason`, unless it already ended. */
  finish(reason: AgentEndReason, extra: Extra = {}): void {
    if (this.#outcome) return;
    this.#outcome = { reason, extra };
    this.#controller.abort(new HangupError(`The agent session ended (${reason})`));
    this.#resolveEnded();
  }

  /** Ends with 'model-error', reporting the failure. */
  fail(error: Error): void {
    if (this.#outcome) return;
    this.emit({ type: 'error', error, fatal: true });
    this.finish('model-error', { error });
  }

  /** Ends the session with `reason` when `signal` aborts (at once if it has). */
  endOn(signal: AbortSignal | undefined, reason: AgentEndReason): void {
    if (!signal) return;
    const onAbort = (): void => this.finish(reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.onEnd(() => signal.removeEventListener('abort', onAbort));
  }

  /** Registers something to undo when the session closes. */
  onEnd(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  /** Undoes everything registered (listeners, timers, the model connection). Idempotent. */
  close(): void {
    this.#controller.abort();
    for (const cleanup of this.#cleanups.splice(0)) {
      try {
        cleanup();
      } catch (error) {
        this.#logger.warn({ err: String(error) }, 'An agent session cleanup failed');
      }
    }
  }

  /** Emits an event to the UI's listeners; a throwing listener is logged, never fatal. */
  emit(event: AgentEvent): void {
    try {
      this.#emitTo(event);
    } catch (error) {
      this.#logger.error({ err: String(error) }, 'An agent event listener threw');
    }
  }

  /**
   * Connects the model within `timeoutMs`, or rejects with RealtimeConnectionError (the session's
   * end aborts the attempt too).
   */
  async connect(
    transport: RealtimeTransport,
    config: RealtimeSessionConfig,
    timeoutMs: number,
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = transport.connect(config, this.signal);
    attempt.catch(() => {});
    try {
      await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new RealtimeConnectionError(`the realtime model was not ready within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Any failure to connect, as the RealtimeConnectionError the result reports. */
export function asConnectionError(error: unknown): RealtimeConnectionError {
  if (error instanceof RealtimeConnectionError) return error;
  return new RealtimeConnectionError(error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}
