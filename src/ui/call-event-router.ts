import type { AriEvent } from '../asterisk/ari-events.js';

/** Something that consumes the ARI events of one call. */
export interface CallEventSink {
  handleEvent(event: AriEvent): void;
  /** The channel vanished while ARI was disconnected (Asterisk restarted…). */
  handleChannelLost(): void;
}

/**
 * Routes ARI events to the call they concern with one listener for the whole process: by the
 * channel in the event, or by the `channel:`/`bridge:` target of a playback or recording. One
 * map lookup per event, however many calls are up, and no listener per call to leak.
 */
export class CallEventRouter {
  private readonly byChannel = new Map<string, CallEventSink>();
  private readonly byBridge = new Map<string, CallEventSink>();

  /** Sends the events of `channelId` to `sink`; returns the function that stops it. */
  addChannel(channelId: string, sink: CallEventSink): () => void {
    this.byChannel.set(channelId, sink);
    return () => {
      if (this.byChannel.get(channelId) === sink) this.byChannel.delete(channelId);
    };
  }

  /** Sends events targeting `bridgeId` (bridge playbacks and recordings) to `sink`. */
  addBridge(bridgeId: string, sink: CallEventSink): () => void {
    this.byBridge.set(bridgeId, sink);
    return () => {
      if (this.byBridge.get(bridgeId) === sink) this.byBridge.delete(bridgeId);
    };
  }

  /** Number of routed channels and bridges (for leak checks). */
  get size(): { channels: number; bridges: number } {
    return { channels: this.byChannel.size, bridges: this.byBridge.size };
  }

  /** Delivers an event; returns whether a call took it. */
  dispatch(event: AriEvent): boolean {
    const sink = this.sinkOf(event);
    if (!sink) return false;
    sink.handleEvent(event);
    return true;
  }

  /** A channel vanished during an outage. */
  channelLost(channelId: string): void {
    this.byChannel.get(channelId)?.handleChannelLost();
  }

  private sinkOf(event: AriEvent): CallEventSink | undefined {
    if ('channel' in event && event.channel && typeof event.channel === 'object' && 'id' in event.channel) {
      const sink = this.byChannel.get(event.channel.id);
      if (sink) return sink;
    }
    const target =
      'playback' in event && event.playback
        ? event.playback.target_uri
        : 'recording' in event && event.recording
          ? event.recording.target_uri
          : undefined;
    if (!target) return undefined;
    const colon = target.indexOf(':');
    const kind = target.slice(0, colon);
    const id = target.slice(colon + 1);
    return kind === 'channel'
      ? this.byChannel.get(id)
      : kind === 'bridge'
        ? this.byBridge.get(id)
        : undefined;
  }
}
