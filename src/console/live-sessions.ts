/**
 * The live state the web console shows: every call and text conversation of a Server, with a
 * transcript built from their events as they happen, and the last ended ones. Plain data out
 * (snapshots and small updates) so the console server only has to serialise it.
 */
import type { AgentEvent } from '../agent/agent-options.js';
import { HangupError } from '../errors.js';
import type { Activity } from '../ui/call-activity.js';
import type { TextUI } from '../ui/text-ui.js';
import type { VoiceUI } from '../ui/voice-ui.js';

/** Who a transcript line is from. */
export type Speaker = 'app' | 'caller' | 'agent' | 'system';

/** One line of a session's transcript. */
export interface TranscriptLine {
  /** Position in the session's transcript, from 0: an update with a seen `seq` replaces that line. */
  seq: number;
  /** Milliseconds since the epoch. */
  at: number;
  who: Speaker;
  /** `said`, `played`, `keys`, `dtmf`, `heard`, `text`, `recorded`, `agent`, `tool`, `ended`. */
  kind: string;
  text: string;
}

/** A call or a text conversation as the console shows it. */
export interface SessionView {
  /** The channel id of a call; `text:<our number>:<peer>:<n>` for a conversation. */
  id: string;
  kind: 'call' | 'text';
  /** Our number. */
  number: string;
  /** The caller's (or peer's) number and name. */
  peer: string;
  peerName: string;
  /** `ringing`, `up`, `open`, `ended`. */
  state: string;
  /** The verb running now, if any. */
  verb?: string;
  startedAt: number;
  endedAt?: number;
  /** Why it ended (`hangup`, `caller hung up`, `done`, an error's message…). */
  endReason?: string;
  transcript: TranscriptLine[];
}

/** A change the console streams to its pages. */
export type SessionUpdate =
  | { type: 'session'; session: Omit<SessionView, 'transcript'> }
  | { type: 'line'; id: string; line: TranscriptLine }
  | { type: 'ended'; session: Omit<SessionView, 'transcript'> };

/** Options of {@link LiveSessions}. */
export interface LiveSessionsOptions {
  /** Ended sessions kept (newest first). Default 20. */
  keepEnded?: number;
  /** Transcript lines kept per session (the oldest are dropped). Default 500. */
  maxLines?: number;
}

/** Consecutive keys closer than this join one `dtmf` line. */
const KEY_RUN_MS = 3_000;

interface Tracked {
  view: SessionView;
  /** Ends the session (hangs up the call, ends the conversation). */
  end: () => Promise<void>;
}

/** Live and recently ended calls and conversations, with their transcripts. */
export class LiveSessions {
  private readonly live = new Map<string, Tracked>();
  private readonly endedSessions: SessionView[] = [];
  private readonly listeners = new Set<(update: SessionUpdate) => void>();
  private readonly keepEnded: number;
  private readonly maxLines: number;
  private textSerial = 0;
  /** Totals since the console started. */
  readonly totals = { calls: 0, texts: 0, errors: 0 };

  constructor(options: LiveSessionsOptions = {}) {
    this.keepEnded = options.keepEnded ?? 20;
    this.maxLines = options.maxLines ?? 500;
  }

  /** Calls `listener` with every update from now on; returns the undo. */
  subscribe(listener: (update: SessionUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every live session and the ended ones kept, with transcripts. */
  snapshot(): { live: SessionView[]; ended: SessionView[] } {
    return {
      live: [...this.live.values()].map((t) => structuredClone(t.view)),
      ended: this.endedSessions.map((v) => structuredClone(v)),
    };
  }

  /** Ends a live session; false when there is none with that id. */
  async end(id: string): Promise<boolean> {
    const tracked = this.live.get(id);
    if (!tracked) return false;
    await tracked.end();
    return true;
  }

  /** Tracks a call from its start to its end. */
  trackCall(ui: VoiceUI): void {
    const view: SessionView = {
      id: ui.channelId,
      kind: 'call',
      number: ui.localNumber,
      peer: ui.remoteNumber,
      peerName: ui.remoteName,
      state: ui.state,
      startedAt: Date.now(),
      transcript: [],
    };
    this.totals.calls++;
    this.open(view, () => ui.hangup());
    ui.on('activity', (activity) => this.onActivity(view, activity, ui.currentVerb, ui.state));
    ui.on('dtmf', (digit) => this.onKey(view, digit));
    ui.on('text', (body) => this.line(view, 'caller', 'text', body));
    ui.on('agent', (event) => this.onAgent(view, event));
  }

  /** A call's handler finished; `error` is what it threw, if anything. */
  callEnded(ui: VoiceUI, error: unknown): void {
    const tracked = this.live.get(ui.channelId);
    if (!tracked) return;
    const reason = describeEnd(error);
    if (error !== undefined && reason !== 'caller hung up') this.totals.errors++;
    this.close(tracked.view, reason);
  }

  /** Tracks a text conversation from its start to its end. */
  trackConversation(ui: TextUI): void {
    const view: SessionView = {
      id: `text:${ui.localNumber}:${ui.remoteNumber}:${++this.textSerial}`,
      kind: 'text',
      number: ui.localNumber,
      peer: ui.remoteNumber,
      peerName: ui.remoteName,
      state: 'open',
      startedAt: Date.now(),
      transcript: [],
    };
    this.totals.texts++;
    this.open(view, () => ui.hangup());
    if (ui.firstMessage) this.line(view, 'caller', 'text', ui.firstMessage);
    ui.on('message', (body) => this.line(view, 'caller', 'text', body));
    ui.on('activity', (activity) => this.onActivity(view, activity, undefined, 'open'));
    ui.on('agent', (event) => this.onAgent(view, event));
    void ui.ended.then((reason) => this.close(view, reason));
  }

  private open(view: SessionView, end: () => Promise<void>): void {
    this.live.set(view.id, { view, end });
    this.emit({ type: 'session', session: meta(view) });
  }

  private close(view: SessionView, reason: string): void {
    if (!this.live.delete(view.id)) return;
    view.state = 'ended';
    delete view.verb;
    view.endedAt = Date.now();
    view.endReason = reason;
    this.endedSessions.unshift(view);
    this.endedSessions.length = Math.min(this.endedSessions.length, this.keepEnded);
    this.emit({ type: 'ended', session: meta(view) });
  }

  private onActivity(view: SessionView, activity: Activity, verb: string | undefined, state: string): void {
    if (view.verb !== verb || view.state !== state) {
      if (verb === undefined) delete view.verb;
      else view.verb = verb;
      view.state = state;
      this.emit({ type: 'session', session: meta(view) });
    }
    const line = activityLine(activity);
    if (line) this.line(view, line[0], line[1], line[2]);
  }

  private onKey(view: SessionView, digit: string): void {
    const last = view.transcript.at(-1);
    // A run of keys is one line, growing: its update carries the same seq.
    if (last && last.kind === 'dtmf' && Date.now() - last.at < KEY_RUN_MS) {
      last.text += digit;
      last.at = Date.now();
      this.emit({ type: 'line', id: view.id, line: { ...last } });
      return;
    }
    this.line(view, 'caller', 'dtmf', digit);
  }

  private onAgent(view: SessionView, event: AgentEvent): void {
    if (event.type === 'transcript' && event.final && event.text.trim() !== '') {
      this.line(view, event.role === 'user' ? 'caller' : 'agent', 'agent', event.text);
    } else if (event.type === 'toolCall') {
      const outcome = event.error ? `failed: ${event.error}` : short(JSON.stringify(event.result));
      this.line(view, 'system', 'tool', `${event.name}(${short(JSON.stringify(event.args))}) → ${outcome}`);
    } else if (event.type === 'bargeIn') {
      this.line(
        view,
        'system',
        'agent',
        `caller interrupted the agent after ${Math.round(event.heardMs)} ms`,
      );
    } else if (event.type === 'ended') {
      this.line(view, 'system', 'agent', `agent ended: ${event.reason}`);
    }
  }

  private line(view: SessionView, who: Speaker, kind: string, text: string): void {
    const seq = (view.transcript.at(-1)?.seq ?? -1) + 1;
    const line: TranscriptLine = { seq, at: Date.now(), who, kind, text };
    view.transcript.push(line);
    if (view.transcript.length > this.maxLines) view.transcript.shift();
    this.emit({ type: 'line', id: view.id, line: { ...line } });
  }

  private emit(update: SessionUpdate): void {
    for (const l of this.listeners) {
      try {
        l(update);
      } catch {
        // A page's stream that failed is dropped by its own close handler.
      }
    }
  }
}

/** The transcript line of an activity (who, kind, text); none for a verb's start or the answer. */
function activityLine(activity: Activity): [Speaker, string, string] | undefined {
  switch (activity.type) {
    case 'verb':
    case 'answered':
      return undefined;
    case 'said':
      return ['app', 'said', activity.text];
    case 'played':
      return ['app', 'played', activity.media];
    case 'keys':
      return ['caller', 'keys', activity.digits === '' ? '(no keys)' : activity.digits];
    case 'heard':
      return ['caller', 'heard', activity.text === '' ? '(nothing heard)' : activity.text];
    case 'recorded':
      return ['system', 'recorded', `recording ${activity.name}, ${activity.seconds} s`];
    case 'sentText':
      return ['app', 'text', activity.text];
  }
}

function meta(view: SessionView): Omit<SessionView, 'transcript'> {
  const { transcript: _transcript, ...rest } = view;
  return rest;
}

function describeEnd(error: unknown): string {
  if (error === undefined) return 'done';
  if (error instanceof HangupError) return 'caller hung up';
  return error instanceof Error ? `error: ${error.message}` : `error: ${String(error)}`;
}

function short(text: string | undefined, max = 120): string {
  if (text === undefined) return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
