/**
 * The ARI data models asteramisk uses, written by hand from the Swagger 1.1 documents a real
 * Asterisk 22 serves under `/ari/api-docs/` (channels.json, bridges.json, playbacks.json,
 * recordings.json, endpoints.json, applications.json, asterisk.json, sounds.json,
 * deviceStates.json). Field names are Asterisk's own (snake_case) so a payload can be used as is;
 * a field is optional exactly when api-docs marks it `required: false`.
 *
 * Swagger `Date` values arrive as strings such as `2026-11-23T08:55:09.511+0000` (milliseconds,
 * `+0000` without a colon) and are kept as strings: `new Date()` parses them, but converting every
 * payload would cost time on the event path and hide what Asterisk sent.
 */

/** Channel states, as listed by api-docs (`Channel.state` allowableValues). */
export type ChannelState =
  | 'Down'
  | 'Rsrved'
  | 'OffHook'
  | 'Dialing'
  | 'Ring'
  | 'Ringing'
  | 'Up'
  | 'Busy'
  | 'Dialing Offhook'
  | 'Pre-ring'
  | 'Unknown';

/** Caller identification: a name and a number, each possibly empty. */
export interface CallerID {
  name: string;
  number: string;
}

/** Where a channel is in the dialplan: context, extension, priority and the running application. */
export interface DialplanCEP {
  context: string;
  exten: string;
  priority: number;
  /** Dialplan application being run, e.g. `Stasis` or `AppDial2`. */
  app_name: string;
  /** Its arguments, e.g. `myapp,1000`. */
  app_data: string;
}

/** A channel: one call leg (a SIP call, an externalMedia leg, a snoop…). */
export interface Channel {
  /** Unique id, `<epoch seconds>.<counter>` unless set by the app (originate/create `channelId`). */
  id: string;
  /** Channel name, e.g. `PJSIP/alice-00000003` or `UnicastRTP/127.0.0.1:40000-0x…`. */
  name: string;
  state: ChannelState;
  /** The protocol's call id (the SIP Call-ID); empty for UnicastRTP, AudioSocket, WebSocket channels. */
  protocol_id: string;
  caller: CallerID;
  connected: CallerID;
  accountcode: string;
  dialplan: DialplanCEP;
  creationtime: string;
  language: string;
  /**
   * Channel variables. Present in the answer of `POST /channels/externalMedia`
   * (`UNICASTRTP_LOCAL_ADDRESS`, `UNICASTRTP_LOCAL_PORT`, …) and in events only when ari.conf
   * `channelvars` asks for them. Values are strings.
   */
  channelvars?: Record<string, string>;
  /** Redirecting number, only when set. */
  caller_rdnis?: string;
  /** Tenant id (Asterisk 20.x+), only when set. */
  tenantid?: string;
}

/** Bridge types api-docs lists for `Bridge.bridge_type`. */
export type BridgeType = 'mixing' | 'holding';

/** A bridge: channels that hear each other (mixing) or wait together (holding). */
export interface Bridge {
  id: string;
  /** Bridging technology, e.g. `simple_bridge` (2 members) or `softmix` (3+). */
  technology: string;
  bridge_type: BridgeType;
  /** `stasis` for bridges created over ARI. */
  bridge_class: string;
  creator: string;
  name: string;
  /** Ids of the channels in the bridge. */
  channels: string[];
  video_mode?: string;
  video_source_id?: string;
  creationtime: string;
  bridgevars?: Record<string, string>;
}

/** Playback states, as listed by api-docs. A stopped playback finishes as `done`. */
export type PlaybackState = 'queued' | 'playing' | 'continuing' | 'done' | 'failed';

/** A playback of one or more media URIs to a channel or bridge. */
export interface Playback {
  id: string;
  /** The media being played now, e.g. `sound:hello-world`. */
  media_uri: string;
  /** The next media of a list, absent on the last one. */
  next_media_uri?: string;
  /** `channel:<id>` or `bridge:<id>`. */
  target_uri: string;
  language?: string;
  state: PlaybackState;
}

/** Live recording states, as listed by api-docs. A cancelled recording finished as `done` on Asterisk 22. */
export type LiveRecordingState = 'queued' | 'recording' | 'paused' | 'done' | 'failed' | 'canceled';

/** A recording in progress (or just finished, in RecordingFinished). */
export interface LiveRecording {
  name: string;
  format: string;
  /** `channel:<id>` or `bridge:<id>`. */
  target_uri: string;
  state: LiveRecordingState;
  /** Whole seconds recorded. */
  duration?: number;
  /** Whole seconds of talking; only when `maxSilenceSeconds` was given. */
  talking_duration?: number;
  /** Whole seconds of silence; only when `maxSilenceSeconds` was given. */
  silence_duration?: number;
  /** Why the recording failed. */
  cause?: string;
}

/** A recording stored on the Asterisk host. */
export interface StoredRecording {
  name: string;
  format: string;
}

/** Endpoint states, as listed by api-docs. */
export type EndpointState = 'unknown' | 'offline' | 'online';

/** An endpoint, e.g. technology `PJSIP`, resource `alice`. */
export interface Endpoint {
  technology: string;
  resource: string;
  state?: EndpointState;
  /** Channels currently on this endpoint. */
  channel_ids: string[];
}

/** An out-of-dialog text message (SIP MESSAGE), as received or sent over ARI. */
export interface TextMessage {
  /** Sender, e.g. `"Alice" <sip:alice@127.0.0.1>`. */
  from: string;
  /** Recipient, e.g. `pjsip:1000@127.0.0.1`. */
  to: string;
  body: string;
  /** Protocol headers and variables (`PJSIP_RECVADDR`, `Call-ID`, custom `X-` headers…). */
  variables?: Record<string, string>;
}

/** The value of a channel or global variable. */
export interface Variable {
  value: string;
}

/** Several variables at once (`GET /channels/{id}/variables`). */
export interface Variables {
  variables: Record<string, string>;
}

/** A Stasis application and what it is subscribed to. */
export interface Application {
  name: string;
  channel_ids: string[];
  bridge_ids: string[];
  /** Subscribed endpoints, e.g. `PJSIP/alice` or a whole technology `PJSIP`. */
  endpoint_ids: string[];
  device_names: string[];
  events_allowed: Record<string, unknown>[];
  events_disallowed: Record<string, unknown>[];
}

/** Build information of the Asterisk binary. */
export interface BuildInfo {
  os: string;
  kernel: string;
  options: string;
  machine: string;
  date: string;
  user: string;
}

/** Version and entity id of the running Asterisk. */
export interface SystemInfo {
  /** E.g. `22.10.1`. */
  version: string;
  entity_id: string;
}

/** Effective user and group of the Asterisk process. */
export interface SetId {
  user: string;
  group: string;
}

/** Global configuration of the running Asterisk. */
export interface ConfigInfo {
  name: string;
  default_language: string;
  max_channels?: number;
  max_open_files?: number;
  max_load?: number;
  setid: SetId;
}

/** Start-up and reload times. */
export interface StatusInfo {
  startup_time: string;
  last_reload_time: string;
}

/** `GET /asterisk/info`: each part is present unless filtered out with `only`. */
export interface AsteriskInfo {
  build?: BuildInfo;
  system?: SystemInfo;
  config?: ConfigInfo;
  status?: StatusInfo;
}

/** `GET /asterisk/ping`. */
export interface AsteriskPing {
  asterisk_id: string;
  /** Always `pong`. */
  ping: string;
  timestamp: string;
}

/** A loaded Asterisk module. */
export interface Module {
  name: string;
  description: string;
  use_count: number;
  status: string;
  support_level: string;
}

/** A language and format a sound exists in. */
export interface FormatLangPair {
  language: string;
  format: string;
}

/** A sound file known to Asterisk (minimal model). */
export interface Sound {
  id: string;
  text?: string;
  formats: FormatLangPair[];
}

/** Device states, as listed by api-docs. */
export type DeviceStateValue =
  | 'UNKNOWN'
  | 'NOT_INUSE'
  | 'INUSE'
  | 'BUSY'
  | 'INVALID'
  | 'UNAVAILABLE'
  | 'RINGING'
  | 'RINGINUSE'
  | 'ONHOLD';

/** The state of a device, e.g. `PJSIP/alice` `INUSE`. */
export interface DeviceState {
  name: string;
  state: DeviceStateValue;
}

/** RTP statistics of a channel (`GET /channels/{id}/rtp_statistics`); PJSIP channels only. */
export interface RTPstat {
  txcount: number;
  rxcount: number;
  txjitter?: number;
  rxjitter?: number;
  remote_maxjitter?: number;
  remote_minjitter?: number;
  remote_normdevjitter?: number;
  remote_stdevjitter?: number;
  local_maxjitter?: number;
  local_minjitter?: number;
  local_normdevjitter?: number;
  local_stdevjitter?: number;
  txploss: number;
  rxploss: number;
  remote_maxrxploss?: number;
  remote_minrxploss?: number;
  remote_normdevrxploss?: number;
  remote_stdevrxploss?: number;
  local_maxrxploss?: number;
  local_minrxploss?: number;
  local_normdevrxploss?: number;
  local_stdevrxploss?: number;
  rtt?: number;
  maxrtt?: number;
  minrtt?: number;
  normdevrtt?: number;
  stdevrtt?: number;
  local_ssrc: number;
  remote_ssrc: number;
  txoctetcount: number;
  rxoctetcount: number;
  channel_uniqueid: string;
}

/**
 * Variables sent in a request body (`{"variables": …}`) on originate, create, externalMedia,
 * sendMessage and user events. A value is a string, or `{ value, report_events }` to have Asterisk
 * report later changes of that variable in channel events.
 */
export type AriVariables = Readonly<Record<string, string | { value: string; report_events?: boolean }>>;
