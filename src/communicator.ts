import { randomUUID } from 'node:crypto';
import type { AriEvent } from './asterisk/ari-events.js';
import type { Channel } from './asterisk/ari-types.js';
import { archivedStatus, type SpoolDirectories, spoolCallFile } from './asterisk/call-file.js';
import { type AsteriskNodeOptions, nodeOptionsOf } from './asterisk-nodes.js';
import { type Config, resolveConfig } from './config.js';
import {
  AriHttpError,
  AriNotFoundError,
  CallFailedError,
  type CallFailureReason,
  ConfigError,
  InvalidInputError,
} from './errors.js';
import { childLogger } from './logger.js';
import { Runtime, type RuntimeOptions } from './runtime.js';
import { normalizeNumber, type TextPeer } from './ui/sip-address.js';
import type { TextUI } from './ui/text-ui.js';
import type { VoiceUI } from './ui/voice-ui.js';

/** Options of {@link Communicator.makeCall}. */
export interface MakeCallOptions {
  /** Caller ID number shown to the callee. Default SYSTEM_PHONE_NUMBER. */
  callerIdNumber?: string;
  /** Caller ID name. Default SYSTEM_NAME. */
  callerIdName?: string;
  /** Seconds to let it ring. Default OUTBOUND_CALL_TIMEOUT. */
  timeout?: number;
  /** Channel variables to set (e.g. `PJSIP_HEADER(add,X-Campaign)`). */
  variables?: Record<string, string>;
  /**
   * A dial string to use as is (`PJSIP/bob`, `PJSIP/+15551234567@pstn`). Default: the PJSIP endpoint
   * named `number` if there is one, else `number` through ASTERISK_PSTN_ENDPOINT.
   */
  dialString?: string;
  /** The node to call through (index in `asterisks`); default: `nodePolicy`'s choice. */
  node?: number;
  /** Cancels the attempt (CallFailedError 'cancelled'). */
  signal?: AbortSignal;
}

/** Options of {@link Communicator.create}. */
export interface CommunicatorOptions extends RuntimeOptions {
  /**
   * Place calls with call files instead of ARI originate, for deployments where the app may not
   * originate: each call is written to `staging` and moved into Asterisk's outgoing spool (which
   * this process must see, e.g. on a shared volume). An answered call still reaches this app
   * (`Application: Stasis`); a failed one is reported from the archived file's Status
   * (`Expired`, `Failed`) without a Q.850 cause, which call files do not give.
   */
  callFiles?: SpoolDirectories;
  /**
   * Several Asterisk nodes (as the Server's `asterisks`): each call or conversation starts on one
   * of them, chosen by `nodePolicy`.
   */
  asterisks?: AsteriskNodeOptions[];
  /**
   * Which node a new call or conversation starts on: `least-calls` (default: the node with the
   * fewest calls of this process, among those whose ARI and AMI are up), or a function of the
   * nodes' loads returning the index of the node to use.
   */
  nodePolicy?: 'least-calls' | ((nodes: readonly NodeLoad[]) => number);
}

/** A node as {@link CommunicatorOptions.nodePolicy} sees it. */
export interface NodeLoad {
  /** `host:ariPort`. */
  node: string;
  /** Calls of this process on the node now. */
  calls: number;
  /** ARI and AMI are up. */
  up: boolean;
}

/** Options of {@link Communicator.makeText}. */
export interface MakeTextOptions {
  /** Our number the texts come from. Default SYSTEM_PHONE_NUMBER. */
  from?: string;
  /** The node to text through (index in `asterisks`); default: `nodePolicy`'s choice. */
  node?: number;
}

/** Options of {@link Communicator.makeConversation}. */
export type MakeConversationOptions =
  | ({ contactMethod: 'call' } & MakeCallOptions)
  | ({ contactMethod: 'text' } & MakeTextOptions);

/** How often the call-file archive is checked for a failed call. */
const CALL_FILE_POLL_MS = 250;

const NUMBER = /^\+?[0-9A-Za-z*#._-]{1,64}$/;
const DIAL_STRING = /^(PJSIP|SIP|IAX2|DAHDI|Local)\/[A-Za-z0-9_.+*#-]+(@[A-Za-z0-9_.-]+)?$/;

/** Why an originated call ended before it was answered, from its Q.850 cause. */
function reasonOf(cause: number): CallFailureReason {
  if (cause === 17) return 'busy';
  if (cause === 18 || cause === 19) return 'no-answer';
  if ([34, 38, 41, 42, 44, 47].includes(cause)) return 'congestion';
  if ([1, 2, 3, 20, 22, 27, 28].includes(cause)) return 'unreachable';
  return 'failed';
}

/**
 * Starts calls and text conversations: each resolves with the same UI object a Server handler
 * gets. Works on its own in a script, and alongside a Server in one process (sharing its ARI and
 * AMI connections).
 *
 * ```ts
 * const c = await Communicator.create();
 * const call = await c.makeCall('1001');       // resolves once answered
 * await call.say('Your order has shipped.');
 * await call.hangup();
 * await c.close();
 * ```
 */
export class Communicator {
  /** One per Asterisk node. */
  private readonly runtimes: Runtime[];
  private readonly policy: NonNullable<CommunicatorOptions['nodePolicy']>;
  /** This Communicator's own settings (caller ID, timeouts…), even when it shares a Server's connection. */
  private readonly defaults: Config;
  private readonly started = new Set<VoiceUI | TextUI>();
  private readonly callFiles: SpoolDirectories | undefined;
  private closing?: Promise<void>;

  private constructor(runtimes: Runtime[], defaults: Config, options: CommunicatorOptions) {
    this.runtimes = runtimes;
    this.defaults = defaults;
    this.callFiles = options.callFiles;
    this.policy = options.nodePolicy ?? 'least-calls';
  }

  /**
   * Resolves the configuration and connects (to every node of `asterisks`), or joins the
   * connection of a Server of this process.
   */
  static async create(options: CommunicatorOptions = {}): Promise<Communicator> {
    const nodes = nodeOptionsOf(options, process.env);
    const defaults = resolveConfig(nodes[0]!);
    const runtimes: Runtime[] = [];
    try {
      for (const node of nodes) runtimes.push(await Runtime.acquire(node, 'join', runtimes[0]?.services));
    } catch (error) {
      await Promise.all(runtimes.map((r) => r.release()));
      throw error;
    }
    return new Communicator(runtimes, defaults, options);
  }

  /** The Asterisk nodes, in `asterisks` order, with this process's calls on each and whether they are up. */
  nodes(): NodeLoad[] {
    return this.runtimes.map((r) => ({
      node: `${r.config.asteriskHost}:${r.config.ariPort}`,
      calls: r.calls.size,
      up: r.status.ari === 'up' && r.status.ami === 'ready',
    }));
  }

  /** The node a new call or conversation starts on. */
  private pickNode(index: number | undefined): Runtime {
    if (index !== undefined) {
      const chosen = this.runtimes[index];
      if (!chosen)
        throw new InvalidInputError(`No Asterisk node ${index}: there are ${this.runtimes.length}`);
      return chosen;
    }
    if (this.runtimes.length === 1) return this.runtimes[0]!;
    const loads = this.nodes();
    if (typeof this.policy === 'function') {
      const i = this.policy(loads);
      const chosen = this.runtimes[i];
      if (!chosen)
        throw new InvalidInputError(`nodePolicy returned ${i}: there are ${this.runtimes.length} nodes`);
      return chosen;
    }
    let best = -1;
    loads.forEach((load, i) => {
      if (!load.up) return;
      if (best < 0 || load.calls < loads[best]!.calls) best = i;
    });
    // Every node down: the first one; the call then fails with the usual typed error.
    return this.runtimes[Math.max(0, best)]!;
  }

  /**
   * Calls `number` and resolves with its VoiceUI once answered. Rejects with
   * {@link CallFailedError} (busy, no-answer, congestion, unreachable, cancelled, failed; with the
   * Q.850 cause when Asterisk gave one). After `timeout` seconds of ringing the attempt is cancelled.
   *
   * @throws {InvalidInputError} for a number or dial string that could inject dialplan syntax.
   */
  async makeCall(number: string, options: MakeCallOptions = {}): Promise<VoiceUI> {
    this.assertOpen();
    if (!NUMBER.test(number))
      throw new InvalidInputError(`Not a phone number or endpoint name: ${JSON.stringify(number)}`);
    if (options.dialString !== undefined && !DIAL_STRING.test(options.dialString)) {
      throw new InvalidInputError(
        `Not a single-destination dial string: ${JSON.stringify(options.dialString)}`,
      );
    }
    const config = this.defaults;
    const runtime = this.pickNode(options.node);
    const ari = runtime.connection.ari;
    const endpoint = options.dialString ?? (await this.dialStringFor(number, runtime));
    const callerIdNumber = options.callerIdNumber ?? config.systemPhoneNumber ?? '';
    const callerIdName = options.callerIdName ?? config.systemName;
    for (const [field, value] of [
      ['callerIdNumber', callerIdNumber],
      ['callerIdName', callerIdName],
    ] as const) {
      if (/[<>"\r\n]/.test(value))
        throw new InvalidInputError(`${field} cannot contain <, >, " or a line break`);
    }
    const timeoutSeconds = options.timeout ?? config.outboundCallTimeout;
    const token = randomUUID();
    const channelId = randomUUID();
    const log = childLogger(runtime.logger, { call: channelId, to: number, direction: 'outbound' });

    return new Promise<VoiceUI>((resolve, reject) => {
      let settled = false;
      const cleanups: (() => void)[] = [];
      const finish = (outcome: { ui: VoiceUI } | { error: Error }, hangup: boolean) => {
        if (settled) return;
        settled = true;
        for (const c of cleanups) c();
        if (hangup) ari.channels.hangup(channelId).catch(() => {});
        if ('ui' in outcome) resolve(outcome.ui);
        else reject(outcome.error);
      };
      // Failures arrive as events of the channel before it ever reaches Stasis.
      cleanups.push(
        runtime.router.addChannel(channelId, {
          handleEvent: (event: AriEvent) => {
            if (event.type !== 'ChannelDestroyed') return;
            const cause = event.cause;
            finish(
              {
                error: new CallFailedError(
                  reasonOf(cause),
                  `The call to ${number} failed: ${event.cause_txt} (cause ${cause})`,
                  {
                    cause,
                    causeText: event.cause_txt,
                  },
                ),
              },
              false,
            );
          },
          handleChannelLost: () =>
            finish(
              {
                error: new CallFailedError(
                  'failed',
                  `The call to ${number} was lost with the connection to Asterisk`,
                ),
              },
              false,
            ),
        }),
      );
      cleanups.push(
        runtime.expectOriginate(token, (channel: Channel) => {
          for (const c of cleanups) c();
          cleanups.length = 0;
          const ui = runtime.createVoiceUI(channel, log, {
            localNumber: callerIdNumber,
            remoteNumber: normalizeNumber(number),
          });
          this.track(ui);
          if (settled) {
            void ui.hangup();
            return;
          }
          finish({ ui }, false);
        }),
      );
      // Asterisk's own ring timeout ends it with cause 19; this guard covers an Asterisk that never answers.
      const guard = setTimeout(
        () =>
          finish(
            {
              error: new CallFailedError('no-answer', `No answer from ${number} within ${timeoutSeconds} s`),
            },
            true,
          ),
        (timeoutSeconds + 5) * 1000,
      );
      cleanups.push(() => clearTimeout(guard));
      if (options.signal) {
        const onAbort = () =>
          finish({ error: new CallFailedError('cancelled', `The call to ${number} was cancelled`) }, true);
        if (options.signal.aborted) return onAbort();
        options.signal.addEventListener('abort', onAbort, { once: true });
        cleanups.push(() => options.signal?.removeEventListener('abort', onAbort));
      }
      const callerId = callerIdName ? `"${callerIdName}" <${callerIdNumber}>` : callerIdNumber;
      const originated = this.callFiles
        ? this.spool(this.callFiles, {
            endpoint,
            callerId,
            timeoutSeconds,
            appData: `${runtime.config.appName},outbound,${token}`,
            ...(options.variables ? { variables: options.variables } : {}),
            onFailed: (status) =>
              finish(
                {
                  error: new CallFailedError(
                    status === 'Expired' ? 'no-answer' : 'failed',
                    `The call file to ${number} ended ${status}`,
                  ),
                },
                false,
              ),
            isSettled: () => settled,
          })
        : ari.channels.originate({
            endpoint,
            app: runtime.config.appName,
            appArgs: ['outbound', token],
            callerId,
            timeout: timeoutSeconds,
            channelId,
            ...(options.variables ? { variables: options.variables } : {}),
          });
      originated.catch((error: unknown) => {
        const unreachable = error instanceof AriHttpError && error.status === 500;
        finish(
          {
            error: new CallFailedError(
              unreachable ? 'unreachable' : 'failed',
              `Could not call ${number} through ${endpoint}: ${error instanceof Error ? error.message : String(error)}`,
            ),
          },
          false,
        );
      });
    });
  }

  /**
   * Opens a text conversation with `number` from our number `from` and resolves with its TextUI.
   * Replies from that number to `from` reach it until it ends.
   */
  async makeText(number: string, options: MakeTextOptions = {}): Promise<TextUI> {
    this.assertOpen();
    const runtime = this.pickNode(options.node);
    await runtime.enableTextIntake();
    if (!NUMBER.test(number))
      throw new InvalidInputError(`Not a phone number or endpoint name: ${JSON.stringify(number)}`);
    const from = options.from ?? this.defaults.systemPhoneNumber;
    if (!from) {
      throw new ConfigError(
        'systemPhoneNumber',
        'makeText needs a sender: pass { from } or set SYSTEM_PHONE_NUMBER.',
      );
    }
    if (!NUMBER.test(from)) throw new InvalidInputError(`Not one of our numbers: ${JSON.stringify(from)}`);
    const dial = await this.dialStringFor(number, runtime);
    const endpoint = dial.includes('@') ? this.defaults.pstnEndpoint : number;
    const peer: TextPeer = {
      number: normalizeNumber(number),
      name: '',
      uri: `sip:${number}@${this.defaults.asteriskHost}`,
      endpoint,
    };
    const ui = runtime.conversations.start(normalizeNumber(from), peer);
    this.track(ui);
    return ui;
  }

  /** {@link makeCall} or {@link makeText}, by `contactMethod`. */
  makeConversation(number: string, options: MakeConversationOptions): Promise<VoiceUI | TextUI> {
    if (options.contactMethod === 'call') {
      const { contactMethod: _call, ...callOptions } = options;
      return this.makeCall(number, callOptions);
    }
    const { contactMethod: _text, ...textOptions } = options;
    return this.makeText(number, textOptions);
  }

  /** Hangs up the calls and ends the conversations it started, then releases the connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.started].map((ui) => ui.hangup()));
      await Promise.all(this.runtimes.map((r) => r.release()));
    })();
    return this.closing;
  }

  /**
   * Places a call with a call file and watches the archive for its outcome until the call is
   * settled (answered calls are settled by their StasisStart).
   */
  private async spool(
    dirs: SpoolDirectories,
    call: {
      endpoint: string;
      callerId: string;
      timeoutSeconds: number;
      appData: string;
      variables?: Record<string, string>;
      onFailed: (status: 'Expired' | 'Failed') => void;
      isSettled: () => boolean;
    },
  ): Promise<void> {
    const name = await spoolCallFile(dirs, {
      channel: call.endpoint,
      callerId: call.callerId,
      waitTime: call.timeoutSeconds,
      application: { name: 'Stasis', data: call.appData },
      ...(call.variables ? { variables: call.variables } : {}),
    });
    // pbx_spool writes no event we can subscribe to; its archive is the only report of a failure.
    const watch = setInterval(() => {
      if (call.isSettled()) {
        clearInterval(watch);
        return;
      }
      void archivedStatus(dirs, name).then((status) => {
        if (status === 'Expired' || status === 'Failed') {
          clearInterval(watch);
          call.onFailed(status);
        }
      });
    }, CALL_FILE_POLL_MS);
    watch.unref();
  }

  /** `PJSIP/<number>` for a configured endpoint, else the number through the PSTN endpoint. */
  private async dialStringFor(number: string, runtime: Runtime): Promise<string> {
    try {
      await runtime.connection.ari.endpoints.get('PJSIP', number);
      return `PJSIP/${number}`;
    } catch (error) {
      if (error instanceof AriNotFoundError) return `PJSIP/${number}@${this.defaults.pstnEndpoint}`;
      throw error;
    }
  }

  private track(ui: VoiceUI | TextUI): void {
    this.started.add(ui);
    void ui.ended.then(() => this.started.delete(ui));
  }

  private assertOpen(): void {
    if (this.closing) throw new InvalidInputError('This Communicator is closed');
  }
}
