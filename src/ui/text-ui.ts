import type { AgentEvent, AgentOptions, AgentResult } from '../agent/agent-options.js';
import { resolveAgentSettings } from '../agent/agent-settings.js';
import { runTextAgent } from '../agent/text-agent.js';
import type { Config } from '../config.js';
import { GoBackError, InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Activity } from './call-activity.js';
import { CallScope } from './call-scope.js';
import type { ChoiceOptions, Conversation, MenuAction } from './conversation.js';
import { MAX_QUEUED_TEXTS } from './input-limits.js';
import { InputQueue } from './input-queue.js';
import type { TextPeer } from './sip-address.js';
import { askYesNo, choose, menu, select } from './verbs/menu.js';

/** Options of {@link TextUI.prompt}. */
export interface TextPromptOptions {
  /** Seconds to wait for the reply; '' after that. Default: the conversation's reply timeout (5 min). */
  timeout?: number;
}

/** Options of {@link TextUI.gather}. */
export interface TextGatherOptions extends TextPromptOptions {
  /** Exactly this many digits; another reply is asked again. */
  numDigits?: number;
  /** Wrong replies before giving up with ''. Default 3. */
  maxAttempts?: number;
}

/** One text of a conversation's history ({@link TextUI.history}). */
export interface TextHistoryEntry {
  /** `peer`: the phone wrote it; `app`: we sent it. */
  from: 'peer' | 'app';
  body: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** Events of a TextUI. */
export interface TextUIEvents {
  /** Every text the peer sends in this conversation. */
  message: (body: string) => void;
  ended: (reason: string) => void;
  /** What a realtime agent on the conversation does: transcripts, tool calls, errors. */
  agent: (event: AgentEvent) => void;
  /** A line of the conversation's live transcript: verbs started, texts sent (`said`). */
  activity: (activity: Activity) => void;
}

/** Options of {@link TextUI.connectOpenAIAgent}: the voice options, without transfer targets. */
export type TextAgentOptions = AgentOptions<TextUI, never>;

/** @internal What a TextUI is built from. */
export interface TextUIDeps {
  /** Our number in this conversation. */
  localNumber: string;
  peer: TextPeer;
  config: Config;
  logger: Logger;
  /** Sends one text to the peer (rate-limited, in order); rejects with MessageSendError. */
  send: (body: string) => Promise<void>;
  /** The conversation ends after this long without a text from the peer. */
  idleTimeoutMs: number;
  /** Default wait for a reply. */
  replyTimeoutMs: number;
}

/**
 * One text conversation (SIP MESSAGE) between one of our numbers and one peer, with the same
 * conversational API as a call: say, prompt, gather, menu, select, choose, askYesNo. Created by the
 * Server for an inbound text (the number's text handler gets it) or by `Communicator.makeText`.
 *
 * Later texts from that peer to that number reach this conversation, in arrival order, until the
 * handler returns or {@link hangup} is called; the next text then starts a new conversation.
 * Every awaited method rejects with HangupError once the conversation has ended (hung up, or idle
 * for longer than the idle timeout).
 */
export class TextUI {
  /** The peer's normalised number (`+15551234567`, `alice`). */
  readonly remoteNumber: string;
  /** The peer's display name, '' when the sender gave none. */
  readonly remoteName: string;
  /** Our number in this conversation. */
  readonly localNumber: string;
  /**
   * The peer's address as it arrived (`sip:+15551234567@trunk.example.net`). Replies do not use it:
   * they go to {@link remoteNumber} through the endpoint the text came from.
   */
  readonly remoteUri: string;
  /**
   * The text that opened an inbound conversation ('' for one we started). It is not an answer
   * to the first question: `prompt()` waits for the next text.
   */
  firstMessage = '';
  /**
   * True when this conversation was begun on another app instance that stopped answering (it
   * died, or lost Asterisk) and this one took it over (several instances sharing texts through
   * Redis; see README: Several instances). {@link history} then holds what was said.
   */
  resumed = false;
  /** The texts of the conversation before this handler started, oldest first ([] unless {@link resumed}). */
  history: readonly TextHistoryEntry[] = [];

  private readonly deps: TextUIDeps;
  private readonly scope = new CallScope();
  private readonly inbox = new InputQueue<string>(MAX_QUEUED_TEXTS);
  private readonly listeners: { [K in keyof TextUIEvents]: Set<TextUIEvents[K]> } = {
    message: new Set(),
    ended: new Set(),
    agent: new Set(),
    activity: new Set(),
  };
  private idleTimer?: NodeJS.Timeout;
  /** An agent was given {@link firstMessage}. */
  private openingAnswered = false;
  private depth = 0;
  private isAnswered = false;
  private readonly bridged = new Set<TextUI>();
  /** @internal Resolves when the conversation has ended. */
  readonly ended: Promise<string>;
  private readonly resolveEnded: (reason: string) => void;

  /** @internal */
  constructor(deps: TextUIDeps) {
    this.deps = deps;
    this.remoteNumber = deps.peer.number;
    this.remoteName = deps.peer.name;
    this.remoteUri = deps.peer.uri;
    this.localNumber = deps.localNumber;
    let resolveEnded!: (reason: string) => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.resolveEnded = resolveEnded;
    this.touch();
  }

  /** Whether the conversation is still open. */
  get active(): boolean {
    return !this.scope.ended;
  }

  /** True once answered (a text conversation needs no answering; kept for symmetry with calls). */
  get answered(): boolean {
    return this.isAnswered;
  }

  /** Aborted when the conversation ends. */
  get signal(): AbortSignal {
    return this.scope.signal;
  }

  /** Marks the conversation answered. Nothing is sent. */
  async answer(): Promise<void> {
    this.scope.assertActive();
    this.isAnswered = true;
  }

  /** Sends one text; resolves once Asterisk accepted it (MessageSendError when it refused). */
  async say(text: string): Promise<void> {
    this.scope.assertActive();
    if (text === '') throw new InvalidInputError('Cannot send an empty text');
    for (const l of this.listeners.activity) this.safely(() => l({ type: 'said', text }));
    await this.scope.race(this.deps.send(text));
  }

  /** Waits `seconds`. */
  sleep(seconds: number): Promise<void> {
    if (!(Number.isFinite(seconds) && seconds >= 0 && seconds <= 86_400)) {
      throw new InvalidInputError(`sleep takes 0 to 86400 seconds, not ${seconds}`);
    }
    return this.scope.sleep(seconds * 1000);
  }

  /** Text conversations have no speech queue: resolves at once (for symmetry with VoiceUI). */
  async doneSpeaking(): Promise<void> {
    this.scope.assertActive();
  }

  /**
   * Sends `question` (unless empty) and resolves with the peer's next text ('' after the timeout).
   * A text that arrived before the question was asked counts as the answer.
   */
  async prompt(question: string, options: TextPromptOptions = {}): Promise<string> {
    if (question) await this.say(question);
    const timeoutMs = options.timeout !== undefined ? options.timeout * 1000 : this.deps.replyTimeoutMs;
    const reply = await this.scope.race(this.inbox.next(timeoutMs));
    if (reply === undefined) return '';
    if (this.isGoBack(reply)) throw new GoBackError();
    return reply;
  }

  /**
   * Asks for digits: the reply must be digits (spaces and dashes are ignored) and, with
   * `numDigits`, exactly that many; otherwise it asks again. '' when no reply came.
   */
  async gather(question: string, options: TextGatherOptions = {}): Promise<string> {
    const attempts = options.maxAttempts ?? 3;
    let ask = question;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const reply = await this.prompt(ask, options);
      if (reply === '') return '';
      const digits = reply.replace(/[\s-]/g, '');
      if (
        /^[0-9*#]+$/.test(digits) &&
        (options.numDigits === undefined || digits.length === options.numDigits)
      ) {
        return digits;
      }
      ask =
        options.numDigits === undefined
          ? 'Please reply with digits only.'
          : `Please reply with exactly ${options.numDigits} digit${options.numDigits === 1 ? '' : 's'}.`;
    }
    return '';
  }

  /** A menu: `{ '1': async () => … }`; reply with the key. `*` or `back` inside an action goes back. */
  menu<T>(
    prompt: string,
    actions: Readonly<Record<string, MenuAction<T>>>,
    options: ChoiceOptions = {},
  ): Promise<T> {
    return menu(this.conversation(), prompt, actions, options);
  }

  /** Returns the value of the chosen key. */
  select<T>(prompt: string, choices: Readonly<Record<string, T>>, options: ChoiceOptions = {}): Promise<T> {
    return select(this.conversation(), prompt, choices, options);
  }

  /** Sends the labels as a numbered list and returns the chosen label. */
  choose(prompt: string, labels: readonly string[], options: ChoiceOptions = {}): Promise<string> {
    return choose(this.conversation(), prompt, labels, options);
  }

  /** A yes/no question; accepts yes/no/y/n/1/2. */
  askYesNo(question: string, options: ChoiceOptions = {}): Promise<boolean> {
    return askYesNo(this.conversation(), question, options);
  }

  /** Every text the peer sends, until the conversation ends (then the iteration stops). */
  async *inputStream(): AsyncGenerator<string, void, undefined> {
    while (this.active) {
      const reply = await this.inbox.next();
      if (reply === undefined) return;
      yield reply;
    }
  }

  /**
   * Hands the conversation to an OpenAI Realtime agent (text only): each text of the peer is a
   * user turn, each answer goes back as a text. Texts that arrive while the model answers wait and
   * go to it in order; none is dropped, and texts the model never saw (the session ended first)
   * stay for the handler's next `prompt()`. Resolves like VoiceUI.connectOpenAIAgent; voice-only
   * options (voice, activation, dtmf, turnDetection, minBargeInMs) are ignored.
   *
   * @throws {ConfigError} when no OpenAI key is configured.
   */
  async connectOpenAIAgent(options: TextAgentOptions): Promise<AgentResult> {
    this.scope.assertActive();
    const settings = resolveAgentSettings(this.deps.config, options, this.deps.logger);
    return runTextAgent(
      {
        ui: this,
        localNumber: this.localNumber,
        remoteNumber: this.remoteNumber,
        signal: this.scope.signal,
        logger: this.deps.logger,
        nextMessage: async (signal) => {
          if (signal.aborted) return undefined;
          const onAbort = (): void => this.inbox.cancel();
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            return await this.inbox.next();
          } finally {
            signal.removeEventListener('abort', onAbort);
          }
        },
        unread: (texts) => this.inbox.unshift(texts),
        // The opening text is not in the inbox (prompt() never returns it): an agent answers it, once.
        peekOpening: () =>
          this.openingAnswered || this.firstMessage.trim() === '' ? undefined : this.firstMessage,
        takeOpening: () => {
          this.openingAnswered = true;
        },
        send: (text) => this.say(text),
        hangup: () => this.hangup(),
        emit: (event) => {
          for (const l of this.listeners.agent) this.safely(() => l(event));
        },
      },
      options,
      settings,
    );
  }

  /** Ends the conversation. The next text from the peer starts a new one. Idempotent. */
  async hangup(): Promise<void> {
    await this.end('hangup');
  }

  /**
   * Relays texts both ways between this conversation and `other` until either ends (or
   * {@link unbridge}). Each side's handler still sees the texts of its own peer as well.
   */
  async bridge(other: TextUI): Promise<void> {
    if (other === this) throw new InvalidInputError('A conversation cannot be bridged with itself');
    this.scope.assertActive();
    other.scope.assertActive();
    this.bridged.add(other);
    other.bridged.add(this);
  }

  /** Stops relaying between this conversation and `other`. */
  unbridge(other: TextUI): void {
    this.bridged.delete(other);
    other.bridged.delete(this);
  }

  /** Listens to `message` (every text of the peer) and `ended`. */
  on<K extends keyof TextUIEvents>(event: K, listener: TextUIEvents[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  /**
   * @internal A text from the peer. Returns false when the unread texts were at
   * {@link MAX_QUEUED_TEXTS} and the oldest was dropped to make room.
   */
  deliver(body: string): boolean {
    if (this.scope.ended) return true;
    this.touch();
    const kept = this.inbox.push(body);
    for (const l of this.listeners.message) this.safely(() => l(body));
    for (const other of this.bridged) {
      if (other.active)
        other
          .say(body)
          .catch((error: unknown) => this.deps.logger.warn({ err: String(error) }, 'relaying a text failed'));
    }
    return kept;
  }

  /** @internal */
  async end(reason: string): Promise<void> {
    if (this.scope.ended) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    for (const other of this.bridged) this.unbridge(other);
    this.inbox.dispose();
    await this.scope.end(reason);
    for (const l of this.listeners.ended) this.safely(() => l(reason));
    this.listeners.message.clear();
    this.listeners.ended.clear();
    this.listeners.agent.clear();
    this.listeners.activity.clear();
    this.resolveEnded(reason);
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.end('idle'), this.deps.idleTimeoutMs);
    this.idleTimer.unref?.();
  }

  private isGoBack(reply: string): boolean {
    const word = reply.trim().toLowerCase();
    return this.deps.config.goBackOnStar && this.depth > 0 && (word === '*' || word === 'back');
  }

  private conversation(): Conversation {
    const self = this;
    return {
      kind: 'text',
      say: (text) => self.say(text),
      readChoice: async (prompt, _maxLength, timeout) =>
        (await self.prompt(prompt, timeout !== undefined ? { timeout } : {})).trim(),
      maxNoInputAttempts: this.deps.config.maxNoInputAttempts,
      get menuDepth() {
        return self.depth;
      },
      set menuDepth(depth: number) {
        self.depth = depth;
      },
    };
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.deps.logger.error({ err: String(error) }, 'a TextUI event listener threw');
    }
  }
}
