import { randomUUID } from 'node:crypto';
import { channelScope, type EventOutlet, type EventScope } from './event-scope.js';
import { mediaOutcome } from './media-catalog.js';
import { PbxError } from './pbx-error.js';
import type { SimBridge, SimChannel } from './sim-model.js';

/**
 * Playbacks of the simulated PBX: one queue per target (a channel or a bridge plays one playback at
 * a time, the next starts when it finishes), each item lasting as long as media-catalog.ts says,
 * with the PlaybackStarted / PlaybackContinuing / PlaybackFinished events Asterisk 22 sends.
 */

export interface PlaybackState {
  id: string;
  mediaUris: string[];
  index: number;
  targetUri: string;
  language: string;
  state: 'queued' | 'playing' | 'paused' | 'done' | 'failed' | 'continuing';
  timer?: NodeJS.Timeout;
  /** ms left of the current item when paused. */
  remainingMs?: number;
  startedAt: number;
  currentMs: number;
}

/** What playbacks need from the PBX. */
export interface PlaybackHost extends EventOutlet {
  channel(id: string): SimChannel | undefined;
  bridge(id: string): SimBridge | undefined;
  /** Tells whoever listens (test phones) that `mediaUri` started playing on `targetUri`. */
  mediaPlayed(targetUri: string, mediaUri: string): void;
  /** Scales a simulated duration (the PBX's time scale). */
  scaled(ms: number): number;
  /** Durations of the sound files the PBX has, in ms. */
  sounds(): Readonly<Record<string, number>>;
  /** Duration of a stored recording in ms, if there is one by that name. */
  recordingMs(name: string): number | undefined;
}

/** The Playback object of ARI, `state` overridden where the wire shows another (`queued`). */
export function playbackJson(p: PlaybackState, state = p.state): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: p.id,
    media_uri: p.mediaUris[p.index],
    target_uri: p.targetUri,
    language: p.language,
    state,
  };
  const next = p.mediaUris[p.index + 1];
  if (next !== undefined) json.next_media_uri = next;
  return json;
}

/** `channel:123.4` → `['channel', '123.4']`. */
export function splitTarget(uri: string): [string, string] {
  const i = uri.indexOf(':');
  return [uri.slice(0, i), uri.slice(i + 1)];
}

export class Playbacks {
  readonly byId = new Map<string, PlaybackState>();
  /** Playbacks per target URI, the one playing first. */
  private readonly queues = new Map<string, PlaybackState[]>();

  constructor(private readonly host: PlaybackHost) {}

  /** Queues a playback of `mediaUris` (played in order as one playback) on a channel or bridge. */
  play(targetUri: string, mediaUris: string[], language: string, playbackId?: string): PlaybackState {
    if (mediaUris.length === 0 || mediaUris.some((m) => m === '')) {
      throw new PbxError(500, 'Failed to queue media for playback');
    }
    const id = playbackId ?? randomUUID();
    if (this.byId.has(id)) throw new PbxError(409, 'Playback with given ID already exists');
    const playback: PlaybackState = {
      id,
      mediaUris,
      index: 0,
      targetUri,
      language,
      state: 'queued',
      startedAt: 0,
      currentMs: 0,
    };
    this.byId.set(id, playback);
    const queue = this.queues.get(targetUri) ?? [];
    this.queues.set(targetUri, queue);
    queue.push(playback);
    if (queue.length === 1) setImmediate(() => this.startItem(playback));
    return playback;
  }

  get(id: string): PlaybackState {
    const p = this.byId.get(id);
    if (!p) throw new PbxError(404, 'Playback not found');
    return p;
  }

  /** Ends a playback (also `DELETE /playbacks/{id}`, which finishes with state `done`). */
  finish(p: PlaybackState, state: 'done' | 'failed'): void {
    if (p.timer) clearTimeout(p.timer);
    if (!this.byId.delete(p.id)) return;
    const wasQueued = p.state === 'queued';
    p.state = state;
    const queue = this.queues.get(p.targetUri) ?? [];
    const i = queue.indexOf(p);
    if (i >= 0) queue.splice(i, 1);
    if (!wasQueued) this.publish('PlaybackFinished', p);
    if (i === 0 && queue[0]) this.startItem(queue[0]);
    if (queue.length === 0) this.queues.delete(p.targetUri);
  }

  /** `POST /playbacks/{id}/control`. */
  control(p: PlaybackState, operation: string): void {
    switch (operation) {
      case 'pause':
        if (p.state === 'playing' && p.timer) {
          clearTimeout(p.timer);
          p.timer = undefined;
          p.remainingMs = Math.max(0, p.currentMs - (Date.now() - p.startedAt));
        }
        p.state = 'paused';
        return;
      case 'unpause':
        if (p.state === 'paused') {
          p.state = 'playing';
          this.publish('PlaybackStarted', p);
          if (p.remainingMs !== undefined) this.schedule(p, p.remainingMs);
        }
        return;
      case 'restart':
      case 'reverse':
      case 'forward':
        return;
      default:
        throw new PbxError(400, `Invalid operation ${operation}`);
    }
  }

  /**
   * A channel is torn down: its playbacks end, those that had started with PlaybackFinished
   * (`failed`) when `withEvents`; queued ones silently, and none starts in their place.
   */
  stopOnChannel(channelId: string, withEvents: boolean): void {
    const queue = this.queues.get(`channel:${channelId}`) ?? [];
    this.queues.delete(`channel:${channelId}`);
    for (const p of queue) {
      if (p.timer) clearTimeout(p.timer);
      this.byId.delete(p.id);
      if (withEvents && p.state !== 'queued') {
        p.state = 'failed';
        this.publish('PlaybackFinished', p);
      }
    }
  }

  /** A bridge is destroyed: its playbacks finish `done`. */
  finishOnBridge(bridgeId: string): void {
    for (const p of this.queues.get(`bridge:${bridgeId}`) ?? []) this.finish(p, 'done');
  }

  /** Drops every playback without events (restart). */
  clear(): void {
    for (const p of this.byId.values()) if (p.timer) clearTimeout(p.timer);
    this.byId.clear();
    this.queues.clear();
  }

  private scope(p: PlaybackState): EventScope {
    const [kind, id] = splitTarget(p.targetUri);
    if (kind === 'bridge') {
      const bridge = this.host.bridge(id);
      return bridge ? { bridge } : {};
    }
    const channel = this.host.channel(id);
    return channel ? channelScope(channel) : {};
  }

  private publish(type: string, p: PlaybackState, state = p.state): void {
    const scope = this.scope(p);
    const fields = { playback: playbackJson(p, state) };
    // After a hangup the channel is gone from the PBX; its subscribers still hear of the playback.
    if (!scope.channels && !scope.bridge)
      this.host.publishToFormerSubscribers(splitTarget(p.targetUri)[1], type, fields);
    else this.host.publish(type, fields, scope);
  }

  private startItem(p: PlaybackState): void {
    if (!this.byId.has(p.id)) return;
    const uri = p.mediaUris[p.index]!;
    p.state = 'playing';
    p.startedAt = Date.now();
    this.publish('PlaybackStarted', p);
    this.host.mediaPlayed(p.targetUri, uri);
    const outcome = mediaOutcome(uri, this.host.sounds(), (name) => this.host.recordingMs(name));
    if (outcome.kind === 'stuck' || outcome.kind === 'endless') return;
    if (outcome.kind === 'missing') {
      if (p.index < p.mediaUris.length - 1) this.advance(p);
      else this.finish(p, 'failed');
      return;
    }
    this.schedule(p, this.host.scaled(outcome.ms));
  }

  private schedule(p: PlaybackState, ms: number): void {
    p.currentMs = ms;
    p.startedAt = Date.now();
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (p.index < p.mediaUris.length - 1) this.advance(p);
      else this.finish(p, 'done');
    }, ms);
  }

  private advance(p: PlaybackState): void {
    this.publish('PlaybackContinuing', p, 'continuing');
    p.index++;
    this.startItem(p);
  }
}
