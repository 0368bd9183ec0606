import type { AriClient } from './ari-client.js';
import type { ChannelDestroyedEvent, StasisEndEvent, StasisStartEvent } from './ari-events.js';

/** What to call when something happens to one channel; every field is optional. */
export interface ChannelWatch {
  /** The channel entered Stasis. */
  start?(event: StasisStartEvent): void;
  /** The channel left Stasis. */
  end?(event: StasisEndEvent): void;
  /** The channel was destroyed. */
  destroyed?(event: ChannelDestroyedEvent): void;
  /** The channel was found gone after an ARI reconnect (`channelLost`). */
  lost?(): void;
}

interface Registry {
  watches: Map<string, Set<ChannelWatch>>;
  off: () => void;
}

const registries = new WeakMap<AriClient, Registry>();

/**
 * Watches one channel's StasisStart, StasisEnd, ChannelDestroyed and channelLost on `ari`; returns
 * the function that stops watching.
 *
 * Why not `ari.on` per channel: every listener sees every event, so with one listener set per call
 * each event costs as many calls as there are calls up (2000 calls: 2000 listener calls per
 * hang-up, and an O(n) `off` each). Here one listener per event type looks the channel up in a
 * map, and those listeners exist only while some channel is watched (so the client's listener
 * counts come back to where they were once every call has ended).
 */
export function watchChannel(ari: AriClient, channelId: string, watch: ChannelWatch): () => void {
  let registry = registries.get(ari);
  if (!registry) {
    registry = install(ari);
    registries.set(ari, registry);
  }
  const { watches } = registry;
  let set = watches.get(channelId);
  if (!set) {
    set = new Set();
    watches.set(channelId, set);
  }
  set.add(watch);
  let active = true;
  return () => {
    if (!active) return;
    active = false;
    const current = registries.get(ari);
    const entries = current?.watches.get(channelId);
    if (!current || !entries) return;
    entries.delete(watch);
    if (entries.size === 0) current.watches.delete(channelId);
    if (current.watches.size === 0) {
      current.off();
      registries.delete(ari);
    }
  };
}

function install(ari: AriClient): Registry {
  const watches = new Map<string, Set<ChannelWatch>>();
  // A snapshot per event: a watch may stop watching (or start another) while being called.
  const each = (id: string, call: (watch: ChannelWatch) => void): void => {
    const set = watches.get(id);
    if (set) for (const watch of [...set]) call(watch);
  };
  const onStart = (event: StasisStartEvent): void => each(event.channel.id, (w) => w.start?.(event));
  const onEnd = (event: StasisEndEvent): void => each(event.channel.id, (w) => w.end?.(event));
  const onDestroyed = (event: ChannelDestroyedEvent): void =>
    each(event.channel.id, (w) => w.destroyed?.(event));
  const onLost = (id: string): void => each(id, (w) => w.lost?.());
  ari.on('StasisStart', onStart);
  ari.on('StasisEnd', onEnd);
  ari.on('ChannelDestroyed', onDestroyed);
  ari.on('channelLost', onLost);
  return {
    watches,
    off: () => {
      ari.off('StasisStart', onStart);
      ari.off('StasisEnd', onEnd);
      ari.off('ChannelDestroyed', onDestroyed);
      ari.off('channelLost', onLost);
    },
  };
}
