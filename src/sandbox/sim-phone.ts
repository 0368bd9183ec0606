import { decodeMulaw, encodeMulaw } from '../media/g711.js';
import type { Pbx } from './pbx.js';
import type { ChannelAudioSink, SimChannel } from './sim-model.js';

/** What the far end of a simulated call has heard so far. */
export interface PhoneHeard {
  /** Media URIs played to the call (channel or bridge playbacks, recording beeps), in order. */
  media: string[];
  /** Audio that reached the phone over the media path (e.g. TTS streamed over externalMedia), 8 kHz PCM. */
  audio: Int16Array;
  /** DTMF the application sent to the phone. */
  digits: string;
  /** In-dialog texts the application sent during the call. */
  texts: string[];
}

const FRAME_BYTES = 160;
const FRAME_MS = 20;

/**
 * The test-facing side of one simulated call: a SIP phone that presses keys, speaks audio, hears
 * prompts and hangs up. Obtained from `Simulator.call()` (inbound) or `Simulator.nextIncomingCall()`
 * (a call the application originated).
 */
export class SimPhone implements ChannelAudioSink {
  private readonly media: string[] = [];
  private readonly audioFrames: Buffer[] = [];
  private digitsHeard = '';
  private readonly texts: string[] = [];
  private endedWith?: { cause: number };
  private readonly endWaiters: ((v: { cause: number }) => void)[] = [];
  private readonly mediaWaiters: { match: (uri: string) => boolean; resolve: (uri: string) => void }[] = [];
  private readonly audioWaiters: { bytes: number; resolve: () => void }[] = [];
  private heardBytes = 0;
  private readonly audioListeners = new Set<(frame: Buffer) => void>();
  private readonly mediaListeners = new Set<(uri: string) => void>();

  /** @internal created by the Simulator. */
  constructor(
    private readonly pbx: Pbx,
    /** The PBX channel of this call. */
    readonly channel: SimChannel,
  ) {
    channel.audioOut = this;
  }

  /** The channel id (`1795425821.8`), as the application sees it. */
  get channelId(): string {
    return this.channel.id;
  }

  /** The channel name (`PJSIP/alice-00000002`). */
  get channelName(): string {
    return this.channel.name;
  }

  /** The number this phone answered as: its endpoint, or the number dialed through a trunk. */
  get number(): string {
    return this.channel.dialedNumber ?? this.channel.resource;
  }

  /** Whether the call has been answered. */
  get answered(): boolean {
    return this.channel.state === 'Up';
  }

  /** Whether the call has ended. */
  get hungUp(): boolean {
    return this.endedWith !== undefined;
  }

  /** Milliseconds of audio that have reached the phone over the media path so far. */
  get heardMs(): number {
    return this.heardBytes / 8;
  }

  /** Presses keys: one RFC 4733 digit per character, `gapMs` apart. */
  async press(digits: string, options: { gapMs?: number; durationMs?: number } = {}): Promise<void> {
    const gap = options.gapMs ?? 60;
    for (let i = 0; i < digits.length; i++) {
      if (this.hungUp) return;
      if (i > 0 && gap > 0) await delay(gap);
      this.pbx.receiveDtmf(this.channel, digits[i]!, options.durationMs ?? 100);
    }
  }

  /**
   * Speaks: sends 8 kHz 16-bit PCM as 20 ms µ-law frames, paced in real time, as a phone's RTP
   * stream would arrive. Resolves when the last frame is sent.
   */
  async speak(pcm: Int16Array): Promise<void> {
    const ulaw = encodeMulaw(pcm);
    const start = performance.now();
    for (let offset = 0, n = 0; offset < ulaw.length && !this.hungUp; offset += FRAME_BYTES, n++) {
      const frame = Buffer.alloc(FRAME_BYTES, 0xff);
      ulaw.copy(frame, 0, offset, Math.min(offset + FRAME_BYTES, ulaw.length));
      this.pbx.audioFromChannel(this.channel, frame);
      const due = start + (n + 1) * FRAME_MS;
      const wait = due - performance.now();
      if (wait > 0) await delay(wait);
    }
  }

  /**
   * Sends one 20 ms frame of µ-law as it is, unpaced: for a live source with a clock of its own
   * (the console's browser softphone streams its microphone). A short frame is padded with silence.
   */
  sendAudio(ulaw: Buffer): void {
    if (this.hungUp) return;
    const frame = Buffer.alloc(FRAME_BYTES, 0xff);
    ulaw.copy(frame, 0, 0, Math.min(FRAME_BYTES, ulaw.length));
    this.pbx.audioFromChannel(this.channel, frame);
  }

  /** Calls `listener` with every µ-law frame that reaches the phone from now on; returns the undo. */
  onAudio(listener: (frame: Buffer) => void): () => void {
    this.audioListeners.add(listener);
    return () => this.audioListeners.delete(listener);
  }

  /** Calls `listener` with every media URI played to the phone from now on; returns the undo. */
  onMedia(listener: (uri: string) => void): () => void {
    this.mediaListeners.add(listener);
    return () => this.mediaListeners.delete(listener);
  }

  /** Resolves true once the call is answered (at once if it is), false if it ends unanswered. */
  waitForAnswer(): Promise<boolean> {
    if (this.answered) return Promise.resolve(true);
    if (this.hungUp) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onState = (channel: SimChannel) => {
        if (channel !== this.channel || channel.state !== 'Up') return;
        this.pbx.off('channel-state', onState);
        resolve(true);
      };
      this.pbx.on('channel-state', onState);
      void this.ended().then(() => {
        this.pbx.off('channel-state', onState);
        resolve(this.answered);
      });
    });
  }

  /** Hangs up (sends BYE). */
  async hangup(): Promise<void> {
    if (this.hungUp) return;
    this.pbx.hangup(this.channel, { initiator: 'far-end', cause: 16 });
  }

  /** Everything heard so far. */
  heard(): PhoneHeard {
    return {
      media: [...this.media],
      audio: decodeMulaw(Buffer.concat(this.audioFrames)),
      digits: this.digitsHeard,
      texts: [...this.texts],
    };
  }

  /** Resolves with the first media URI played to the phone (now or later) that `match` accepts. */
  waitForMedia(match: string | RegExp | ((uri: string) => boolean) = () => true): Promise<string> {
    const test =
      typeof match === 'function'
        ? match
        : (uri: string) => (typeof match === 'string' ? uri === match : match.test(uri));
    const already = this.media.find(test);
    if (already !== undefined) return Promise.resolve(already);
    return new Promise((resolve) => this.mediaWaiters.push({ match: test, resolve }));
  }

  /** Resolves once at least `ms` of audio has reached the phone over the media path. */
  waitForAudio(ms: number): Promise<void> {
    const bytes = ms * 8;
    if (this.heardBytes >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.audioWaiters.push({ bytes, resolve }));
  }

  /** Resolves when the call ends, with the Q.850 cause. */
  ended(): Promise<{ cause: number }> {
    if (this.endedWith) return Promise.resolve(this.endedWith);
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  // ------------------------------------------------------------ called by the Simulator

  /** @internal ChannelAudioSink: audio the PBX sends to this phone. */
  deliver(frame: Buffer): void {
    const copy = Buffer.from(frame);
    this.audioFrames.push(copy);
    this.heardBytes += frame.length;
    for (const l of this.audioListeners) l(copy);
    for (const w of [...this.audioWaiters]) {
      if (this.heardBytes >= w.bytes) {
        this.audioWaiters.splice(this.audioWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** @internal ChannelAudioSink: the channel is gone. */
  close(): void {}

  /** @internal */
  mediaPlayed(uri: string): void {
    this.media.push(uri);
    for (const l of this.mediaListeners) l(uri);
    for (const w of [...this.mediaWaiters]) {
      if (w.match(uri)) {
        this.mediaWaiters.splice(this.mediaWaiters.indexOf(w), 1);
        w.resolve(uri);
      }
    }
  }

  /** @internal */
  digitsSent(digits: string): void {
    this.digitsHeard += digits;
  }

  /** @internal */
  textReceived(text: string): void {
    this.texts.push(text);
  }

  /** @internal */
  markEnded(cause: number): void {
    if (this.endedWith) return;
    this.endedWith = { cause };
    this.audioListeners.clear();
    this.mediaListeners.clear();
    for (const w of this.endWaiters.splice(0)) w(this.endedWith);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
