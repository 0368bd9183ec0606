/**
 * The ARI events asteramisk consumes, as a discriminated union on `type`, and a parser for the text
 * frames of the events websocket. Field names and optionality follow the `events.json` api-docs
 * of Asterisk 22 (a field is optional exactly when api-docs says `required: false`).
 */

import { AriEventParseError } from '../errors.js';
import type {
  Bridge,
  Channel,
  DeviceState,
  Endpoint,
  LiveRecording,
  Playback,
  TextMessage,
} from './ari-types.js';

/** Fields every ARI event carries. */
export interface AriEventEnvelope {
  /** The event type, e.g. `StasisStart`. */
  type: string;
  /** When Asterisk raised the event, e.g. `2026-11-23T08:55:09.511+0000`. */
  timestamp: string;
  /** The entity id (MAC-like) of the Asterisk that sent the event. */
  asterisk_id?: string;
  /** The Stasis application the event was delivered to. */
  application: string;
}

/** A channel entered the Stasis application (dialplan `Stasis()`, originate, create, move…). */
export interface StasisStartEvent extends AriEventEnvelope {
  type: 'StasisStart';
  /** Arguments after the app name in `Stasis(app,arg1,arg2)` or originate `appArgs`, split on commas. */
  args: string[];
  channel: Channel;
  /** The channel this one replaces (after a masquerade, e.g. a transfer). */
  replace_channel?: Channel;
}

/** A channel left the Stasis application (hung up, continued in the dialplan, moved). */
export interface StasisEndEvent extends AriEventEnvelope {
  type: 'StasisEnd';
  channel: Channel;
}

/** A channel changed state, e.g. `Ring` → `Up` on answer. */
export interface ChannelStateChangeEvent extends AriEventEnvelope {
  type: 'ChannelStateChange';
  channel: Channel;
}

/** A DTMF digit was received (at the end of the digit). */
export interface ChannelDtmfReceivedEvent extends AriEventEnvelope {
  type: 'ChannelDtmfReceived';
  /** `0`–`9`, `A`–`D`, `*` or `#`. */
  digit: string;
  duration_ms: number;
  channel: Channel;
}

/**
 * A hangup was requested. `cause` is absent for a caller's BYE without a Reason header; with
 * `soft: true` it is an internal soft-hangup flag (32 = explicit), not a Q.850 cause.
 */
export interface ChannelHangupRequestEvent extends AriEventEnvelope {
  type: 'ChannelHangupRequest';
  cause?: number;
  tech_cause?: number;
  soft?: boolean;
  channel: Channel;
}

/** A channel was destroyed. `cause` is the Q.850 cause, e.g. 16 Normal Clearing, 17 User busy. */
export interface ChannelDestroyedEvent extends AriEventEnvelope {
  type: 'ChannelDestroyed';
  cause: number;
  cause_txt: string;
  /** Technology cause, e.g. the SIP status 486. */
  tech_cause?: number;
  channel: Channel;
}

/** A variable was set; without `channel` it is a global variable. */
export interface ChannelVarsetEvent extends AriEventEnvelope {
  type: 'ChannelVarset';
  variable: string;
  value: string;
  channel?: Channel;
}

/** TALK_DETECT saw the start of speech. */
export interface ChannelTalkingStartedEvent extends AriEventEnvelope {
  type: 'ChannelTalkingStarted';
  channel: Channel;
}

/** TALK_DETECT saw the end of speech; `duration` is the talking time in ms. */
export interface ChannelTalkingFinishedEvent extends AriEventEnvelope {
  type: 'ChannelTalkingFinished';
  channel: Channel;
  duration: number;
}

/** A channel joined a bridge. */
export interface ChannelEnteredBridgeEvent extends AriEventEnvelope {
  type: 'ChannelEnteredBridge';
  bridge: Bridge;
  channel?: Channel;
}

/** A channel left a bridge. */
export interface ChannelLeftBridgeEvent extends AriEventEnvelope {
  type: 'ChannelLeftBridge';
  bridge: Bridge;
  channel: Channel;
}

/** The connected line (the other party's caller id) of a channel changed. */
export interface ChannelConnectedLineEvent extends AriEventEnvelope {
  type: 'ChannelConnectedLine';
  channel: Channel;
}

/** The caller id of a channel changed. */
export interface ChannelCallerIdEvent extends AriEventEnvelope {
  type: 'ChannelCallerId';
  caller_presentation: number;
  caller_presentation_txt: string;
  channel: Channel;
}

/** A channel ran a dialplan application (only with subscribeAll or for subscribed channels). */
export interface ChannelDialplanEvent extends AriEventEnvelope {
  type: 'ChannelDialplan';
  channel: Channel;
  dialplan_app: string;
  dialplan_app_data: string;
}

/** A channel was created (only with subscribeAll or for subscribed endpoints). */
export interface ChannelCreatedEvent extends AriEventEnvelope {
  type: 'ChannelCreated';
  channel: Channel;
}

/** A user event (`UserEvent()` in the dialplan, or `POST /events/user/{name}`). */
export interface ChannelUsereventEvent extends AriEventEnvelope {
  type: 'ChannelUserevent';
  eventname: string;
  channel?: Channel;
  bridge?: Bridge;
  endpoint?: Endpoint;
  /** The user-defined fields, plus `eventname`. */
  userevent: Record<string, unknown>;
}

/** Progress of a dial: `dialstatus` is `""` at the start, then `RINGING`, `ANSWER`, `BUSY`… */
export interface DialEvent extends AriEventEnvelope {
  type: 'Dial';
  caller?: Channel;
  peer: Channel;
  forward?: string;
  forwarded?: Channel;
  dialstring?: string;
  dialstatus: string;
}

/** A playback started (also after an `unpause`, and for each item of a media list). */
export interface PlaybackStartedEvent extends AriEventEnvelope {
  type: 'PlaybackStarted';
  playback: Playback;
}

/** One item of a media list finished and the next begins. */
export interface PlaybackContinuingEvent extends AriEventEnvelope {
  type: 'PlaybackContinuing';
  playback: Playback;
}

/** A playback finished: state `done` (also when stopped) or `failed`. */
export interface PlaybackFinishedEvent extends AriEventEnvelope {
  type: 'PlaybackFinished';
  playback: Playback;
}

/** A recording started. */
export interface RecordingStartedEvent extends AriEventEnvelope {
  type: 'RecordingStarted';
  recording: LiveRecording;
}

/** A recording finished (also when stopped or cancelled). */
export interface RecordingFinishedEvent extends AriEventEnvelope {
  type: 'RecordingFinished';
  recording: LiveRecording;
}

/** A recording failed; `recording.cause` says why. */
export interface RecordingFailedEvent extends AriEventEnvelope {
  type: 'RecordingFailed';
  recording: LiveRecording;
}

/** A bridge was created. */
export interface BridgeCreatedEvent extends AriEventEnvelope {
  type: 'BridgeCreated';
  bridge: Bridge;
}

/** A bridge was destroyed. Not reliably delivered with the default subscription. */
export interface BridgeDestroyedEvent extends AriEventEnvelope {
  type: 'BridgeDestroyed';
  bridge: Bridge;
}

/** Two bridges were merged. */
export interface BridgeMergedEvent extends AriEventEnvelope {
  type: 'BridgeMerged';
  bridge: Bridge;
  bridge_from: Bridge;
}

/** An out-of-dialog text message (SIP MESSAGE) arrived from a subscribed endpoint. */
export interface TextMessageReceivedEvent extends AriEventEnvelope {
  type: 'TextMessageReceived';
  message: TextMessage;
  /** The sending endpoint. */
  endpoint?: Endpoint;
}

/** A device changed state, e.g. `PJSIP/alice` `INUSE`. */
export interface DeviceStateChangedEvent extends AriEventEnvelope {
  type: 'DeviceStateChanged';
  device_state: DeviceState;
}

/** An endpoint changed state. */
export interface EndpointStateChangeEvent extends AriEventEnvelope {
  type: 'EndpointStateChange';
  endpoint: Endpoint;
}

/** Details of a contact in ContactStatusChange. */
export interface ContactInfo {
  uri: string;
  contact_status: 'Unreachable' | 'Reachable' | 'Unknown' | 'NonQualified' | 'Removed';
  aor: string;
  roundtrip_usec?: string;
}

/** The status of an endpoint's contact changed. */
export interface ContactStatusChangeEvent extends AriEventEnvelope {
  type: 'ContactStatusChange';
  endpoint: Endpoint;
  contact_info: ContactInfo;
}

/** Details of a peer in PeerStatusChange. */
export interface Peer {
  peer_status: string;
  cause?: string;
  address?: string;
  port?: string;
  time?: string;
}

/** The status of a peer changed. */
export interface PeerStatusChangeEvent extends AriEventEnvelope {
  type: 'PeerStatusChange';
  endpoint: Endpoint;
  peer: Peer;
}

/** A channel was put on hold. */
export interface ChannelHoldEvent extends AriEventEnvelope {
  type: 'ChannelHold';
  channel: Channel;
  musicclass?: string;
}

/** A channel was taken off hold. */
export interface ChannelUnholdEvent extends AriEventEnvelope {
  type: 'ChannelUnhold';
  channel: Channel;
}

/** A tone (e.g. fax) was detected on a channel. */
export interface ChannelToneDetectedEvent extends AriEventEnvelope {
  type: 'ChannelToneDetected';
  channel: Channel;
}

/**
 * Another websocket registered the same application name. Asterisk keeps this socket open but
 * sends it nothing more.
 */
export interface ApplicationReplacedEvent extends AriEventEnvelope {
  type: 'ApplicationReplaced';
}

/** `move` to an application that does not exist: the channel stays in this one. */
export interface ApplicationMoveFailedEvent extends AriEventEnvelope {
  type: 'ApplicationMoveFailed';
  channel: Channel;
  destination: string;
  args: string[];
}

/** Every ARI event the library knows, discriminated on `type`. */
export type AriEvent =
  | StasisStartEvent
  | StasisEndEvent
  | ChannelStateChangeEvent
  | ChannelDtmfReceivedEvent
  | ChannelHangupRequestEvent
  | ChannelDestroyedEvent
  | ChannelVarsetEvent
  | ChannelTalkingStartedEvent
  | ChannelTalkingFinishedEvent
  | ChannelEnteredBridgeEvent
  | ChannelLeftBridgeEvent
  | ChannelConnectedLineEvent
  | ChannelCallerIdEvent
  | ChannelDialplanEvent
  | ChannelCreatedEvent
  | ChannelUsereventEvent
  | ChannelHoldEvent
  | ChannelUnholdEvent
  | ChannelToneDetectedEvent
  | DialEvent
  | PlaybackStartedEvent
  | PlaybackContinuingEvent
  | PlaybackFinishedEvent
  | RecordingStartedEvent
  | RecordingFinishedEvent
  | RecordingFailedEvent
  | BridgeCreatedEvent
  | BridgeDestroyedEvent
  | BridgeMergedEvent
  | TextMessageReceivedEvent
  | DeviceStateChangedEvent
  | EndpointStateChangeEvent
  | ContactStatusChangeEvent
  | PeerStatusChangeEvent
  | ApplicationReplacedEvent
  | ApplicationMoveFailedEvent;

/** The `type` of every known event. */
export type AriEventType = AriEvent['type'];

/** The event interface for one `type`, e.g. `AriEventOf<'StasisStart'>` is {@link StasisStartEvent}. */
export type AriEventOf<K extends AriEventType> = Extract<AriEvent, { type: K }>;

/**
 * An event whose `type` this version of the library does not know (a newer Asterisk, or an event
 * it does not model such as `BridgeAttendedTransfer`). Passed through untouched.
 */
export interface UnknownAriEvent extends AriEventEnvelope {
  [field: string]: unknown;
}

/** Result of {@link parseAriEvent}. `known` and `unknown` carry the event; `malformed` the error. */
export type ParsedAriEvent =
  | { readonly kind: 'known'; readonly event: AriEvent }
  | { readonly kind: 'unknown'; readonly event: UnknownAriEvent }
  | { readonly kind: 'malformed'; readonly error: AriEventParseError };

/** How a field is checked: a primitive, an array, a plain object, or an ARI object by its key field. */
type FieldCheck =
  | 'string'
  | 'number'
  | 'boolean'
  | 'array'
  | 'strings'
  | 'object'
  | 'digit'
  | 'textMessage'
  | 'channel'
  | 'bridge'
  | 'playback'
  | 'recording'
  | 'endpoint';

/** A field's check; a trailing `?` in the key marks an optional field (checked only when present). */
type FieldSpec = Readonly<Record<string, FieldCheck>>;

/**
 * The fields checked per known type: the required ones of events.json, plus optional ARI objects
 * the library dereferences. The check is deliberately shallow (an object's key fields and the
 * fields the library reads, not every field): it catches frames that would make a handler throw
 * on `e.channel.caller.number` or `e.playback.target_uri.indexOf`, at a cost of a few property
 * reads per event.
 */
const SPECS: Readonly<Record<AriEventType, FieldSpec>> = {
  StasisStart: { args: 'strings', channel: 'channel', 'replace_channel?': 'channel' },
  StasisEnd: { channel: 'channel' },
  ChannelStateChange: { channel: 'channel' },
  ChannelDtmfReceived: { digit: 'digit', duration_ms: 'number', channel: 'channel' },
  ChannelHangupRequest: { channel: 'channel', 'cause?': 'number', 'soft?': 'boolean' },
  ChannelDestroyed: { cause: 'number', cause_txt: 'string', channel: 'channel' },
  ChannelVarset: { variable: 'string', value: 'string', 'channel?': 'channel' },
  ChannelTalkingStarted: { channel: 'channel' },
  ChannelTalkingFinished: { channel: 'channel', duration: 'number' },
  ChannelEnteredBridge: { bridge: 'bridge', 'channel?': 'channel' },
  ChannelLeftBridge: { bridge: 'bridge', channel: 'channel' },
  ChannelConnectedLine: { channel: 'channel' },
  ChannelCallerId: { caller_presentation: 'number', caller_presentation_txt: 'string', channel: 'channel' },
  ChannelDialplan: { channel: 'channel', dialplan_app: 'string', dialplan_app_data: 'string' },
  ChannelCreated: { channel: 'channel' },
  ChannelUserevent: {
    eventname: 'string',
    userevent: 'object',
    'channel?': 'channel',
    'bridge?': 'bridge',
    'endpoint?': 'endpoint',
  },
  ChannelHold: { channel: 'channel' },
  ChannelUnhold: { channel: 'channel' },
  ChannelToneDetected: { channel: 'channel' },
  Dial: { peer: 'channel', dialstatus: 'string', 'caller?': 'channel' },
  PlaybackStarted: { playback: 'playback' },
  PlaybackContinuing: { playback: 'playback' },
  PlaybackFinished: { playback: 'playback' },
  RecordingStarted: { recording: 'recording' },
  RecordingFinished: { recording: 'recording' },
  RecordingFailed: { recording: 'recording' },
  BridgeCreated: { bridge: 'bridge' },
  BridgeDestroyed: { bridge: 'bridge' },
  BridgeMerged: { bridge: 'bridge', bridge_from: 'bridge' },
  TextMessageReceived: { message: 'textMessage', 'endpoint?': 'endpoint' },
  DeviceStateChanged: { device_state: 'object' },
  EndpointStateChange: { endpoint: 'endpoint' },
  ContactStatusChange: { endpoint: 'endpoint', contact_info: 'object' },
  PeerStatusChange: { endpoint: 'endpoint', peer: 'object' },
  ApplicationReplaced: {},
  ApplicationMoveFailed: { channel: 'channel', destination: 'string', args: 'strings' },
};

/** One field check of {@link SPECS}, split once at load: the field name, whether optional, the check. */
interface CompiledCheck {
  readonly field: string;
  readonly optional: boolean;
  readonly check: FieldCheck;
}

/** {@link SPECS} as arrays, so checking an event allocates nothing. */
const COMPILED: ReadonlyMap<string, readonly CompiledCheck[]> = new Map(
  Object.entries(SPECS).map(([type, spec]) => [
    type,
    Object.entries(spec).map(([key, check]) => {
      const optional = key.endsWith('?');
      return { field: optional ? key.slice(0, -1) : key, optional, check };
    }),
  ]),
);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An object id the library puts in request paths: a non-empty string without a lone UTF-16
 * surrogate (JSON can carry `"\ud800"`; encodeURIComponent throws a URIError on it).
 */
function isId(value: unknown): value is string {
  if (typeof value !== 'string' || value === '') return false;
  // isWellFormed (Node 20+): false exactly when the string has a lone surrogate.
  const wellFormed = (value as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof wellFormed === 'function' ? wellFormed.call(value) : !/\p{Cs}/u.test(value);
}

/** `{ name, number }` of a Channel's `caller`, as strings. */
function isCallerId(value: unknown): boolean {
  return isObject(value) && typeof value.name === 'string' && typeof value.number === 'string';
}

function checkField(value: unknown, check: FieldCheck): boolean {
  switch (check) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    case 'object':
      return isObject(value);
    case 'digit':
      // One key: 0-9, *, #, A-D, or Asterisk's X for a flash (RFC 4733 event 16).
      return typeof value === 'string' && value.length === 1;
    case 'textMessage':
      return (
        isObject(value) &&
        typeof value.from === 'string' &&
        typeof value.to === 'string' &&
        typeof value.body === 'string'
      );
    case 'channel':
      // The fields the library reads of every channel (caller id, dialed extension, state).
      return (
        isObject(value) &&
        isId(value.id) &&
        typeof value.name === 'string' &&
        typeof value.state === 'string' &&
        isCallerId(value.caller) &&
        isObject(value.dialplan) &&
        typeof value.dialplan.exten === 'string' &&
        typeof value.dialplan.context === 'string'
      );
    case 'bridge':
      return isObject(value) && isId(value.id);
    case 'playback':
      return isObject(value) && isId(value.id) && typeof value.target_uri === 'string';
    case 'recording':
      return isObject(value) && isId(value.name) && typeof value.target_uri === 'string';
    case 'endpoint':
      return isObject(value) && typeof value.technology === 'string' && isId(value.resource);
  }
}

/** True when `type` is one of the event types this library models. */
export function isKnownAriEventType(type: string): type is AriEventType {
  return Object.hasOwn(SPECS, type);
}

/** Type guard: `event` is a known event of type `type`, e.g. `isAriEvent(e, 'StasisStart')`. */
export function isAriEvent<K extends AriEventType>(event: { type: string }, type: K): event is AriEventOf<K> {
  return event.type === type;
}

/**
 * Parses one text frame of the ARI events websocket. Never throws: bad JSON, a frame that is not
 * an object, a missing envelope field or a known type missing a required field gives
 * `{ kind: 'malformed', error }`; a valid frame of a type the library does not model gives
 * `{ kind: 'unknown', event }` so it can still be passed on.
 */
export function parseAriEvent(text: string): ParsedAriEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return {
      kind: 'malformed',
      error: new AriEventParseError(`ARI event is not valid JSON: ${reason}`, text),
    };
  }
  const malformed = (why: string): ParsedAriEvent => ({
    kind: 'malformed',
    error: new AriEventParseError(`Malformed ARI event: ${why}`, text),
  });
  if (!isObject(value)) return malformed('not a JSON object');
  if (typeof value.type !== 'string' || value.type === '') return malformed('no "type"');
  if (typeof value.timestamp !== 'string') return malformed(`${value.type} has no "timestamp"`);
  if (typeof value.application !== 'string') return malformed(`${value.type} has no "application"`);
  if (value.asterisk_id !== undefined && typeof value.asterisk_id !== 'string') {
    return malformed(`${value.type} has a non-string "asterisk_id"`);
  }

  const type = value.type;
  const checks = COMPILED.get(type);
  if (checks === undefined || !isKnownAriEventType(type)) {
    return { kind: 'unknown', event: value as UnknownAriEvent };
  }

  for (let i = 0; i < checks.length; i++) {
    const { field, optional, check } = checks[i]!;
    const fieldValue = value[field];
    if (fieldValue === undefined && optional) continue;
    if (!checkField(fieldValue, check)) {
      return malformed(
        `${type}.${field} is ${fieldValue === undefined ? 'missing' : `not a valid ${check}`}`,
      );
    }
  }
  // The checks above cover the fields the type requires; the cast is what they establish.
  return { kind: 'known', event: value as unknown as AriEvent };
}
