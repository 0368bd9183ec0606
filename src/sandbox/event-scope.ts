import type { SimBridge, SimChannel } from './sim-model.js';

/**
 * Which apps get an event. Asterisk 22 sends an event once per subscription of the app that covers
 * it: a channel event reaches an app through the channel (Stasis, or an explicit subscription) and
 * again through the channel's endpoint when the app subscribed to `endpoint:PJSIP[/alice]`, so such
 * an app gets the same frame twice. `subscribeAll` gets everything exactly once.
 */
export interface EventScope {
  channels?: SimChannel[];
  bridge?: SimBridge;
  /** `PJSIP/alice`: apps subscribed to it (or to `PJSIP`). */
  endpoint?: string;
  /** Not for the channel's subscribers (it is not in an app yet): subscribeAll, and `endpoint`. */
  allOnly?: boolean;
}

/** The scope of an event published on a channel's topic: its subscribers, and its endpoint's. */
export function channelScope(channel: SimChannel, allOnly = false): EventScope {
  const scope: EventScope = { channels: [channel], allOnly };
  if (channel.tech === 'PJSIP' && channel.resource) scope.endpoint = `PJSIP/${channel.resource}`;
  return scope;
}

/** How the parts of the PBX (playbacks, recordings, bridges…) send ARI events to apps. */
export interface EventOutlet {
  /** Sends an ARI event to every app the scope selects. */
  publish(type: string, fields: Record<string, unknown>, scope: EventScope): void;
  /**
   * Sends an ARI event to the apps that were subscribed to channel `channelId` when it was torn
   * down: a playback or recording on it ends after the channel is gone, and they still hear of it.
   */
  publishToFormerSubscribers(channelId: string, type: string, fields: Record<string, unknown>): void;
}
