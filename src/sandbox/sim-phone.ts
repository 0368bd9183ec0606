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
/** Size of the chunks a phone keeps its heard audio in: 2 s of µ-law. */
const AUDIO_CHUNK_BYTES = 16_000;
const FRAME_MS = 20;

/**
 * The test-facing side of one simulated call: a SIP phone that presses keys, speaks audio, hears
 * prompts and hangs up. Obtained from `Simulator.call()` (inbound) or `Simulator.nextIncomingCall()`
 * (a call the application originated).
 */
export class SimPhone implements ChannelAudioSink {
  private readonly media: string[] = [];
  /**
   * The audio heard, in chunks of {@link AUDIO_CHUNK_BYTES} filled in order. Not one Buffer per
   * frame: 2000 phones hearing 15 s each would keep 1.5 million small objects alive, and marking
   * them stalled the simulator's event loop for hundreds of milliseconds (bench/ivr-load.ts).
   */
  private readonly audioChunks: Uint8Array[] = [];
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
      audio: decodeMulaw(this.heardUlaw()),
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
    this.keepAudio(frame);
    if (this.audioListeners.size > 0) {
      const copy = Buffer.from(frame);
      for (const l of this.audioListeners) l(copy);
    }
    if (this.audioWaiters.length === 0) return;
    for (const w of [...this.audioWaiters]) {
      if (this.heardBytes >= w.bytes) {
        this.audioWaiters.splice(this.audioWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Appends a frame to the heard audio (see {@link audioChunks}). */
  private keepAudio(frame: Uint8Array): void {
    let from = 0;
    while (from < frame.length) {
      const used = this.heardBytes % AUDIO_CHUNK_BYTES;
      if (used === 0 && this.audioChunks.length * AUDIO_CHUNK_BYTES === this.heardBytes)
        this.audioChunks.push(new Uint8Array(AUDIO_CHUNK_BYTES));
      const chunk = this.audioChunks[this.audioChunks.length - 1]!;
      const n = Math.min(frame.length - from, AUDIO_CHUNK_BYTES - used);
      chunk.set(frame.subarray(from, from + n), used);
      from += n;
      this.heardBytes += n;
    }
  }

  /** The heard audio as one µ-law array. */
  private heardUlaw(): Uint8Array {
    const out = new Uint8Array(this.heardBytes);
    for (let i = 0; i < this.audioChunks.length; i++) {
      const start = i * AUDIO_CHUNK_BYTES;
      out.set(this.audioChunks[i]!.subarray(0, Math.min(AUDIO_CHUNK_BYTES, this.heardBytes - start)), start);
    }
    return out;
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
