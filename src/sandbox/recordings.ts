import { channelScope, type EventOutlet } from './event-scope.js';
import { isTalkingFrame } from './frame-energy.js';
import { DEFAULT_SOUNDS } from './media-catalog.js';
import { PbxError } from './pbx-error.js';
import type { SimChannel } from './sim-model.js';

/**
 * Recordings of the simulated PBX: live recordings of a channel's incoming audio, ended by
 * maxDurationSeconds, maxSilenceSeconds, a terminateOn digit, stop/cancel or the hangup, and the
 * stored recordings they leave (µ-law audio that `recording:` playbacks and the file route use).
 */

export interface LiveRecording {
  name: string;
  format: string;
  targetUri: string;
  channelId: string;
  state: 'queued' | 'recording' | 'paused' | 'done' | 'failed';
  startedAt: number;
  frames: Buffer[];
  maxSilenceSeconds?: number;
  terminateOn: string;
  talkingMs: number;
  silenceMs: number;
  lastTalkAt: number;
  muted: boolean;
  timers: NodeJS.Timeout[];
}

export interface StoredRecording {
  name: string;
  format: string;
  /** 8 kHz µ-law samples of what was recorded. */
  audio: Buffer;
}

/** Options of `POST /channels/{id}/record`. */
export interface RecordOptions {
  name: string;
  format: string;
  maxDurationSeconds?: number;
  maxSilenceSeconds?: number;
  beep?: boolean;
  terminateOn?: string;
  ifExists?: string;
}

/** What recordings need from the PBX. */
export interface RecordingHost extends EventOutlet {
  channel(id: string): SimChannel | undefined;
  /** Tells whoever listens (test phones) that `mediaUri` (the beep) played on `targetUri`. */
  mediaPlayed(targetUri: string, mediaUri: string): void;
  /** Scales a simulated duration (the PBX's time scale). */
  scaled(ms: number): number;
}

const FORMATS = ['wav', 'gsm', 'ulaw', 'alaw', 'sln', 'wav49'];

/** ms of µ-law audio in a buffer. */
export function ulawMs(audio: Buffer): number {
  return audio.length / 8;
}

/** The LiveRecording object of ARI; `final` adds the durations RecordingFinished carries. */
export function recordingJson(rec: LiveRecording, final = false): Record<string, unknown> {
  const json: Record<string, unknown> = {
    name: rec.name,
    format: rec.format,
    state: rec.state,
    target_uri: rec.targetUri,
  };
  if (final) {
    json.duration = Math.floor((Date.now() - rec.startedAt) / 1000);
    if (rec.maxSilenceSeconds !== undefined) {
      json.talking_duration = Math.floor(rec.talkingMs / 1000);
      json.silence_duration = Math.floor(rec.silenceMs / 1000);
    }
  }
  return json;
}

export class Recordings {
  readonly live = new Map<string, LiveRecording>();
  readonly stored = new Map<string, StoredRecording>();

  constructor(private readonly host: RecordingHost) {}

  /** Starts recording what the far end of `channel` says. */
  record(channel: SimChannel, opts: RecordOptions): LiveRecording {
    if (!FORMATS.includes(opts.format)) {
      throw new PbxError(422, 'specified format is unknown on this system');
    }
    const terminateOn = opts.terminateOn ?? 'none';
    if (!/^(none|any|[0-9*#]+)$/.test(terminateOn)) throw new PbxError(400, 'terminateOn invalid');
    const ifExists = opts.ifExists ?? 'fail';
    if ((this.stored.has(opts.name) || this.live.has(opts.name)) && ifExists === 'fail') {
      throw new PbxError(409, `Recording '${opts.name}' already exists and can not be overwritten`);
    }
    const rec: LiveRecording = {
      name: opts.name,
      format: opts.format,
      targetUri: `channel:${channel.id}`,
      channelId: channel.id,
      state: channel.bridgeId ? 'failed' : 'recording',
      startedAt: Date.now(),
      frames: [],
      terminateOn,
      talkingMs: 0,
      silenceMs: 0,
      lastTalkAt: Date.now(),
      muted: false,
      timers: [],
    };
    if (opts.maxSilenceSeconds !== undefined && opts.maxSilenceSeconds > 0)
      rec.maxSilenceSeconds = opts.maxSilenceSeconds;
    if (rec.state === 'failed') {
      // Asterisk 22 accepts the request (201, "queued") and then fails it: nothing is recorded or
      // stored, no RecordingStarted.
      const recording = { ...recordingJson(rec), cause: 'Cannot record channel while in bridge' };
      setImmediate(() => this.host.publish('RecordingFailed', { recording }, channelScope(channel)));
      return rec;
    }
    this.live.set(rec.name, rec);
    if (opts.beep) this.host.mediaPlayed(`channel:${channel.id}`, 'sound:beep');
    setImmediate(() =>
      this.host.publish('RecordingStarted', { recording: recordingJson(rec) }, channelScope(channel)),
    );
    const beepMs = opts.beep ? this.host.scaled(DEFAULT_SOUNDS.beep ?? 422) : 0;
    if (opts.maxDurationSeconds && opts.maxDurationSeconds > 0) {
      rec.timers.push(
        setTimeout(() => this.finish(rec, true, false), beepMs + opts.maxDurationSeconds * 1000),
      );
    }
    if (rec.maxSilenceSeconds) {
      const limit = rec.maxSilenceSeconds * 1000;
      const check = setInterval(() => {
        if (rec.state === 'recording' && Date.now() - rec.lastTalkAt >= limit) this.finish(rec, true, false);
      }, 50);
      rec.timers.push(check);
    }
    return rec;
  }

  /** Ends a live recording: keeps it as a stored recording unless `discard` (cancel). */
  finish(rec: LiveRecording, withEvent: boolean, discard: boolean): void {
    if (!this.live.delete(rec.name)) return;
    for (const t of rec.timers) clearTimeout(t);
    rec.state = 'done';
    if (!discard || withEvent) {
      // A hangup still keeps what was recorded, as Asterisk does.
      if (!discard || this.host.channel(rec.channelId)?.hungUp !== false) {
        this.stored.set(rec.name, {
          name: rec.name,
          format: rec.format,
          audio: Buffer.concat(rec.frames),
        });
      }
    }
    if (withEvent) {
      const channel = this.host.channel(rec.channelId);
      const fields = { recording: recordingJson(rec, true) };
      if (channel) this.host.publish('RecordingFinished', fields, channelScope(channel));
      else this.host.publishToFormerSubscribers(rec.channelId, 'RecordingFinished', fields);
    }
  }

  /** `DELETE /recordings/live/{name}`: stops and discards. */
  cancel(rec: LiveRecording): void {
    this.finish(rec, true, true);
    this.stored.delete(rec.name);
  }

  getLive(name: string): LiveRecording {
    const rec = this.live.get(name);
    if (!rec) throw new PbxError(404, 'Recording not found');
    return rec;
  }

  getStored(name: string): StoredRecording {
    const rec = this.stored.get(name);
    if (!rec) throw new PbxError(404, 'Recording not found');
    return rec;
  }

  /** How long a stored recording plays, in ms (undefined: there is none by that name). */
  storedMs(name: string): number | undefined {
    const rec = this.stored.get(name);
    return rec ? ulawMs(rec.audio) : undefined;
  }

  /** A frame of audio from the far end of a channel: recorded, and counted as talk or silence. */
  hear(channelId: string, frame: Buffer): void {
    for (const rec of this.live.values()) {
      if (rec.channelId !== channelId || rec.state !== 'recording') continue;
      rec.frames.push(rec.muted ? Buffer.alloc(frame.length, 0xff) : Buffer.from(frame));
      if (isTalkingFrame(frame)) {
        rec.talkingMs += ulawMs(frame);
        rec.lastTalkAt = Date.now();
      } else rec.silenceMs += ulawMs(frame);
    }
  }

  /** A digit from the far end of a channel: ends its recordings that terminate on it. */
  dtmf(channelId: string, digit: string): void {
    for (const rec of this.live.values()) {
      if (rec.channelId !== channelId || rec.state !== 'recording') continue;
      if (rec.terminateOn === 'any' || rec.terminateOn.includes(digit)) this.finish(rec, true, false);
    }
  }

  /**
   * A channel is torn down: its recordings end. On a hangup (`withEvents`) what was recorded is kept
   * and RecordingFinished sent; on a restart they are dropped silently.
   */
  stopOnChannel(channelId: string, withEvents: boolean): void {
    for (const rec of this.live.values()) {
      if (rec.channelId === channelId) this.finish(rec, withEvents, true);
    }
  }

  /** Drops the live recordings without events (restart); stored recordings stay, as on disk. */
  clearLive(): void {
    for (const r of this.live.values()) for (const t of r.timers) clearTimeout(t);
    this.live.clear();
  }
}
