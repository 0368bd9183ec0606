import { randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { AriClient } from '../asterisk/ari-client.js';
import { watchChannel } from '../asterisk/channel-watch.js';
import {
  AriHttpError,
  AriNotFoundError,
  AsteramiskError,
  AsteriskConnectionError,
  AuthenticationError,
  ConfigError,
  HangupError,
  MediaSetupError,
  type MediaWorkerError,
  ResourceExhaustedError,
  TimeoutError,
} from '../errors.js';
import { childLogger, type Logger, silentLogger } from '../logger.js';
import { AudioPlayer, type FirstPacketInfo, type PlaybackStream, type PlayResult } from './audio-player.js';
import type { MediaLeg, MediaWorker } from './media-worker.js';
import type { Pacer } from './pacer.js';
import type { PortAllocator } from './port-allocator.js';
import { type AudioListener, type PayloadListener, RtpSession, type RtpSessionStats } from './rtp-session.js';

/** Options of {@link CallMedia.open}. */
export interface CallMediaOptions {
  ari: AriClient;
  /** The caller's channel, answered and in Stasis. */
  channelId: string;
  /** Stasis app of the externalMedia channel. Default: the client's app. */
  app?: string;
  /** The RTP port range. */
  allocator: PortAllocator;
  /** Local address of the RTP socket (config `rtpBindAddress`). */
  bindAddress: string;
  /** The address Asterisk sends RTP to (config `asteramiskHost`): `external_host` is `<this>:<port>`. */
  advertiseHost: string;
  logger?: Logger;
  /** The outbound clock. Default: the process-wide shared pacer. */
  pacer?: Pacer;
  /** Reordering tolerance of the inbound jitter buffer, in frames. Default 3. */
  jitterDepth?: number;
  /** Longest wait for the externalMedia channel to enter Stasis, in ms. Default 5000. */
  setupTimeoutMs?: number;
  /**
   * The media worker that carries this call's RTP (socket, pacing, jitter buffer, G.711), so its
   * timing does not depend on this thread's load. Without it, all of that runs in this thread on
   * `pacer`. If the worker fails, the call's media ends with a {@link MediaWorkerError}: plays
   * reject with it, and the caller is hung up.
   */
  worker?: MediaWorker;
}

/** The RTP socket side of a call's media: an {@link RtpSession} here, or a {@link MediaLeg} in a worker. */
interface SessionPart {
  readonly localPort: number;
  readonly stats: RtpSessionStats;
  setRemote(address: string, port: number): void;
  onAudio(listener: AudioListener): () => void;
  onPayload(listener: PayloadListener): () => void;
  close(): Promise<void>;
}

/** The outbound side: an {@link AudioPlayer} here, or the same {@link MediaLeg}. */
interface PlayerPart {
  readonly playing: boolean;
  readonly framesSent: number;
  play(pcm: Int16Array): Promise<PlayResult>;
  playUlaw(ulaw: Uint8Array): Promise<PlayResult>;
  stream(): PlaybackStream<Int16Array>;
  streamUlaw(): PlaybackStream<Uint8Array>;
  onFirstPacket(listener: (info: FirstPacketInfo) => void): () => void;
  stop(): Promise<void>;
  close(): void;
}

function localPlayer(player: AudioPlayer): PlayerPart {
  return {
    get playing() {
      return player.playing;
    },
    get framesSent() {
      return player.stats.framesSent;
    },
    play: (pcm) => player.play(pcm),
    playUlaw: (ulaw) => player.playUlaw(ulaw),
    stream: () => player.stream(),
    streamUlaw: () => player.streamUlaw(),
    onFirstPacket: (listener) => player.onFirstPacket(listener),
    stop: () => player.stop(),
    close: () => player.close(),
  };
}

function workerPlayer(leg: MediaLeg): PlayerPart {
  /** A whole play rejects with the worker's failure (a stream's `done` still resolves 'stopped'). */
  const orFailure = (result: Promise<PlayResult>): Promise<PlayResult> =>
    result.then((r) => {
      if (r === 'stopped' && leg.failure) throw leg.failure;
      return r;
    });
  return {
    get playing() {
      return leg.playing;
    },
    get framesSent() {
      return leg.stats.framesPlayed;
    },
    play: (pcm) => orFailure(leg.play(pcm)),
    playUlaw: (ulaw) => orFailure(leg.playUlaw(ulaw)),
    stream: () => leg.stream(),
    streamUlaw: () => leg.streamUlaw(),
    onFirstPacket: (listener) => leg.onFirstPacket(listener),
    stop: () => leg.stop(),
    close: () => void leg.close(),
  };
}

/**
 * Why a {@link CallMedia} ended: {@link CallMedia.close} was called; the caller hung up or left
 * Stasis; or the externalMedia channel disappeared under it.
 */
export type CallMediaEndReason = 'closed' | 'caller-gone' | 'media-lost' | 'media-failed';

type Cleanup = () => Promise<unknown>;

/**
 * Socket errors of a process that went away: not listening, or its connections reset or closed
 * under the request (undici's `UND_ERR_SOCKET`: "other side closed").
 */
const PBX_GONE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']);

/**
 * True when a failed request means Asterisk is restarting or gone, and every object of its calls
 * with it: 503 (`Shutdown in progress` while it shuts down, `Asterisk not booted` once it is
 * back), a refused or reset connection (the process is not listening, or died under the
 * request), or any connection error while the ARI websocket is down too. A 404 is not
 * included (see {@link tolerateGone}); neither is a time-out (a stopped PBX may still hold it).
 */
export function isPbxGone(error: unknown, ari: Pick<AriClient, 'connected'>): boolean {
  if (error instanceof AriHttpError) return error.status === 503;
  if (!(error instanceof AsteriskConnectionError) || error instanceof AuthenticationError) return false;
  if (!ari.connected) return true;
  for (let cause: unknown = error.cause, depth = 0; cause && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && PBX_GONE_CODES.has(code)) return true;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return false;
}

/**
 * Resolves true for success, false when the object is gone anyway: 404, or Asterisk restarting
 * ({@link isPbxGone}, logged at debug); rethrows anything else.
 */
async function tolerateGone(
  request: Promise<unknown>,
  ari: AriClient,
  logger: Logger,
  what: string,
): Promise<boolean> {
  try {
    await request;
    return true;
  } catch (error) {
    if (error instanceof AriNotFoundError) return false;
    if (!isPbxGone(error, ari)) throw error;
    logger.debug(
      { err: error instanceof Error ? error.message : String(error), what },
      'Media resource not released: Asterisk is restarting and it goes with it',
    );
    return false;
  }
}

/**
 * The media path of one call over ARI: a mixing bridge holding the caller and an externalMedia
 * (UnicastRTP) channel whose RTP comes to a socket of this process. What the caller says arrives
 * as 20 ms PCM frames at {@link onAudio} listeners, or as the µ-law bytes of the wire at
 * {@link onPayload} listeners; {@link play} sends PCM to the caller, paced, {@link playUlaw} and
 * {@link streamUlaw} µ-law as it is (no codec work either way for a µ-law consumer).
 *
 * ```ts
 * const media = await CallMedia.open({ ari, channelId, allocator, bindAddress, advertiseHost });
 * const off = media.onAudio((pcm) => stt.write(pcm));
 * await media.play(prompt);   // 'finished' | 'stopped'
 * await media.close();
 * ```
 *
 * When the caller hangs up (or leaves Stasis), the media closes itself: pending plays resolve
 * 'stopped' (they never reject), later plays resolve 'stopped' at once, {@link closed} resolves
 * with 'caller-gone'. Mapping that to a HangupError is the caller's (the UI layer's) choice.
 */
export class CallMedia {
  /** The caller's channel. */
  readonly channelId: string;
  /** The mixing bridge this media created. */
  readonly bridgeId: string;
  /** The externalMedia channel this media created. */
  readonly externalChannelId: string;
  readonly #ari: AriClient;
  readonly #session: SessionPart;
  readonly #player: PlayerPart;
  /** The in-thread player (undefined when the media runs in a worker). */
  readonly #localPlayer: AudioPlayer | undefined;
  #error: MediaWorkerError | undefined;
  readonly #logger: Logger;
  readonly #unwatch: () => void;
  #endReason: CallMediaEndReason | undefined;
  #closing: Promise<void> | undefined;
  readonly #closed: Promise<CallMediaEndReason>;
  #resolveClosed!: (reason: CallMediaEndReason) => void;

  private constructor(init: {
    ari: AriClient;
    channelId: string;
    bridgeId: string;
    externalChannelId: string;
    session: RtpSession | MediaLeg;
    pacer: Pacer | undefined;
    logger: Logger;
  }) {
    this.#ari = init.ari;
    this.channelId = init.channelId;
    this.bridgeId = init.bridgeId;
    this.externalChannelId = init.externalChannelId;
    this.#session = init.session;
    this.#logger = init.logger;
    let offFailure = (): void => {};
    if (init.session instanceof RtpSession) {
      this.#localPlayer = new AudioPlayer({
        sink: init.session,
        logger: init.logger,
        ...(init.pacer ? { pacer: init.pacer } : {}),
      });
      this.#player = localPlayer(this.#localPlayer);
    } else {
      const leg = init.session;
      this.#player = workerPlayer(leg);
      offFailure = leg.onFailure((error) => this.#workerFailed(error));
    }
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const unwatch = watchChannels(init.ari, {
      [init.channelId]: () => void this.#end('caller-gone'),
      [init.externalChannelId]: () => void this.#end('media-lost'),
    });
    this.#unwatch = () => {
      unwatch();
      offFailure();
    };
  }

  /** The worker carrying this media failed: plays reject with the error, the caller is hung up. */
  #workerFailed(error: MediaWorkerError): void {
    if (this.#endReason !== undefined) return;
    this.#error = error;
    this.#logger.error({ err: error.message }, 'The media worker failed; hanging up the call');
    void this.#end('media-failed');
    void tolerateGone(
      this.#ari.channels.hangup(this.channelId),
      this.#ari,
      this.#logger,
      'caller channel',
    ).catch((hangupError: unknown) =>
      this.#logger.warn(
        { err: hangupError instanceof Error ? hangupError.message : String(hangupError) },
        'Hanging up the call after a media worker failure failed',
      ),
    );
  }

  /** The worker's failure when the media ended with 'media-failed'. */
  get error(): MediaWorkerError | undefined {
    return this.#error;
  }

  /**
   * Bridges the caller to a new externalMedia channel whose RTP comes to a port of `allocator`.
   * If a step fails, everything created so far is released before the error is thrown.
   *
   * @throws {HangupError} when the caller hung up (or left Stasis) during the set-up.
   * @throws {ResourceExhaustedError} when the RTP port range is used up.
   * @throws {MediaSetupError} when an ARI request failed or the channel did not enter Stasis in time.
   */
  static async open(options: CallMediaOptions): Promise<CallMedia> {
    const { ari, channelId } = options;
    const logger = childLogger(options.logger ?? silentLogger, { component: 'call-media', channelId });
    const bridgeId = randomUUID();
    const externalChannelId = randomUUID();
    const startedAt = performance.now();
    const cleanups: Cleanup[] = [];
    let callerGone = false;
    const unwatchCaller = watchChannels(ari, {
      [channelId]: () => {
        callerGone = true;
      },
    });
    const hungUp = (): HangupError =>
      new HangupError(`The caller hung up while its media was being set up (channel ${channelId})`);
    const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
      if (callerGone) throw hungUp();
      try {
        return await run();
      } catch (error) {
        if (callerGone) throw hungUp();
        if (isPassThrough(error)) throw error;
        // Asterisk restarting or crashed under the set-up: its calls are gone, this one with them.
        if (isPbxGone(error, ari))
          throw new HangupError(
            `Asterisk went away while the media of channel ${channelId} was being set up (${name}); a restart ends every call`,
            { cause: error },
          );
        throw new MediaSetupError(channelId, name, error);
      }
    };

    try {
      const worker = options.worker;
      const session = await step<RtpSession | MediaLeg>('allocating an RTP port', () =>
        worker
          ? worker.openLeg({
              ports: { min: options.allocator.min, max: options.allocator.max },
              bindAddress: options.bindAddress,
              ...(options.jitterDepth === undefined ? {} : { jitterDepth: options.jitterDepth }),
            })
          : RtpSession.open({
              allocator: options.allocator,
              bindAddress: options.bindAddress,
              ...(options.jitterDepth === undefined ? {} : { jitterDepth: options.jitterDepth }),
              logger,
            }),
      );
      cleanups.push(() => session.close());
      // Registered before the requests: a failed or timed-out request may still have created it.
      cleanups.push(() => tolerateGone(ari.bridges.destroy(bridgeId), ari, logger, 'bridge'));
      cleanups.push(() =>
        tolerateGone(ari.channels.hangup(externalChannelId), ari, logger, 'externalMedia channel'),
      );

      // The bridge and the externalMedia leg do not depend on each other: set them up together.
      const bridged = step('bridging the caller', async () => {
        await ari.bridges.create({ type: 'mixing', bridgeId, name: `asteramisk-${channelId}` });
        try {
          await ari.bridges.addChannel(bridgeId, channelId);
        } catch (error) {
          // Asterisk answers 400 or 422 for a caller that is gone; only a lookup tells a hangup apart.
          if (!(await channelExists(ari, channelId))) callerGone = true;
          throw error;
        }
      });
      const external = step('creating the externalMedia channel', () =>
        createExternalMedia(options, externalChannelId, session),
      );
      const [bridgedResult, externalResult] = await Promise.allSettled([bridged, external]);
      if (bridgedResult.status === 'rejected') throw bridgedResult.reason;
      if (externalResult.status === 'rejected') throw externalResult.reason;
      await step('adding the externalMedia channel to the bridge', () =>
        ari.bridges.addChannel(bridgeId, externalChannelId),
      );
      if (callerGone) throw hungUp();
      unwatchCaller();
      const media = new CallMedia({
        ari,
        channelId,
        bridgeId,
        externalChannelId,
        session,
        pacer: options.pacer,
        logger,
      });
      logger.debug(
        { bridgeId, externalChannelId, rtpPort: session.localPort, setupMs: performance.now() - startedAt },
        'Call media open',
      );
      return media;
    } catch (error) {
      unwatchCaller();
      await runCleanups(cleanups, logger);
      throw error;
    }
  }

  /** The local RTP port. */
  get localPort(): number {
    return this.#session.localPort;
  }

  /** Why the media ended; undefined while it is open. */
  get endReason(): CallMediaEndReason | undefined {
    return this.#endReason;
  }

  get isClosed(): boolean {
    return this.#endReason !== undefined;
  }

  /** Resolves, with the reason, once the media ended and everything it held was released. */
  get closed(): Promise<CallMediaEndReason> {
    return this.#closed;
  }

  /** Whether audio is queued or playing. */
  get playing(): boolean {
    return this.#player.playing;
  }

  /** RTP counters of the call. */
  get stats(): RtpSessionStats & { framesPlayed: number } {
    return { ...this.#session.stats, framesPlayed: this.#player.framesSent };
  }

  /**
   * The outbound player, for streaming playback and first-packet timing; undefined when the
   * media runs in a worker (use {@link stream} and {@link onFirstPacket}).
   */
  get player(): AudioPlayer | undefined {
    return this.#localPlayer;
  }

  /**
   * Plays 8 kHz mono PCM to the caller (queued after what is playing). Resolves 'finished' once
   * sent, 'stopped' if stopped, closed or the caller hung up. Never rejects.
   */
  play(pcm: Int16Array): Promise<PlayResult> {
    return this.#player.play(pcm);
  }

  /** Like {@link play}, for 8 kHz µ-law bytes, sent as they are. */
  playUlaw(ulaw: Uint8Array): Promise<PlayResult> {
    return this.#player.playUlaw(ulaw);
  }

  /** A PCM playback fed piece by piece (streaming TTS). */
  stream(): PlaybackStream<Int16Array> {
    return this.#player.stream();
  }

  /** A µ-law playback fed piece by piece (a realtime model's audio/pcmu deltas), sent as it is. */
  streamUlaw(): PlaybackStream<Uint8Array> {
    return this.#player.streamUlaw();
  }

  /**
   * Reports each playback's first frame on the wire (see {@link AudioPlayer.onFirstPacket});
   * returns the remover.
   */
  onFirstPacket(listener: (info: FirstPacketInfo) => void): () => void {
    return this.#player.onFirstPacket(listener);
  }

  /** Stops all playback at the next 20 ms tick (barge-in); resolves then. */
  stop(): Promise<void> {
    return this.#player.stop();
  }

  /** Adds a listener of the caller's audio (20 ms frames of 8 kHz PCM); returns its remover. */
  onAudio(listener: AudioListener): () => void {
    return this.#session.onAudio(listener);
  }

  /**
   * Adds a listener of the caller's audio as it came (20 ms frames of 8 kHz µ-law, not decoded)
   * with the time its datagram arrived (performance.now()); returns its remover.
   */
  onPayload(listener: PayloadListener): () => void {
    return this.#session.onPayload(listener);
  }

  /**
   * Ends the media: stops playback, hangs up the externalMedia channel, destroys the bridge (the
   * caller stays in Stasis), closes the socket and frees the port. Idempotent; never rejects: ARI
   * objects already gone (404, or Asterisk restarting: 503 or a refused connection) are fine and
   * logged at debug, other ARI failures are logged as warnings.
   */
  close(): Promise<void> {
    return this.#end('closed');
  }

  #end(reason: CallMediaEndReason): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#endReason = reason;
    this.#unwatch();
    this.#player.close();
    this.#logger.debug({ reason, rtp: this.stats }, 'Call media closing');
    this.#closing = runCleanups(
      [
        () => this.#session.close(),
        () =>
          tolerateGone(
            this.#ari.channels.hangup(this.externalChannelId),
            this.#ari,
            this.#logger,
            'externalMedia channel',
          ),
        () => tolerateGone(this.#ari.bridges.destroy(this.bridgeId), this.#ari, this.#logger, 'bridge'),
      ],
      this.#logger,
    ).then(() => this.#resolveClosed(reason));
    return this.#closing;
  }
}

/** Creates the externalMedia channel and waits until it is in Stasis; points the session at it. */
async function createExternalMedia(
  options: CallMediaOptions,
  externalChannelId: string,
  session: SessionPart,
): Promise<void> {
  const { ari } = options;
  const timeoutMs = options.setupTimeoutMs ?? 5000;
  // Listening before the request: Asterisk may send StasisStart before the REST answer.
  const inStasis = waitForStasisStart(ari, externalChannelId, timeoutMs);
  try {
    const host = isIPv6(options.advertiseHost) ? `[${options.advertiseHost}]` : options.advertiseHost;
    const channel = await ari.channels.externalMedia({
      ...(options.app === undefined ? {} : { app: options.app }),
      externalHost: `${host}:${session.localPort}`,
      format: 'ulaw',
      encapsulation: 'rtp',
      transport: 'udp',
      direction: 'both',
      channelId: externalChannelId,
    });
    const address = channel.channelvars?.UNICASTRTP_LOCAL_ADDRESS;
    const port = Number(channel.channelvars?.UNICASTRTP_LOCAL_PORT);
    if (!address || !Number.isInteger(port) || port <= 0)
      throw new AsteramiskError(
        `the externalMedia answer has no UNICASTRTP_LOCAL_ADDRESS/PORT (got ${JSON.stringify(channel.channelvars ?? {})})`,
        { code: 'MEDIA_SETUP' },
      );
    session.setRemote(address, port);
    await inStasis.promise;
  } finally {
    inStasis.cancel();
  }
}

/** A StasisStart wait that can be cancelled; a ChannelDestroyed of the channel fails it. */
function waitForStasisStart(
  ari: AriClient,
  channelId: string,
  timeoutMs: number,
): { promise: Promise<void>; cancel: () => void } {
  let cancel = (): void => {};
  const promise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cancel();
      reject(new TimeoutError(`the externalMedia channel did not enter Stasis within ${timeoutMs} ms`));
    }, timeoutMs);
    const unwatch = watchChannel(ari, channelId, {
      start: () => {
        cancel();
        resolve();
      },
      destroyed: (event) => {
        cancel();
        reject(new AsteramiskError(`the externalMedia channel was destroyed (${event.cause_txt})`));
      },
    });
    cancel = () => {
      clearTimeout(timer);
      unwatch();
    };
  });
  // The caller may stop awaiting (another step failed first); an unobserved rejection is no error.
  promise.catch(() => {});
  return { promise, cancel: () => cancel() };
}

/**
 * Calls `handlers[id]` when channel `id` leaves Stasis, is destroyed, or is reported lost after an
 * ARI reconnect. Returns the function that stops watching.
 */
function watchChannels(ari: AriClient, handlers: Record<string, () => void>): () => void {
  const stops = Object.entries(handlers).map(([id, handler]) =>
    watchChannel(ari, id, { end: handler, destroyed: handler, lost: handler }),
  );
  return () => {
    for (const stop of stops) stop();
  };
}

/** Runs every cleanup at once (they are independent), logging failures instead of throwing. */
async function runCleanups(cleanups: Cleanup[], logger: Logger): Promise<void> {
  const results = await Promise.allSettled(cleanups.map((cleanup) => cleanup()));
  for (const result of results) {
    if (result.status === 'rejected') {
      const error = result.reason;
      logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'Releasing a media resource failed',
      );
    }
  }
}

/** Errors that already say what went wrong and are thrown as they are. */
function isPassThrough(error: unknown): boolean {
  return (
    error instanceof HangupError ||
    error instanceof ResourceExhaustedError ||
    error instanceof ConfigError ||
    error instanceof MediaSetupError
  );
}

/** False only when Asterisk says the channel does not exist (any other failure: assume it does). */
async function channelExists(ari: AriClient, channelId: string): Promise<boolean> {
  try {
    await ari.channels.get(channelId);
    return true;
  } catch (error) {
    return !(error instanceof AriNotFoundError);
  }
}
