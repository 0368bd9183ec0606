import { randomUUID } from 'node:crypto';
import type { EventOutlet } from './event-scope.js';
import { PbxError } from './pbx-error.js';
import {
  amiChannelFields,
  ariTimestamp,
  bridgeJson,
  channelJson,
  type SimBridge,
  type SimChannel,
} from './sim-model.js';

/**
 * Bridges of the simulated PBX: creating and destroying them, channels entering and leaving (one
 * bridge per channel, as in Asterisk), with the ARI and AMI events and the BRIDGEPEER / connected
 * line updates a two-party bridge makes.
 */

/** What bridges need from the PBX. */
export interface BridgeHost extends Pick<EventOutlet, 'publish'> {
  channel(id: string): SimChannel | undefined;
  /** Publishes an AMI event. */
  ami(event: string, privilege: string, fields: [string, string][]): void;
  /** Publishes an ARI event on a channel's topic. */
  channelEvent(type: string, channel: SimChannel, extra: Record<string, unknown>): void;
  /** A destroyed bridge's playbacks end. */
  finishPlaybacksOn(bridgeId: string): void;
}

const BRIDGE_TYPES = [
  'mixing',
  'holding',
  'dtmf_events',
  'proxy_media',
  'video_sfu',
  'video_single',
  'sdp_label',
];

export class Bridges {
  readonly byId = new Map<string, SimBridge>();

  constructor(private readonly host: BridgeHost) {}

  create(opts: { id?: string; type?: string; name?: string; app?: string }): SimBridge {
    const id = opts.id ?? randomUUID();
    if (this.byId.has(id)) throw new PbxError(409, `Bridge with id '${id}' already exists`);
    const types = (opts.type ?? 'mixing').split(',');
    if (!types.every((t) => BRIDGE_TYPES.includes(t))) {
      throw new PbxError(500, "Unable to create bridge. Possible duplicate bridge id '(null)'");
    }
    const bridge: SimBridge = {
      id,
      name: opts.name ?? '',
      bridgeType: types.includes('holding') ? 'holding' : 'mixing',
      channels: [],
      creationtime: ariTimestamp(),
      subscribers: new Set(opts.app ? [opts.app] : []),
    };
    this.byId.set(id, bridge);
    this.host.publish('BridgeCreated', { bridge: bridgeJson(bridge) }, { bridge });
    return bridge;
  }

  get(id: string): SimBridge {
    const b = this.byId.get(id);
    if (!b) throw new PbxError(404, 'Bridge not found');
    return b;
  }

  /** Puts a channel in a bridge, taking it out of the one it is in (even this one: it re-enters). */
  add(bridge: SimBridge, channel: SimChannel): void {
    if (channel.bridgeId === bridge.id) {
      this.remove(bridge, channel, true);
    } else if (channel.bridgeId) {
      const other = this.byId.get(channel.bridgeId);
      if (other) this.remove(other, channel, true);
    }
    bridge.channels.push(channel.id);
    channel.bridgeId = bridge.id;
    this.host.publish(
      'ChannelEnteredBridge',
      { bridge: bridgeJson(bridge), channel: channelJson(channel) },
      { bridge, channels: [channel] },
    );
    this.host.ami('BridgeEnter', 'call,all', [['BridgeUniqueid', bridge.id], ...amiChannelFields(channel)]);
    const members = bridge.channels.map((id) => this.host.channel(id)).filter((c): c is SimChannel => !!c);
    if (members.length === 2) {
      const [a, b] = members as [SimChannel, SimChannel];
      this.host.channelEvent('ChannelVarset', a, { variable: 'BRIDGEPEER', value: b.name });
      this.host.channelEvent('ChannelVarset', b, { variable: 'BRIDGEPEER', value: a.name });
      if (!b.connected.number && a.caller.number) {
        b.connected = { ...a.caller };
        this.host.channelEvent('ChannelConnectedLine', b, {});
      }
    }
  }

  remove(bridge: SimBridge, channel: SimChannel, withEvents: boolean): void {
    const i = bridge.channels.indexOf(channel.id);
    if (i < 0) throw new PbxError(422, 'Channel not in this bridge');
    bridge.channels.splice(i, 1);
    channel.bridgeId = undefined;
    if (withEvents) {
      this.host.publish(
        'ChannelLeftBridge',
        { bridge: bridgeJson(bridge), channel: channelJson(channel) },
        { bridge, channels: [channel] },
      );
      this.host.ami('BridgeLeave', 'call,all', [['BridgeUniqueid', bridge.id], ...amiChannelFields(channel)]);
    }
  }

  /** Empties a bridge (its channels leave, its playbacks end) and destroys it. */
  destroy(bridge: SimBridge): void {
    for (const id of [...bridge.channels]) {
      const c = this.host.channel(id);
      if (c) this.remove(bridge, c, true);
    }
    this.host.finishPlaybacksOn(bridge.id);
    this.byId.delete(bridge.id);
    this.host.publish('BridgeDestroyed', { bridge: bridgeJson(bridge) }, { bridge });
  }
}
