import diagnosticsChannel from 'node:diagnostics_channel';

/** One latency sample of the agent's audio path, in ms. */
export interface AgentAudioLatency {
  /**
   * `in`: a caller frame's RTP arrival → its WebSocket send to the model. `out`: the first audio
   * delta of an assistant item received → its first RTP packet sent to the caller.
   */
  direction: 'in' | 'out';
  ms: number;
}

/**
 * Published on for every sample while someone subscribes (bench/agent-latency.ts does); costs a
 * property read otherwise. `diagnostics_channel.subscribe('asteramisk:agent:audio-latency', fn)`.
 */
export const audioLatencyChannel = diagnosticsChannel.channel('asteramisk:agent:audio-latency');

/** Publishes one sample if anyone listens. */
export function publishAudioLatency(direction: AgentAudioLatency['direction'], ms: number): void {
  if (audioLatencyChannel.hasSubscribers)
    audioLatencyChannel.publish({ direction, ms } satisfies AgentAudioLatency);
}
