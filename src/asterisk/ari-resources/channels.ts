import { type AriQueryValue, type AriRequestFn, seg } from '../ari-http.js';
import type { AriVariables, Channel, LiveRecording, Playback, RTPstat, Variable } from '../ari-types.js';

/** Reasons `DELETE /channels/{id}?reason=` accepts (api-docs); each maps to a Q.850 cause. */
export type HangupReason =
  | 'normal'
  | 'busy'
  | 'congestion'
  | 'no_answer'
  | 'timeout'
  | 'rejected'
  | 'unallocated'
  | 'normal_unspecified'
  | 'number_incomplete'
  | 'codec_mismatch'
  | 'interworking'
  | 'failure'
  | 'answered_elsewhere';

/** Options of {@link ChannelsResource.hangup}. `reason` and `reasonCode` are mutually exclusive. */
export interface HangupOptions {
  reason?: HangupReason;
  /** A Q.850 cause code, e.g. 17 (busy): the SIP caller then gets `486 Busy Here`. */
  reasonCode?: number | string;
}

/** A media URI: `sound:hello-world`, `digits:123`, `number:42`, `tone:ring;tonezone=us`, `recording:x`… */
export type MediaUri = string;

/** Options of a play request (channel or bridge). */
export interface PlayOptions {
  /** Language of `sound:` media, e.g. `en`. */
  lang?: string;
  /** Id to give the playback (default: a UUID chosen by Asterisk). */
  playbackId?: string;
  /** Ms skipped by `forward`/`reverse` controls. Default 3000. */
  skipms?: number;
  /** Ms to skip at the start of the media. */
  offsetms?: number;
}

/** Options of a record request (channel or bridge). */
export interface RecordOptions {
  /** Recording name (file name without extension); required. */
  name: string;
  /** File format, e.g. `wav`, `gsm`, `sln`; required. */
  format: string;
  /** Stop after this many seconds (0: no limit). */
  maxDurationSeconds?: number;
  /** Stop after this many seconds of silence (0: no limit). */
  maxSilenceSeconds?: number;
  /** What to do when a recording of that name exists. Default `fail` (409). */
  ifExists?: 'fail' | 'overwrite' | 'append';
  /** Play a beep before recording. */
  beep?: boolean;
  /** A DTMF digit that stops the recording. Default `none`. */
  terminateOn?: 'none' | 'any' | '*' | '#';
}

/** The query of a play request, shared by channels and bridges. */
export function playQuery(
  media: MediaUri | readonly MediaUri[],
  options: PlayOptions,
): Record<string, AriQueryValue> {
  return {
    media,
    lang: options.lang,
    playbackId: options.playbackId,
    skipms: options.skipms,
    offsetms: options.offsetms,
  };
}

/** The query of a record request, shared by channels and bridges. */
export function recordQuery(options: RecordOptions): Record<string, AriQueryValue> {
  return {
    name: options.name,
    format: options.format,
    maxDurationSeconds: options.maxDurationSeconds,
    maxSilenceSeconds: options.maxSilenceSeconds,
    ifExists: options.ifExists,
    beep: options.beep,
    terminateOn: options.terminateOn,
  };
}

/** Options of {@link ChannelsResource.externalMedia}. */
export interface ExternalMediaOptions {
  /** Stasis application of the new channel. Default: the client's app. */
  app?: string;
  /**
   * `host:port` Asterisk sends media to (RTP, AudioSocket), or a websocket_client connection id.
   * Omit it only for a websocket server connection (`transport: 'websocket'`, `connectionType: 'server'`).
   */
  externalHost?: string;
  /** Audio format, e.g. `ulaw`, `slin16`. */
  format: string;
  /** Default `rtp`; must be `none` for the websocket transport. */
  encapsulation?: 'rtp' | 'audiosocket' | 'none';
  /** Default `udp`. */
  transport?: 'udp' | 'tcp' | 'websocket';
  /** Default `client`; `server` only with the websocket transport. */
  connectionType?: 'client' | 'server';
  /** Default `both`. api-docs lists only `both`; Asterisk 22 also accepts `in`. */
  direction?: 'both' | 'in' | 'out';
  channelId?: string;
  variables?: AriVariables;
  /** Free data; the AudioSocket UUID for `encapsulation: 'audiosocket'` (required there). */
  data?: string;
  /** Transport-specific data; for websocket, appended to the dial string (e.g. `f(json)`). */
  transportData?: string;
}

/** Options of {@link ChannelsResource.originate}. Give `app` (Stasis) or `extension`/`context` (dialplan). */
export interface OriginateOptions {
  /** What to call, e.g. `PJSIP/bob` or `PJSIP/+15551234@pstn`. */
  endpoint: string;
  /** Stasis application for the answered channel. Default: the client's app when no `extension` is given. */
  app?: string;
  /** Arguments for StasisStart `args`; an array is joined with commas (Asterisk splits on commas). */
  appArgs?: string | readonly string[];
  extension?: string;
  context?: string;
  priority?: number;
  label?: string;
  /** E.g. `Asteramisk <5551234>`. */
  callerId?: string;
  /** Seconds to ring before giving up (-1: forever). Asterisk's default is 30. */
  timeout?: number;
  channelId?: string;
  otherChannelId?: string;
  /** Id of the channel originating this one (codec and linked id). */
  originator?: string;
  /** Format capabilities when there is no originator, e.g. `['ulaw', 'slin16']`. */
  formats?: string | readonly string[];
  /** Channel variables set at creation; `CALLERID(name)` etc. work too. */
  variables?: AriVariables;
}

/** Options of {@link ChannelsResource.create}: a channel in Stasis that is not dialled yet. */
export interface CreateChannelOptions {
  endpoint: string;
  /** Default: the client's app. */
  app?: string;
  appArgs?: string | readonly string[];
  channelId?: string;
  otherChannelId?: string;
  originator?: string;
  formats?: string | readonly string[];
  variables?: AriVariables;
}

/** Options of {@link ChannelsResource.snoop}. */
export interface SnoopOptions {
  /** Default: the client's app. */
  app?: string;
  /** Direction of audio to spy on. Default `none`. */
  spy?: 'none' | 'both' | 'out' | 'in';
  /** Direction of audio to whisper into. Default `none`. */
  whisper?: 'none' | 'both' | 'out' | 'in';
  appArgs?: string | readonly string[];
  snoopId?: string;
}

/** Audio direction for mute/unmute. */
export type MuteDirection = 'both' | 'in' | 'out';

function joinArgs(args: string | readonly string[] | undefined): string | undefined {
  return args === undefined ? undefined : typeof args === 'string' ? args : args.join(',');
}

/**
 * `/channels`: calls and call legs. Every method rejects with {@link AriNotFoundError} when the
 * channel is gone and {@link AriStateError} (422) / {@link AriConflictError} (409) when it is not
 * in a state that allows the operation (e.g. not in Stasis).
 */
export class ChannelsResource {
  readonly #request: AriRequestFn;
  readonly #defaultApp: string;

  /** @param defaultApp the Stasis application used when an option `app` is omitted. */
  constructor(request: AriRequestFn, defaultApp: string) {
    this.#request = request;
    this.#defaultApp = defaultApp;
  }

  /** All channels Asterisk has (not only this app's). */
  list(): Promise<Channel[]> {
    return this.#request('GET', '/channels');
  }

  /** One channel. */
  get(channelId: string): Promise<Channel> {
    return this.#request('GET', `/channels/${seg(channelId)}`);
  }

  /** Answers the channel (204 also when it is already Up). */
  answer(channelId: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/answer`);
  }

  /** Hangs the channel up. */
  hangup(channelId: string, options: HangupOptions = {}): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}`, {
      query: { reason: options.reason, reason_code: options.reasonCode },
    });
  }

  /** Sends ringing to the caller. */
  ring(channelId: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/ring`);
  }

  /** Stops ringing. */
  ringStop(channelId: string): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}/ring`);
  }

  /** Sends progress (early media) to the caller. */
  progress(channelId: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/progress`);
  }

  /**
   * Plays media. A list is one playback that plays each item in turn (PlaybackStarted /
   * PlaybackContinuing per item, one PlaybackFinished). Resolves with the queued Playback; await
   * PlaybackFinished for its end (an unsupported scheme never finishes: use a timeout).
   */
  play(
    channelId: string,
    media: MediaUri | readonly MediaUri[],
    options: PlayOptions = {},
  ): Promise<Playback> {
    return this.#request('POST', `/channels/${seg(channelId)}/play`, { query: playQuery(media, options) });
  }

  /** Starts recording the channel; RecordingFinished tells when it ends. */
  record(channelId: string, options: RecordOptions): Promise<LiveRecording> {
    return this.#request('POST', `/channels/${seg(channelId)}/record`, { query: recordQuery(options) });
  }

  /**
   * Creates an externalMedia channel (RTP, AudioSocket or websocket) in Stasis. The answer has
   * `channelvars` with `UNICASTRTP_LOCAL_ADDRESS`/`UNICASTRTP_LOCAL_PORT` (RTP) where Asterisk
   * expects the media back.
   */
  externalMedia(options: ExternalMediaOptions): Promise<Channel> {
    return this.#request('POST', '/channels/externalMedia', {
      query: {
        app: options.app ?? this.#defaultApp,
        external_host: options.externalHost,
        format: options.format,
        encapsulation: options.encapsulation,
        transport: options.transport,
        connection_type: options.connectionType,
        direction: options.direction,
        channelId: options.channelId,
        data: options.data,
        transport_data: options.transportData,
      },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }

  /**
   * Calls an endpoint. Resolves at once with the new channel (state `Down`); Dial and
   * ChannelStateChange events follow, then StasisStart when answered, or ChannelDestroyed
   * (busy, no answer). Allocation failures (unknown endpoint, no contact) reject with 500.
   */
  originate(options: OriginateOptions): Promise<Channel> {
    const app = options.app ?? (options.extension === undefined ? this.#defaultApp : undefined);
    return this.#request('POST', '/channels', {
      query: {
        endpoint: options.endpoint,
        app,
        appArgs: joinArgs(options.appArgs),
        extension: options.extension,
        context: options.context,
        priority: options.priority,
        label: options.label,
        callerId: options.callerId,
        timeout: options.timeout,
        channelId: options.channelId,
        otherChannelId: options.otherChannelId,
        originator: options.originator,
        formats: options.formats,
      },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }

  /** Creates a channel in Stasis without dialling it; call {@link dial} next. */
  create(options: CreateChannelOptions): Promise<Channel> {
    return this.#request('POST', '/channels/create', {
      query: {
        endpoint: options.endpoint,
        app: options.app ?? this.#defaultApp,
        appArgs: joinArgs(options.appArgs),
        channelId: options.channelId,
        otherChannelId: options.otherChannelId,
        originator: options.originator,
        formats: options.formats,
      },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }

  /** Dials a channel made by {@link create}. `timeout` in seconds (0: none). */
  dial(channelId: string, options: { caller?: string; timeout?: number } = {}): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/dial`, {
      query: { caller: options.caller, timeout: options.timeout },
    });
  }

  /** Leaves Stasis and continues in the dialplan (StasisEnd follows). */
  continueInDialplan(
    channelId: string,
    options: { context?: string; extension?: string; priority?: number; label?: string } = {},
  ): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/continue`, {
      query: {
        context: options.context,
        extension: options.extension,
        priority: options.priority,
        label: options.label,
      },
    });
  }

  /** Redirects the channel to another endpoint of the same technology (e.g. a SIP 302). */
  redirect(channelId: string, endpoint: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/redirect`, { query: { endpoint } });
  }

  /**
   * Moves the channel to another Stasis application. A missing app still answers 204 and raises
   * ApplicationMoveFailed.
   */
  move(channelId: string, app: string, appArgs?: string | readonly string[]): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/move`, {
      query: { app, appArgs: joinArgs(appArgs) },
    });
  }

  /**
   * Reads a channel variable or function (`CALLERID(num)`, `CHANNEL(rtp,src)`…).
   * A variable that is not set rejects with {@link AriNotFoundError} (`Provided variable was not found`).
   */
  async getVariable(channelId: string, name: string): Promise<string> {
    const result = await this.#request<Variable>('GET', `/channels/${seg(channelId)}/variable`, {
      query: { variable: name },
    });
    return result.value;
  }

  /** Sets a channel variable or function, e.g. `TALK_DETECT(set)` to `''`. */
  setVariable(channelId: string, name: string, value: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/variable`, {
      query: { variable: name, value },
    });
  }

  /** Sends DTMF digits to the channel; times in ms. */
  sendDtmf(
    channelId: string,
    dtmf: string,
    options: { before?: number; between?: number; duration?: number; after?: number } = {},
  ): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/dtmf`, {
      query: {
        dtmf,
        before: options.before,
        between: options.between,
        duration: options.duration,
        after: options.after,
      },
    });
  }

  /** Puts the channel on hold. */
  hold(channelId: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/hold`);
  }

  /** Takes the channel off hold. */
  unhold(channelId: string): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}/hold`);
  }

  /** Mutes the channel (default both directions). */
  mute(channelId: string, direction?: MuteDirection): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/mute`, { query: { direction } });
  }

  /** Unmutes the channel (default both directions). */
  unmute(channelId: string, direction?: MuteDirection): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}/mute`, { query: { direction } });
  }

  /** Plays silence to the channel. */
  silence(channelId: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/silence`);
  }

  /** Stops playing silence. */
  unsilence(channelId: string): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}/silence`);
  }

  /** Starts music on hold (an unknown class still answers 204). */
  startMoh(channelId: string, mohClass?: string): Promise<void> {
    return this.#request('POST', `/channels/${seg(channelId)}/moh`, { query: { mohClass } });
  }

  /** Stops music on hold. */
  stopMoh(channelId: string): Promise<void> {
    return this.#request('DELETE', `/channels/${seg(channelId)}/moh`);
  }

  /**
   * Creates a snoop channel that spies on and/or whispers into the channel; it enters `app`.
   * Asterisk 22 puts it into the app from a thread of its own, so its StasisStart may come after
   * this resolves: wait for it before acting on the snoop (a record sent before is refused with
   * 409 "Channel not in Stasis application").
   */
  snoop(channelId: string, options: SnoopOptions = {}): Promise<Channel> {
    return this.#request('POST', `/channels/${seg(channelId)}/snoop`, {
      query: {
        app: options.app ?? this.#defaultApp,
        spy: options.spy,
        whisper: options.whisper,
        appArgs: joinArgs(options.appArgs),
        snoopId: options.snoopId,
      },
    });
  }

  /** RTP statistics of the channel (PJSIP only; UnicastRTP answers 404 `RTP info not found`). */
  rtpStatistics(channelId: string): Promise<RTPstat> {
    return this.#request('GET', `/channels/${seg(channelId)}/rtp_statistics`);
  }
}
