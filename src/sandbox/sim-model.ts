/**
 * The simulator's data model and how it looks on the wire. Field sets and key order follow what a
 * real Asterisk 22 sends (see the project's wire-fidelity tests).
 */

/** Channel states a real Asterisk reports over ARI. */
export type SimChannelState = 'Down' | 'Rsrvd' | 'OffHook' | 'Dialing' | 'Ring' | 'Ringing' | 'Up' | 'Busy';

/** AMI's numeric ChannelState for each ARI state. */
export const AMI_STATE_NUMBER: Record<SimChannelState, number> = {
  Down: 0,
  Rsrvd: 1,
  OffHook: 2,
  Dialing: 3,
  Ring: 4,
  Ringing: 5,
  Up: 6,
  Busy: 7,
};

/** Q.850 cause texts as Asterisk prints them. */
export const CAUSE_TEXT: Record<number, string> = {
  0: 'Unknown',
  1: 'Unallocated (unassigned) number',
  3: 'No route to destination',
  16: 'Normal Clearing',
  17: 'User busy',
  18: 'No user responding',
  19: 'User alerting, no answer',
  21: 'Call Rejected',
  27: 'Destination out of order',
  34: 'Circuit/channel congestion',
  38: 'Network out of order',
  127: 'Interworking, unspecified',
};

export function causeText(cause: number): string {
  return CAUSE_TEXT[cause] ?? 'Unknown';
}

/** ARI hangup `reason` names and their Q.850 codes. */
export const HANGUP_REASONS: Record<string, number> = {
  normal: 16,
  busy: 17,
  congestion: 34,
  no_answer: 19,
  timeout: 19,
  rejected: 21,
  unallocated: 1,
  normal_unspecified: 31,
  number_incomplete: 28,
  codec_mismatch: 58,
  interworking: 127,
  failure: 38,
  answered_elsewhere: 26,
};

export interface CallerId {
  name: string;
  number: string;
}

/** Where a channel's audio goes when it is not a test phone: an externalMedia RTP leg. */
export interface ChannelAudioSink {
  /** One 20 ms frame of µ-law audio for the far end of this channel. */
  deliver(frame: Buffer): void;
  close(): void;
}

/** One channel of the simulated PBX. */
export interface SimChannel {
  id: string;
  name: string;
  /** `PJSIP`, `UnicastRTP`, `Message`… */
  tech: string;
  /** The endpoint resource (`alice`) for PJSIP channels. */
  resource: string;
  state: SimChannelState;
  protocolId: string;
  caller: CallerId;
  connected: CallerId;
  dialplan: { context: string; exten: string; priority: number; app_name: string; app_data: string };
  creationtime: string;
  language: string;
  variables: Map<string, string>;
  /** Stasis app the channel is in, if any. */
  stasisApp?: string;
  /** Apps that receive this channel's events. */
  subscribers: Set<string>;
  /** Created by originate/create/externalMedia: the creating app keeps its subscription to the end. */
  originated: boolean;
  bridgeId?: string;
  hungUp: boolean;
  /** Where audio sent to this channel goes (the test phone or an RTP leg). */
  audioOut?: ChannelAudioSink;
  /** Set by `TALK_DETECT(set)`. */
  talkDetect?: {
    silenceThresholdMs: number;
    talking: boolean;
    startedAt: number;
    lastTalkAt: number;
    timer?: NodeJS.Timeout;
  };
  /** Extra keys for the externalMedia response (`UNICASTRTP_LOCAL_ADDRESS`, …). */
  channelvars?: Record<string, string>;
  muted: Set<'in' | 'out'>;
  /** For a call placed through a trunk (`PJSIP/+15551234@pstn`): the number dialed. */
  dialedNumber?: string;
  onHold: boolean;
  linkedId: string;
}

/** What a new channel starts with (`Pbx.createChannel`); the rest is filled in. */
export interface ChannelInit {
  tech: string;
  resource: string;
  name?: string;
  id?: string;
  state: SimChannelState;
  caller: CallerId;
  connected?: CallerId;
  dialplan: SimChannel['dialplan'];
  protocolId?: string;
  originated: boolean;
}

/** How a simulated SIP endpoint behaves when it is called. */
export interface EndpointBehaviour {
  /** `answer`: rings then answers; `busy`: 486; `no-answer`: rings until the timeout; `reject`: 603. */
  onCall: 'answer' | 'busy' | 'no-answer' | 'reject';
  /** How long it rings before answering. */
  ringMs: number;
}

/** A simulated PJSIP endpoint (a configured phone). */
export interface SimEndpoint {
  resource: string;
  callerId: CallerId;
  /** Dialplan context of calls from this endpoint. */
  context: string;
  /** Dialplan context of SIP MESSAGEs from this endpoint. */
  messageContext: string;
  /** An endpoint without a contact is "offline": calls to it fail to allocate. */
  online: boolean;
  behaviour: EndpointBehaviour;
}

export interface SimBridge {
  id: string;
  name: string;
  bridgeType: string;
  channels: string[];
  creationtime: string;
  subscribers: Set<string>;
}

/** `2026-11-23T08:55:09.511+0000`: milliseconds, `+0000`, no colon, as Asterisk formats it. */
export function ariTimestamp(date = new Date()): string {
  return date.toISOString().replace('Z', '+0000');
}

/** The Channel object exactly as ARI serialises it (keys in Asterisk's order). */
export function channelJson(c: SimChannel, withVars = false): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: c.id,
    name: c.name,
    state: c.state,
    protocol_id: c.protocolId,
    caller: { ...c.caller },
    connected: { ...c.connected },
    accountcode: '',
    dialplan: { ...c.dialplan },
    creationtime: c.creationtime,
    language: c.language,
  };
  if (withVars && c.channelvars) json.channelvars = { ...c.channelvars };
  return json;
}

export function bridgeJson(b: SimBridge): Record<string, unknown> {
  return {
    id: b.id,
    technology: b.channels.length > 2 ? 'softmix' : 'simple_bridge',
    bridge_type: b.bridgeType,
    bridge_class: 'stasis',
    creator: 'Stasis',
    name: b.name,
    channels: [...b.channels].reverse(),
    creationtime: b.creationtime,
    video_mode: 'talker',
  };
}

/** The AMI channel fields that start every channel event, in Asterisk's order. */
export function amiChannelFields(c: SimChannel): [string, string][] {
  return [
    ['Channel', c.name],
    ['ChannelState', String(AMI_STATE_NUMBER[c.state])],
    ['ChannelStateDesc', c.state],
    ['CallerIDNum', c.caller.number || '<unknown>'],
    ['CallerIDName', c.caller.name || '<unknown>'],
    ['ConnectedLineNum', c.connected.number || '<unknown>'],
    ['ConnectedLineName', c.connected.name || '<unknown>'],
    ['Language', c.language],
    ['AccountCode', ''],
    ['Context', c.dialplan.context],
    ['Exten', c.dialplan.exten],
    ['Priority', String(c.dialplan.priority)],
    ['Uniqueid', c.id],
    ['Linkedid', c.linkedId],
  ];
}

/** `"Name" <number>`, `Name <number>` or a bare number, as Asterisk parses a caller ID. */
export function parseCallerId(value: string | undefined): CallerId | undefined {
  if (!value) return undefined;
  const m = /^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$/.exec(value);
  if (m) return { name: m[1]!.trim(), number: m[2]!.trim() };
  return { name: '', number: value.trim() };
}
