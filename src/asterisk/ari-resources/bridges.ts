import { type AriRequestFn, seg } from '../ari-http.js';
import type { Bridge, LiveRecording, Playback } from '../ari-types.js';
import { type MediaUri, type PlayOptions, playQuery, type RecordOptions, recordQuery } from './channels.js';

/** Bridge type attributes `POST /bridges?type=` accepts (a comma-separated list on the wire). */
export type BridgeTypeAttribute =
  | 'mixing'
  | 'holding'
  | 'dtmf_events'
  | 'proxy_media'
  | 'video_sfu'
  | 'video_single'
  | 'sdp_label';

/** Options of {@link BridgesResource.create}. */
export interface CreateBridgeOptions {
  /** One attribute or several, e.g. `['mixing', 'dtmf_events']`. Default: Asterisk's (mixing). */
  type?: BridgeTypeAttribute | readonly BridgeTypeAttribute[];
  /** Id to give the bridge (default: a UUID). A duplicate rejects with 409. */
  bridgeId?: string;
  name?: string;
}

/** Options of {@link BridgesResource.addChannel}. */
export interface AddChannelOptions {
  /** Role of the channel in the bridge, e.g. `announcer`. */
  role?: string;
  /** Absorb DTMF coming from this channel instead of passing it to the bridge. */
  absorbDtmf?: boolean;
  /** Mute audio from this channel. */
  mute?: boolean;
  /** Do not update the connected line of the joining channel (avoids a SIP re-INVITE). */
  inhibitConnectedLineUpdates?: boolean;
}

/** Options of a bridge play: {@link PlayOptions} plus the announcer channel's format. */
export interface BridgePlayOptions extends PlayOptions {
  announcerFormat?: string;
}

/** Options of a bridge record: {@link RecordOptions} plus the recorder channel's format. */
export interface BridgeRecordOptions extends RecordOptions {
  recorderFormat?: string;
}

/**
 * `/bridges`. Note Asterisk's codes: addChannel with an unknown channel answers **400**, an
 * unknown bridge 404, a channel not in Stasis 422; removeChannel of a non-member 422.
 */
export class BridgesResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** Creates a bridge (`POST /bridges/{id}` when an id is given, as Asterisk documents both forms). */
  create(options: CreateBridgeOptions = {}): Promise<Bridge> {
    const query = { type: options.type, name: options.name };
    return options.bridgeId === undefined
      ? this.#request('POST', '/bridges', { query })
      : this.#request('POST', `/bridges/${seg(options.bridgeId)}`, { query });
  }

  /** One bridge. */
  get(bridgeId: string): Promise<Bridge> {
    return this.#request('GET', `/bridges/${seg(bridgeId)}`);
  }

  /** All bridges. */
  list(): Promise<Bridge[]> {
    return this.#request('GET', '/bridges');
  }

  /** Adds one or more channels (sent as one comma-separated `channel` parameter). */
  addChannel(
    bridgeId: string,
    channel: string | readonly string[],
    options: AddChannelOptions = {},
  ): Promise<void> {
    return this.#request('POST', `/bridges/${seg(bridgeId)}/addChannel`, {
      query: {
        channel,
        role: options.role,
        absorbDTMF: options.absorbDtmf,
        mute: options.mute,
        inhibitConnectedLineUpdates: options.inhibitConnectedLineUpdates,
      },
    });
  }

  /** Removes one or more channels. */
  removeChannel(bridgeId: string, channel: string | readonly string[]): Promise<void> {
    return this.#request('POST', `/bridges/${seg(bridgeId)}/removeChannel`, { query: { channel } });
  }

  /** Destroys the bridge; its channels stay in Stasis. */
  destroy(bridgeId: string): Promise<void> {
    return this.#request('DELETE', `/bridges/${seg(bridgeId)}`);
  }

  /** Plays media to every member; the Playback's `target_uri` is `bridge:<id>`. */
  play(
    bridgeId: string,
    media: MediaUri | readonly MediaUri[],
    options: BridgePlayOptions = {},
  ): Promise<Playback> {
    return this.#request('POST', `/bridges/${seg(bridgeId)}/play`, {
      query: { ...playQuery(media, options), announcer_format: options.announcerFormat },
    });
  }

  /** Records the bridge's mixed audio. */
  record(bridgeId: string, options: BridgeRecordOptions): Promise<LiveRecording> {
    return this.#request('POST', `/bridges/${seg(bridgeId)}/record`, {
      query: { ...recordQuery(options), recorder_format: options.recorderFormat },
    });
  }

  /** Starts music on hold in the bridge. */
  startMoh(bridgeId: string, mohClass?: string): Promise<void> {
    return this.#request('POST', `/bridges/${seg(bridgeId)}/moh`, { query: { mohClass } });
  }

  /** Stops music on hold in the bridge. */
  stopMoh(bridgeId: string): Promise<void> {
    return this.#request('DELETE', `/bridges/${seg(bridgeId)}/moh`);
  }
}
