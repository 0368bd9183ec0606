import { randomUUID } from 'node:crypto';
import type { DialplanLocation } from './dialplan.js';
import type { EventOutlet } from './event-scope.js';
import { PbxError } from './pbx-error.js';
import {
  amiChannelFields,
  type CallerId,
  type ChannelInit,
  channelJson,
  type SimChannel,
  type SimChannelState,
  type SimEndpoint,
} from './sim-model.js';

/**
 * Outbound calls of the simulated PBX (`POST /channels`, `/channels/create`, AMI Originate, call
 * files): allocating the channel, then ringing the endpoint and playing out its behaviour (answer,
 * busy, reject, no answer) with the Dial events Asterisk 22 sends, into Stasis or the dialplan.
 */

export type DialOutcome = 'answered' | 'busy' | 'no-answer' | 'rejected' | 'failed';

/** Where an answered call goes, and who hears how the dial ended. */
export interface DialRequest {
  app?: string;
  appArgs?: string[];
  location?: DialplanLocation;
  timeoutSec?: number;
  onOutcome?: (outcome: DialOutcome, channel: SimChannel) => void;
}

export interface OriginateRequest extends DialRequest {
  endpoint: string;
  callerId?: CallerId;
  channelId?: string;
  variables?: Record<string, string>;
  /** `/channels/create`: enters Stasis at once, dials later. */
  createOnly?: boolean;
}

/** What originating needs from the PBX (the Pbx itself). */
export interface OriginateHost extends Pick<EventOutlet, 'publish'> {
  readonly endpoints: ReadonlyMap<string, SimEndpoint>;
  readonly channels: ReadonlyMap<string, SimChannel>;
  createChannel(init: ChannelInit): SimChannel;
  setState(channel: SimChannel, state: SimChannelState): void;
  enterStasis(channel: SimChannel, app: string, args: string[]): boolean;
  runDialplan(channel: SimChannel, location: DialplanLocation): void;
  hangup(channel: SimChannel, how: { initiator: 'dialplan'; cause?: number; techCause?: number }): void;
  channelEvent(type: string, channel: SimChannel, extra: Record<string, unknown>): void;
  ami(event: string, privilege: string, fields: [string, string][]): void;
  /** `'ringing'` and `'answered'` (channel, endpoint), which the simulator's phones follow. */
  emit(event: 'ringing' | 'answered', channel: SimChannel, endpoint: SimEndpoint): boolean;
  scaled(ms: number): number;
}

/**
 * `POST /channels` and AMI Originate. Resolves the outcome asynchronously; the returned channel
 * is the not-yet-answered outbound leg.
 */
export function originate(pbx: OriginateHost, req: OriginateRequest): SimChannel {
  const slash = req.endpoint.indexOf('/');
  const tech = req.endpoint.slice(0, slash);
  // `PJSIP/+15551234@pstn` dials a number through the endpoint `pstn` (a trunk).
  const [first, trunk] = req.endpoint.slice(slash + 1).split('@');
  const resource = trunk ?? first ?? '';
  const dialedNumber = trunk ? first : undefined;
  const endpoint = tech.toUpperCase() === 'PJSIP' ? pbx.endpoints.get(resource) : undefined;
  if (slash < 0 || !endpoint || !endpoint.online) throw new PbxError(500, 'Allocation failed', 'error');
  if (req.channelId && pbx.channels.has(req.channelId)) {
    throw new PbxError(409, 'Channel with given unique ID already exists');
  }
  const variables = { ...req.variables };
  const callerName = variables['CALLERID(name)'] ?? req.callerId?.name ?? endpoint.callerId.name;
  const callerNumber = variables['CALLERID(num)'] ?? req.callerId?.number ?? endpoint.callerId.number;
  const channel = pbx.createChannel({
    tech: 'PJSIP',
    resource,
    ...(req.channelId ? { id: req.channelId } : {}),
    state: 'Down',
    caller: { name: callerName, number: callerNumber },
    connected: req.callerId ? { ...req.callerId } : { name: '', number: '' },
    dialplan: {
      context: endpoint.context,
      exten: 's',
      priority: 1,
      app_name: 'AppDial2',
      app_data: '(Outgoing Line)',
    },
    protocolId: randomUUID(),
    originated: true,
  });
  if (dialedNumber) channel.dialedNumber = dialedNumber;
  for (const [k, v] of Object.entries(variables)) {
    if (!k.startsWith('CALLERID(')) channel.variables.set(k, v);
  }
  if (req.app) channel.subscribers.add(req.app);
  if (req.createOnly) {
    setImmediate(() => {
      channel.dialplan = {
        ...channel.dialplan,
        app_name: 'Stasis',
        app_data: [req.app, ...(req.appArgs ?? [])].join(','),
      };
      pbx.publish(
        'ChannelDialplan',
        {
          dialplan_app: 'Stasis',
          dialplan_app_data: channel.dialplan.app_data,
          channel: channelJson(channel),
        },
        { channels: [channel] },
      );
      if (req.app) pbx.enterStasis(channel, req.app, req.appArgs ?? []);
    });
    return channel;
  }
  setImmediate(() => dial(pbx, channel, endpoint, req));
  return channel;
}

/** Rings the endpoint of an outbound channel and applies its behaviour. */
export function dial(pbx: OriginateHost, channel: SimChannel, endpoint: SimEndpoint, req: DialRequest): void {
  if (channel.hungUp) return;
  const dialEvent = (status: string) =>
    pbx.publish(
      'Dial',
      { dialstatus: status, forward: '', dialstring: endpoint.resource, peer: channelJson(channel) },
      { channels: [channel] },
    );
  dialEvent('');
  pbx.ami('DialBegin', 'call,all', [...amiChannelFields(channel), ['DialString', endpoint.resource]]);
  const b = endpoint.behaviour;
  if (b.onCall === 'busy' || b.onCall === 'reject') {
    const cause = b.onCall === 'busy' ? 17 : 21;
    const techCause = b.onCall === 'busy' ? 486 : 603;
    const t = setTimeout(() => {
      pbx.channelEvent('ChannelHangupRequest', channel, { cause, tech_cause: techCause });
      dialEvent(b.onCall === 'busy' ? 'BUSY' : 'CONGESTION');
      pbx.ami('DialEnd', 'call,all', [
        ...amiChannelFields(channel),
        ['DialStatus', b.onCall === 'busy' ? 'BUSY' : 'CONGESTION'],
      ]);
      pbx.hangup(channel, { initiator: 'dialplan', cause, techCause });
      req.onOutcome?.(b.onCall === 'busy' ? 'busy' : 'rejected', channel);
    }, pbx.scaled(20));
    t.unref?.();
    return;
  }
  pbx.setState(channel, 'Ringing');
  dialEvent('RINGING');
  pbx.emit('ringing', channel, endpoint);
  const timeoutMs = (req.timeoutSec && req.timeoutSec > 0 ? req.timeoutSec : 30) * 1000;
  const noAnswer = setTimeout(() => {
    if (channel.hungUp) return;
    pbx.ami('DialEnd', 'call,all', [...amiChannelFields(channel), ['DialStatus', 'NOANSWER']]);
    pbx.hangup(channel, { initiator: 'dialplan', cause: 19, techCause: 480 });
    req.onOutcome?.('no-answer', channel);
  }, timeoutMs);
  if (b.onCall !== 'answer') return;
  setTimeout(() => {
    if (channel.hungUp) return;
    clearTimeout(noAnswer);
    pbx.setState(channel, 'Up');
    dialEvent('ANSWER');
    pbx.ami('DialEnd', 'call,all', [...amiChannelFields(channel), ['DialStatus', 'ANSWER']]);
    pbx.emit('answered', channel, endpoint);
    req.onOutcome?.('answered', channel);
    if (req.app) {
      if (!pbx.enterStasis(channel, req.app, req.appArgs ?? []))
        pbx.hangup(channel, { initiator: 'dialplan' });
    } else if (req.location) {
      pbx.runDialplan(channel, req.location);
    }
  }, pbx.scaled(b.ringMs));
}
