import { type AriRequestFn, seg } from '../ari-http.js';
import type { Playback } from '../ari-types.js';

/** Operations of `POST /playbacks/{id}/control`. `unpause` raises a new PlaybackStarted. */
export type PlaybackOperation = 'restart' | 'pause' | 'unpause' | 'reverse' | 'forward';

/** `/playbacks`. A finished or stopped playback is gone: 404 `Playback not found`. */
export class PlaybacksResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** One playback (state `queued`, `playing`, `paused`…). */
  get(playbackId: string): Promise<Playback> {
    return this.#request('GET', `/playbacks/${seg(playbackId)}`);
  }

  /** Stops the playback; PlaybackFinished follows with state `done`. */
  stop(playbackId: string): Promise<void> {
    return this.#request('DELETE', `/playbacks/${seg(playbackId)}`);
  }

  /** Pauses, unpauses, restarts, rewinds or fast-forwards the playback. */
  control(playbackId: string, operation: PlaybackOperation): Promise<void> {
    return this.#request('POST', `/playbacks/${seg(playbackId)}/control`, { query: { operation } });
  }
}
