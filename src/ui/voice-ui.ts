import { readFile } from 'node:fs/promises';
import type { AgentEvent, AgentOptions, AgentResult } from '../agent/agent-options.js';
import { resolveAgentSettings } from '../agent/agent-settings.js';
import { runVoiceAgent } from '../agent/voice-agent.js';
import type { AriClient } from '../asterisk/ari-client.js';
import type { AriEvent, PlaybackFinishedEvent, RecordingFinishedEvent } from '../asterisk/ari-events.js';
import type { Channel } from '../asterisk/ari-types.js';
import type { Config } from '../config.js';
import { AriHttpError, AriNotFoundError, HangupError, InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isPbxGone } from '../media/call-media.js';
import type { RtpSessionStats } from '../media/rtp-session.js';
import type { SttEngine } from '../stt/stt-engine.js';
import type { Activity } from './call-activity.js';
import type { CallEventSink } from './call-event-router.js';
import { CallScope } from './call-scope.js';
import type { ChoiceOptions, Conversation, MenuAction } from './conversation.js';
import { DigitBuffer } from './digit-buffer.js';
import { DTMF_BURST, DTMF_RATE_PER_SECOND, MAX_QUEUED_TEXTS, TokenBucket } from './input-limits.js';
import { InputQueue } from './input-queue.js';
import { KeyedWaiters } from './keyed-waiters.js';
import { type GatherOptions, gather } from './verbs/gather.js';
import { keysOrSpeech } from './verbs/keys-or-speech.js';
import { askYesNo, choose, menu, select } from './verbs/menu.js';
import { playOutput, stopOutput, synthesize, type VoiceOutput } from './verbs/output.js';
import { type PromptOptions, prompt, transcripts } from './verbs/prompt.js';
import { type Recording, type RecordOptions, record } from './verbs/record.js';
import type { CallAudio, Speaker, VoiceCallContext } from './voice-call-context.js';

/** Options of {@link VoiceUI.say}. */
export interface SayOptions {
  /** TTS voice; default the config's SYSTEM_VOICE. */
  voice?: string;
  /** Language, e.g. `en-US`. */
  language?: string;
  /** A key press stops it (and is kept as input). Default false. */
  interruptible?: boolean;
}

/**
 * What {@link VoiceUI.play} accepts: Asterisk media URIs (`sound:hello-world`), a path to a WAV file
 * of this process (`./prompts/welcome.wav`, no scheme), 8 kHz PCM, or a WAV file's bytes.
 */
export type PlayableMedia = string | Int16Array | Buffer;

/** A local WAV file rather than a media URI: no `scheme:` prefix, ends in .wav. */
const WAV_PATH = /^(?![a-z][a-z0-9+.-]*:)[^\r\n]*\.wav$/i;

/** Where {@link VoiceUI.transfer} sends the call. */
export type TransferDestination =
  | { context?: string; extension: string; priority?: number }
  | { endpoint: string };

/** State of a call as a VoiceUI sees it. */
export type VoiceUIState = 'ringing' | 'up' | 'ended';

/** Events of a VoiceUI. */
export interface VoiceUIEvents {
  dtmf: (digit: string) => void;
  /** A text the caller sent to this call's number during the call (see README: in-call text). */
  text: (body: string) => void;
  ended: (reason: string) => void;
  /** What a realtime agent on the call does: transcripts, tool calls, barge-ins, latency, errors. */
  agent: (event: AgentEvent) => void;
  /** A line of the call's live transcript: verbs started, what was said, played, gathered, heard. */
  activity: (activity: Activity) => void;
}

/** Options of {@link VoiceUI.connectOpenAIAgent}: transfer targets are call destinations. */
export type VoiceAgentOptions = AgentOptions<VoiceUI, TransferDestination>;

/** @internal What a VoiceUI is built from (by the Server or the Communicator). */
export interface VoiceUIDeps {
  ari: AriClient;
  channel: Channel;
  config: Config;
  logger: Logger;
  speaker: Speaker | undefined;
  stt: SttEngine | undefined;
  /** Opens the per-call media path (externalMedia leg + bridge). */
  openAudio: (channelId: string, onBridge: (bridgeId: string) => void) => Promise<CallAudio>;
  /** Decodes a WAV buffer to 8 kHz PCM. */
  decodeWav: (wav: Buffer) => Int16Array;
  /** Sends text into the call (an in-dialog SIP MESSAGE). */
  sendText: (text: string) => Promise<void>;
  /** Routes the ARI events of a bridge (its playbacks and recordings) to this call; returns the undo. */
  routeBridge: (bridgeId: string, ui: VoiceUI) => () => void;
  /** Starts the delivery of texts (the first in-call text listener needs it). */
  enableTextIntake: () => Promise<void>;
  /** For an outbound call: our number and the called party, which the channel does not carry. */
  parties?: { localNumber: string; remoteNumber: string; remoteName?: string };
  /** Metrics: told each verb's duration and the RTP counters when the media closes. */
  observer?: CallObserver;
}

/** How a verb ended, for metrics: it returned, the caller hung up, or it failed. */
export type VerbOutcome = 'ok' | 'hangup' | 'error';

/**
 * @internal Observes calls for metrics (the Server's Prometheus endpoint). Called once per verb
 * and once per call's media path, never per frame.
 */
export interface CallObserver {
  /** A verb (`say`, `play`, `gather`, `prompt`, `record`, `menu`…) finished after `seconds`. */
  verb(verb: string, seconds: number, outcome: VerbOutcome): void;
  /** The call's media path closed; `stats` are its RTP counters. */
  mediaClosed(stats: RtpSessionStats): void;
}

/**
 * One phone call, driven by awaiting its methods. Created by the Server for each inbound call
 * (and by the Communicator for outbound ones); the handler receives it.
 *
 * Every awaited method rejects with {@link HangupError} as soon as the caller hangs up, and the
 * call's resources (media leg, bridge, timers, listeners) are released when it ends.
 *
 * ```ts
 * server.registerExtension('1000', { voice: async (ui) => {
 *   await ui.answer();
 *   const pin = await ui.gather('Enter your PIN, then press pound.', { numDigits: 4 });
 *   await ui.say(`You entered ${pin.split('').join(' ')}`);
 * }});
 * ```
 */
export class VoiceUI implements CallEventSink {
  /** The caller's number (CALLERID(num)). */
  readonly remoteNumber: string;
  /** The caller's name (CALLERID(name)). */
  readonly remoteName: string;
  /** The number that was dialed. */
  readonly localNumber: string;
  /** The Asterisk channel id. */
  readonly channelId: string;
  /** The Asterisk channel name (`PJSIP/alice-00000002`). */
  readonly channelName: string;

  private readonly deps: VoiceUIDeps;
  private readonly scope = new CallScope();
  private readonly digits = new DigitBuffer();
  private readonly ctx: VoiceCallContext;
  private readonly listeners: { [K in keyof VoiceUIEvents]: Set<VoiceUIEvents[K]> } = {
    dtmf: new Set(),
    text: new Set(),
    ended: new Set(),
    agent: new Set(),
    activity: new Set(),
  };
  /** Verbs running now, innermost last (a menu's prompt is a `say` inside the `menu`). */
  private readonly verbs: string[] = [];
  /** TALK_DETECT listeners (the agent's talk-detect activation). */
  private readonly talkListeners = new Set<(talking: boolean) => void>();
  private readonly texts = new InputQueue<string>(MAX_QUEUED_TEXTS);
  /** DTMF flood control (see input-limits.ts): a bucket per call, counters, one warning per call. */
  private readonly dtmfBucket = new TokenBucket(DTMF_BURST, DTMF_RATE_PER_SECOND);
  private readonly dtmfCounts = { received: 0, dropped: 0, overflowed: 0 };
  private dtmfFloodWarned = false;
  private audioPath?: Promise<CallAudio>;
  private openedAudio?: CallAudio;
  private isAnswered: boolean;
  private readonly speaking = new Set<Promise<unknown>>();
  private readonly bridgeRoutes = new Map<string, () => void>();

  /** @internal */
  constructor(deps: VoiceUIDeps) {
    this.deps = deps;
    const c = deps.channel;
    this.channelId = c.id;
    this.channelName = c.name;
    this.remoteNumber = deps.parties?.remoteNumber ?? c.caller.number;
    this.remoteName = deps.parties?.remoteName ?? c.caller.name;
    this.localNumber = deps.parties?.localNumber ?? c.dialplan.exten;
    this.isAnswered = c.state === 'Up';
    let resolveEnded!: (reason: string) => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.resolveEnded = resolveEnded;
    this.ctx = {
      ari: deps.ari,
      channelId: c.id,
      config: deps.config,
      scope: this.scope,
      digits: this.digits,
      logger: deps.logger,
      playbacks: new KeyedWaiters<PlaybackFinishedEvent>(),
      recordings: new KeyedWaiters<RecordingFinishedEvent>(),
      speaker: deps.speaker,
      stt: deps.stt,
      menuDepth: 0,
      audio: () => this.audio(),
      openAudio: () => this.openedAudio,
      ensureAnswered: () => this.answer(),
      request: (request) => this.call(request),
      activePlaybacks: new Set(),
      note: (activity) => this.note(activity),
    };
    this.scope.defer(() => {
      const hangup = new HangupError();
      this.ctx.playbacks.rejectAll(hangup);
      this.ctx.recordings.rejectAll(hangup);
      this.digits.dispose();
      this.texts.dispose();
    });
  }

  /** Whether a text-to-speech engine is configured: `say()` can speak (it throws ConfigError otherwise). */
  get canSpeak(): boolean {
    return this.deps.speaker !== undefined;
  }

  /** The verb running now (the innermost: `say` inside a `menu`), or undefined between verbs. */
  get currentVerb(): string | undefined {
    return this.verbs.at(-1);
  }

  /** `ringing` until answered, `up`, then `ended`. */
  get state(): VoiceUIState {
    return this.scope.ended ? 'ended' : this.isAnswered ? 'up' : 'ringing';
  }

  /**
   * DTMF counters of this call: keys `received` from Asterisk, keys `dropped` for coming faster
   * than {@link DTMF_RATE_PER_SECOND} (after a burst of {@link DTMF_BURST}; a caller flooding keys),
   * unread type-ahead keys pushed out of the buffer (`overflowed`, beyond `MAX_BUFFERED_DIGITS` of
   * input-limits.ts), and keys `buffered` now for the next gather.
   */
  get dtmfStats(): { received: number; dropped: number; overflowed: number; buffered: number } {
    return { ...this.dtmfCounts, buffered: this.digits.size };
  }

  /** Whether the call has been answered. */
  get answered(): boolean {
    return this.isAnswered;
  }

  /** Whether the call is still up (not hung up, not transferred away). */
  get active(): boolean {
    return !this.scope.ended;
  }

  /** Aborted when the call ends: pass it to your own long operations. */
  get signal(): AbortSignal {
    return this.scope.signal;
  }

  // ------------------------------------------------------------------ call control

  /** Answers the call (once; later calls do nothing). */
  async answer(): Promise<void> {
    this.scope.assertActive();
    if (this.isAnswered) return;
    await this.call(this.deps.ari.channels.answer(this.channelId));
    this.markAnswered();
  }

  /** Hangs up. Idempotent; never throws for a call that is already gone. */
  async hangup(): Promise<void> {
    if (this.scope.ended) return;
    try {
      await this.deps.ari.channels.hangup(this.channelId);
    } catch (error) {
      // Gone already, or going with a restarting PBX: nothing to report.
      if (!(error instanceof AriNotFoundError) && !isPbxGone(error, this.deps.ari))
        this.deps.logger.warn({ err: String(error) }, 'hangup failed');
    }
    await this.end('hangup');
  }

  /** Indicates ringing to the caller before answering. */
  ring(): Promise<void> {
    return this.call(this.deps.ari.channels.ring(this.channelId));
  }

  /** Sends DTMF digits to the caller (0-9, *, #, A-D, and `,` for a pause). */
  sendDtmf(digits: string): Promise<void> {
    if (!/^[0-9*#A-Da-d,]+$/.test(digits))
      throw new InvalidInputError(`Not DTMF digits: ${JSON.stringify(digits)}`);
    return this.call(this.deps.ari.channels.sendDtmf(this.channelId, digits));
  }

  /** Puts the caller on hold. */
  hold(): Promise<void> {
    return this.call(this.deps.ari.channels.hold(this.channelId));
  }

  unhold(): Promise<void> {
    return this.call(this.deps.ari.channels.unhold(this.channelId));
  }

  /** Mutes the caller (`in`: what they say, `out`: what they hear, `both`). */
  mute(direction: 'in' | 'out' | 'both' = 'in'): Promise<void> {
    return this.call(this.deps.ari.channels.mute(this.channelId, direction));
  }

  unmute(direction: 'in' | 'out' | 'both' = 'in'): Promise<void> {
    return this.call(this.deps.ari.channels.unmute(this.channelId, direction));
  }

  /** Reads a channel variable or dialplan function (`CALLERID(num)`, `PJSIP_HEADER(read,X-Id)`). */
  getVariable(name: string): Promise<string> {
    return this.call(this.deps.ari.channels.getVariable(this.channelId, name));
  }

  setVariable(name: string, value: string): Promise<void> {
    return this.call(this.deps.ari.channels.setVariable(this.channelId, name, value));
  }

  /**
   * Hands the call to the dialplan (`{ context, extension, priority }`) or to another endpoint
   * (`{ endpoint: 'PJSIP/bob' }`). The call leaves this handler: later methods throw HangupError,
   * and returning from the handler does not hang it up.
   */
  async transfer(destination: TransferDestination): Promise<void> {
    this.scope.assertActive();
    await this.releaseAudio();
    // The StasisEnd of a transfer may arrive before the REST answer: it must not read as a hangup.
    this.leaving = 'transferred';
    try {
      if ('endpoint' in destination) {
        await this.call(this.deps.ari.channels.redirect(this.channelId, destination.endpoint));
      } else {
        await this.call(
          this.deps.ari.channels.continueInDialplan(this.channelId, {
            ...(destination.context ? { context: destination.context } : {}),
            extension: destination.extension,
            priority: destination.priority ?? 1,
          }),
        );
      }
    } catch (error) {
      // The StasisEnd of a successful transfer may end the call before the REST answer arrives.
      if (error instanceof HangupError && this.scope.reason === 'transferred') return;
      this.leaving = undefined;
      throw error;
    }
    await this.end('transferred');
  }

  // ------------------------------------------------------------------ output

  /** Speaks `text` and resolves when the caller has heard it (or, if interruptible, pressed a key). */
  async say(text: string, options: SayOptions = {}): Promise<void> {
    await this.timed('say', () =>
      this.track(
        (async () => {
          const output = await synthesize(this.ctx, text, options);
          await playOutput(this.ctx, output, { interruptible: options.interruptible ?? false });
        })(),
      ),
    );
  }

  /**
   * Plays media: Asterisk URIs (`sound:hello-world`, `digits:123`, `recording:msg`, `tone:ring`…)
   * through ARI, or audio (a local WAV file path, a WAV buffer, or 8 kHz PCM) through the call's
   * media path, so the WAV need not be on the Asterisk host.
   */
  async play(
    media: PlayableMedia | readonly PlayableMedia[],
    options: { interruptible?: boolean } = {},
  ): Promise<void> {
    const items = Array.isArray(media) ? (media as readonly PlayableMedia[]) : [media as PlayableMedia];
    await this.timed('play', () =>
      this.track(
        (async () => {
          for (const item of items)
            this.note({ type: 'played', media: typeof item === 'string' ? item : 'audio' });
          for (const output of await this.scope.race(this.outputs(items))) {
            const result = await playOutput(this.ctx, output, {
              interruptible: options.interruptible ?? false,
            });
            if (result === 'interrupted') return;
          }
        })(),
      ),
    );
  }

  /** Waits `seconds` (rejects with HangupError if the caller hangs up meanwhile). */
  sleep(seconds: number): Promise<void> {
    if (!(Number.isFinite(seconds) && seconds >= 0 && seconds <= 3600)) {
      throw new InvalidInputError(`sleep takes 0 to 3600 seconds, not ${seconds}`);
    }
    return this.scope.sleep(seconds * 1000);
  }

  /** Resolves when everything started with say/play has finished. */
  async doneSpeaking(): Promise<void> {
    while (this.speaking.size > 0) await Promise.allSettled([...this.speaking]);
    this.scope.assertActive();
  }

  /** Stops whatever is being said or played, at the next 20 ms frame. */
  stopSpeaking(): void {
    stopOutput(this.ctx);
  }

  // ------------------------------------------------------------------ input

  /**
   * Says `prompt` (a key stops it) and collects digits. Defaults follow Twilio's Gather: timeout
   * 5 s, finishOnKey `#`. Returns '' when the caller pressed nothing.
   */
  gather(promptText: string | undefined, options: GatherOptions = {}): Promise<string> {
    return this.timed('gather', async () => {
      const output = promptText ? await synthesize(this.ctx, promptText, {}) : undefined;
      const digits = await gather(this.ctx, output, options);
      this.note({ type: 'keys', digits });
      return digits;
    });
  }

  /**
   * Says `question` and returns what the caller said, transcribed by the STT engine. Speech during
   * the question interrupts it. Returns '' when the caller said nothing within the timeout.
   */
  prompt(question: string, options: PromptOptions = {}): Promise<string> {
    return this.timed('prompt', () => prompt(this.ctx, question, options));
  }

  /** Transcripts of everything the caller says, one per utterance, until the call ends. */
  inputStream(options: { language?: string; hints?: string[] } = {}): AsyncIterable<string> {
    return transcripts(this.ctx, options);
  }

  /** A menu: `{ '1': async () => …, '2': … }`; the chosen action's result is returned. */
  menu<T>(
    promptText: string,
    actions: Readonly<Record<string, MenuAction<T>>>,
    options: ChoiceOptions = {},
  ): Promise<T> {
    return this.timed('menu', () => menu(this.conversation(), promptText, actions, options));
  }

  /** Returns the value of the chosen key: `select('…', { '1': 'sales', '2': 'support' })`. */
  select<T>(
    promptText: string,
    choices: Readonly<Record<string, T>>,
    options: ChoiceOptions = {},
  ): Promise<T> {
    return this.timed('select', () => select(this.conversation(), promptText, choices, options));
  }

  /** Reads the labels out with numbers ("For sales, press 1.") and returns the chosen label. */
  choose(promptText: string, labels: readonly string[], options: ChoiceOptions = {}): Promise<string> {
    return this.timed('choose', () => choose(this.conversation(), promptText, labels, options));
  }

  /** A yes/no question: 1 for yes, 2 for no. */
  askYesNo(question: string, options: ChoiceOptions = {}): Promise<boolean> {
    return this.timed('askYesNo', () => askYesNo(this.conversation(), question, options));
  }

  /** Records the caller (beep, then until silence, a key, or maxLength). */
  record(options: RecordOptions = {}): Promise<Recording> {
    return this.timed('record', async () => {
      const recording = await record(this.ctx, options);
      this.note({ type: 'recorded', name: recording.name, seconds: recording.durationSeconds });
      return recording;
    });
  }

  // ------------------------------------------------------------------ realtime agent

  /**
   * Hands the call to an OpenAI Realtime agent until the caller hangs up, the agent ends or
   * transfers the call, a key ends it (`dtmf`), `signal` aborts, or the model fails. Audio goes
   * over the call's own RTP leg as µ-law both ways. Resolves with why it ended, the transcript,
   * the tool calls, token usage and timings; never rejects for a hangup or a model failure (see
   * `reason`). Afterwards the handler owns the call again: say a fallback after `'model-error'`,
   * transfer, or return to hang up. Events arrive on `ui.on('agent', …)`.
   *
   * @throws {ConfigError} when no OpenAI key is configured, before the call is touched.
   * @throws {InvalidInputError} for bad options.
   */
  async connectOpenAIAgent(options: VoiceAgentOptions): Promise<AgentResult> {
    this.scope.assertActive();
    const logger = this.deps.logger;
    const settings = resolveAgentSettings(this.deps.config, options, logger);
    return runVoiceAgent(
      {
        ui: this,
        localNumber: this.localNumber,
        remoteNumber: this.remoteNumber,
        signal: this.scope.signal,
        logger,
        openMedia: async () => {
          await this.answer();
          return this.audio();
        },
        onDtmf: (listener) => this.on('dtmf', listener),
        onTalking: (listener) => {
          this.talkListeners.add(listener);
          return () => this.talkListeners.delete(listener);
        },
        setTalkDetect: (enabled) =>
          enabled ? this.setVariable('TALK_DETECT(set)', '') : this.setVariable('TALK_DETECT(remove)', ''),
        transfer: (target) => this.transfer(target),
        hangup: () => this.hangup(),
        emit: (event) => {
          for (const l of this.listeners.agent) this.safely(() => l(event));
        },
      },
      options,
      settings,
    );
  }

  // ------------------------------------------------------------------ in-call text

  /**
   * Sends `text` to the caller inside the call (AMI SendText: an in-dialog SIP MESSAGE, shown by
   * phones that support it). One line: AMI cannot carry a line break in it.
   */
  async sendText(text: string): Promise<void> {
    this.scope.assertActive();
    if (/[\r\n]/.test(text)) {
      throw new InvalidInputError(
        'In-call text cannot contain a line break (AMI SendText carries one line); send several texts',
      );
    }
    this.note({ type: 'sentText', text });
    await this.scope.race(this.deps.sendText(text));
  }

  /**
   * Sends `question` as in-call text (unless empty) and resolves with the caller's next text to
   * this number, or '' after `timeout` seconds (default 60).
   */
  async textPrompt(question: string, options: { timeout?: number } = {}): Promise<string> {
    await this.scope.race(this.deps.enableTextIntake());
    if (question) await this.sendText(question);
    const reply = await this.scope.race(this.texts.next((options.timeout ?? 60) * 1000));
    return reply ?? '';
  }

  /** @internal A text from the caller, routed to this call by the runtime. */
  receiveText(body: string): void {
    if (this.scope.ended) return;
    this.texts.push(body);
    for (const l of this.listeners.text) this.safely(() => l(body));
  }

  /** Listens to events: `dtmf` for every key the caller presses, `text` for texts, `ended` once. */
  on<K extends keyof VoiceUIEvents>(event: K, listener: VoiceUIEvents[K]): () => void {
    if (event === 'text') {
      this.deps
        .enableTextIntake()
        .catch((error: unknown) => this.deps.logger.error({ err: String(error) }, 'text intake failed'));
    }
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  // ------------------------------------------------------------------ bridging

  /**
   * Joins `other` into this call: both callers hear each other, and each side's media path stays
   * up (the other call moves into this call's bridge with its media leg, so say/play still work
   * on both).
   */
  async bridge(other: VoiceUI): Promise<void> {
    if (other === this) throw new InvalidInputError('A call cannot be bridged with itself');
    const mine = await this.audio();
    const theirs = await other.audio();
    if (theirs.bridgeId === mine.bridgeId) return;
    await this.call(
      this.deps.ari.bridges.addChannel(mine.bridgeId, [other.channelId, theirs.externalChannelId]),
    );
    other.joinedBridge = mine.bridgeId;
    this.guests.add(other);
  }

  /** Separates a call joined with {@link bridge}: it goes back to its own bridge. */
  async unbridge(other: VoiceUI): Promise<void> {
    const theirs = other.openedAudio;
    if (!theirs || other.joinedBridge === undefined)
      throw new InvalidInputError('That call is not bridged with this one');
    other.joinedBridge = undefined;
    this.guests.delete(other);
    if (!other.active) return;
    await other.call(
      this.deps.ari.bridges.addChannel(theirs.bridgeId, [other.channelId, theirs.externalChannelId]),
    );
  }

  /** Set while the call is being handed away, so its StasisEnd is not taken for a hangup. */
  private leaving?: 'transferred';
  /** @internal bridge this call currently sits in when joined to another call. */
  joinedBridge?: string;
  /** Calls joined into this call's bridge: sent home before this call's bridge goes away. */
  private readonly guests = new Set<VoiceUI>();

  // ------------------------------------------------------------------ events (from the router)

  /** @internal */
  handleEvent(event: AriEvent): void {
    switch (event.type) {
      case 'ChannelDtmfReceived':
        this.dtmfCounts.received++;
        if (!this.dtmfBucket.take()) {
          // Faster than any phone signals: a flood. Dropped before it reaches gather or listeners.
          this.dtmfCounts.dropped++;
          if (!this.dtmfFloodWarned) {
            this.dtmfFloodWarned = true;
            this.deps.logger.warn(
              { ratePerSecond: DTMF_RATE_PER_SECOND, burst: DTMF_BURST },
              'DTMF flood: keys over the rate limit are dropped for the rest of the flood',
            );
          }
          break;
        }
        if (!this.digits.push(event.digit)) this.dtmfCounts.overflowed++;
        for (const l of this.listeners.dtmf) this.safely(() => l(event.digit));
        break;
      case 'ChannelStateChange':
        if (event.channel.state === 'Up') this.markAnswered();
        break;
      case 'ChannelTalkingStarted':
      case 'ChannelTalkingFinished':
        for (const l of this.talkListeners) this.safely(() => l(event.type === 'ChannelTalkingStarted'));
        break;
      case 'PlaybackFinished':
        this.ctx.playbacks.resolve(event.playback.id, event);
        break;
      case 'RecordingFinished':
        this.ctx.recordings.resolve(event.recording.name, event);
        break;
      case 'RecordingFailed':
        this.ctx.recordings.resolve(event.recording.name, { ...event, type: 'RecordingFinished' });
        break;
      case 'StasisEnd':
      case 'ChannelDestroyed':
        void this.end(this.leaving ?? 'hangup');
        break;
      default:
        break;
    }
  }

  /** @internal */
  handleChannelLost(): void {
    void this.end('lost');
  }

  /** @internal Resolves when the call has ended and its resources are released. */
  readonly ended: Promise<string>;
  private readonly resolveEnded: (reason: string) => void;

  /** @internal Ends the call: rejects pending waits, releases media. */
  async end(reason: string): Promise<void> {
    if (this.scope.ended) return;
    await this.scope.end(reason);
    for (const guest of [...this.guests]) await this.unbridge(guest).catch(() => {});
    await this.releaseAudio();
    for (const unroute of this.bridgeRoutes.values()) unroute();
    this.bridgeRoutes.clear();
    for (const l of this.listeners.ended) this.safely(() => l(reason));
    this.listeners.dtmf.clear();
    this.listeners.text.clear();
    this.listeners.ended.clear();
    this.listeners.agent.clear();
    this.listeners.activity.clear();
    this.talkListeners.clear();
    this.resolveEnded(reason);
  }

  // ------------------------------------------------------------------ internals

  private conversation(): Conversation {
    const self = this;
    return {
      kind: 'voice',
      say: (text) => self.say(text),
      readChoice: (promptText, maxLength, timeout, spokenHints) =>
        spokenHints
          ? self.timed('gather', () =>
              keysOrSpeech(self.ctx, promptText, {
                maxDigits: maxLength,
                finishOnKey: maxLength > 1 ? '#' : '',
                hints: spokenHints,
                ...(timeout !== undefined ? { timeout } : {}),
              }),
            )
          : self.gather(promptText, {
              numDigits: maxLength,
              finishOnKey: maxLength > 1 ? '#' : '',
              ...(timeout !== undefined ? { timeout } : {}),
            }),
      maxNoInputAttempts: this.deps.config.maxNoInputAttempts,
      get menuDepth() {
        return self.ctx.menuDepth;
      },
      set menuDepth(depth: number) {
        self.ctx.menuDepth = depth;
      },
    };
  }

  private async outputs(items: readonly PlayableMedia[]): Promise<VoiceOutput[]> {
    const out: VoiceOutput[] = [];
    for (const item of items) {
      if (typeof item === 'string' && WAV_PATH.test(item)) {
        out.push({ kind: 'pcm', pcm: this.deps.decodeWav(await readFile(item)) });
      } else if (typeof item === 'string') {
        const last = out.at(-1);
        if (last?.kind === 'uris') last.uris.push(item);
        else out.push({ kind: 'uris', uris: [item] });
      } else if (item instanceof Int16Array) out.push({ kind: 'pcm', pcm: item });
      else out.push({ kind: 'pcm', pcm: this.deps.decodeWav(item) });
    }
    return out;
  }

  private audio(): Promise<CallAudio> {
    this.scope.assertActive();
    this.audioPath ??= this.deps
      .openAudio(this.channelId, (bridgeId) => {
        this.bridgeRoutes.set(bridgeId, this.deps.routeBridge(bridgeId, this));
      })
      .then((audio) => {
        this.openedAudio = audio;
        if (this.scope.ended) void audio.close();
        return audio;
      });
    return this.scope.race(this.audioPath);
  }

  private async releaseAudio(): Promise<void> {
    const path = this.audioPath;
    this.audioPath = undefined;
    this.openedAudio = undefined;
    if (!path) return;
    try {
      const audio = await path;
      if (this.deps.observer && audio.stats) this.deps.observer.mediaClosed(audio.stats);
      await audio.close();
    } catch {
      // Opening failed: nothing to release.
    }
  }

  /** The call is up: told to the `activity` listeners once. */
  private markAnswered(): void {
    if (this.isAnswered) return;
    this.isAnswered = true;
    this.note({ type: 'answered' });
  }

  /** Tells the `activity` listeners (a listener that throws is logged, never the call's problem). */
  private note(activity: Activity): void {
    for (const l of this.listeners.activity) this.safely(() => l(activity));
  }

  /**
   * Runs a verb: keeps {@link currentVerb}, reports its start as activity, and tells the observer
   * (metrics) how long it took and how it ended.
   */
  private timed<T>(verb: string, work: () => Promise<T>): Promise<T> {
    const observer = this.deps.observer;
    this.verbs.push(verb);
    this.note({ type: 'verb', verb });
    const started = performance.now();
    const report = (outcome: VerbOutcome) => {
      const at = this.verbs.lastIndexOf(verb);
      if (at >= 0) this.verbs.splice(at, 1);
      if (!observer) return;
      try {
        observer.verb(verb, (performance.now() - started) / 1000, outcome);
      } catch (error) {
        this.deps.logger.warn({ err: String(error) }, 'a call observer threw');
      }
    };
    let running: Promise<T>;
    try {
      running = work();
    } catch (error) {
      report(error instanceof HangupError ? 'hangup' : 'error');
      throw error;
    }
    return running.then(
      (value) => {
        report('ok');
        return value;
      },
      (error: unknown) => {
        report(error instanceof HangupError ? 'hangup' : 'error');
        throw error;
      },
    );
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.speaking.add(work);
    const done = () => this.speaking.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * Runs an ARI call for this channel: HangupError if the call ends meanwhile or Asterisk says the
   * channel is gone (404, or 400/422 "Channel not found" / "not in Stasis" from bridge operations).
   */
  private async call<T>(request: Promise<T>): Promise<T> {
    try {
      return await this.scope.race(request);
    } catch (error) {
      if (isChannelGone(error) || isPbxGone(error, this.deps.ari)) {
        void this.end('hangup');
        throw new HangupError('The call has ended', { cause: error });
      }
      throw error;
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.deps.logger.error({ err: String(error) }, 'a VoiceUI event listener threw');
    }
  }
}

/** Whether an ARI failure means the call's channel is gone (hung up, or taken out of our app). */
function isChannelGone(error: unknown): boolean {
  if (!(error instanceof AriHttpError)) return false;
  // A 404 about something else of a live channel (an unset variable) is not a hang-up.
  if (/variable/i.test(error.asteriskMessage)) return false;
  return error instanceof AriNotFoundError || /channel not found|not in stasis/i.test(error.asteriskMessage);
}
