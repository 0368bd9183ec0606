import type { Config } from '../config.js';
import { HangupError } from '../errors.js';
import { childLogger, type Logger } from '../logger.js';
import {
  MAX_QUEUED_TEXTS,
  MAX_TRACKED_TEXT_SENDERS,
  TEXT_BURST,
  TEXT_RATE_PER_SECOND,
  TokenBucket,
} from './input-limits.js';
import type { IncomingText, TextPeer } from './sip-address.js';
import { type TextHistoryEntry, TextUI } from './text-ui.js';

/** Handles one text conversation; when it returns, the conversation ends. */
export type TextConversationHandler = (ui: TextUI) => Promise<void> | void;

/** What to do with a text that would open a conversation beyond the limit. */
export type TextOverflow = 'busy' | 'ignore';

/** Options of {@link TextConversations}. */
export interface TextConversationsOptions {
  config: Config;
  logger: Logger;
  /** Sends one text from `localNumber` to `peer`. */
  send: (localNumber: string, peer: TextPeer, body: string) => Promise<void>;
  /** A conversation nobody writes to for this long ends. Default 10 minutes. */
  idleTimeoutMs?: number;
  /** Default wait for a reply in prompt/gather/menu. Default 5 minutes. */
  replyTimeoutMs?: number;
  /** Over MAX_CONCURRENT_CONVERSATIONS: reply `busyMessage` (default) or ignore the text. */
  overflow?: TextOverflow;
  busyMessage?: string;
  /** Told of each conversation's start, texts and end (for sharing them with other instances). */
  sync?: ConversationSync;
}

/** Observes conversations for another layer (the cluster's leases and history). */
export interface ConversationSync {
  opened(ui: TextUI): void;
  text(ui: TextUI, from: 'peer' | 'app', body: string): void;
  ended(ui: TextUI, reason: string): void;
}

/** Where a conversation taken over from another instance starts from. */
export interface ResumedConversation {
  history: readonly TextHistoryEntry[];
}

/** Why a text did not start a conversation. */
export type TextDeclineReason =
  | 'no text handler for this number'
  | 'over MAX_CONCURRENT_CONVERSATIONS'
  | 'over the inbound text rate'
  | 'server is draining';

/**
 * The open text conversations of a process, keyed by (our number, peer): a text goes to the open
 * conversation of its pair, or starts one with the number's handler. Two of our numbers can talk
 * with the same peer at once; texts of one pair are handled in arrival order.
 */
export class TextConversations {
  private readonly open = new Map<string, TextUI>();
  /** Inbound rate per (our number, sender) pair; `warned` once per flood (see input-limits.ts). */
  private readonly senders = new Map<string, { bucket: TokenBucket; warned: boolean }>();
  private readonly counts = { rateLimited: 0, queueOverflow: 0 };
  private failedHandlers = 0;
  private readonly tasks = new Set<Promise<void>>();
  /** Inbound conversations whose handler is running. */
  private readonly handled = new Set<TextUI>();
  private readonly options: TextConversationsOptions;
  /** Told of every conversation opened (inbound, with its opening text set, or outbound). */
  private readonly startListeners = new Set<(ui: TextUI) => void>();

  constructor(options: TextConversationsOptions) {
    this.options = options;
  }

  /** Open conversations now. */
  get size(): number {
    return this.open.size;
  }

  /** Text handlers that threw something other than HangupError (for metrics). */
  get handlerErrors(): number {
    return this.failedHandlers;
  }

  /**
   * Inbound texts dropped: `rateLimited` for coming faster than {@link TEXT_RATE_PER_SECOND} from
   * one sender to one number (after a burst of {@link TEXT_BURST}), `queueOverflow` for unread
   * texts pushed out of a conversation holding {@link MAX_QUEUED_TEXTS}.
   */
  get inboundStats(): { rateLimited: number; queueOverflow: number } {
    return { ...this.counts };
  }

  /**
   * Whether an inbound text may be handled (in a conversation or a call): false when its sender is
   * over the inbound rate to that number. Counted, and warned about once per flood.
   */
  admit(text: IncomingText): boolean {
    const k = key(text.to, text.peer.number);
    const now = performance.now();
    let sender = this.senders.get(k);
    if (!sender) {
      if (this.senders.size >= MAX_TRACKED_TEXT_SENDERS) this.forgetQuietSenders(now);
      sender = { bucket: new TokenBucket(TEXT_BURST, TEXT_RATE_PER_SECOND, now), warned: false };
      this.senders.set(k, sender);
    } else if (sender.warned && sender.bucket.full(now)) {
      sender.warned = false; // the last flood is over: warn about the next one
    }
    if (sender.bucket.take(now)) return true;
    this.counts.rateLimited++;
    if (!sender.warned) {
      sender.warned = true;
      this.options.logger.warn(
        { to: text.to, from: text.peer.number, ratePerSecond: TEXT_RATE_PER_SECOND, burst: TEXT_BURST },
        'text flood: texts from this sender over the rate limit are dropped until it slows down',
      );
    }
    return false;
  }

  /**
   * Forgets senders quiet long enough to burst again, then, if still over 90 % of the limit (a flood
   * from very many senders), the longest-tracked ones: one scan per thousand new senders at most.
   */
  private forgetQuietSenders(now: number): void {
    for (const [k, sender] of this.senders) if (sender.bucket.full(now)) this.senders.delete(k);
    for (const k of this.senders.keys()) {
      if (this.senders.size < MAX_TRACKED_TEXT_SENDERS * 0.9) break;
      this.senders.delete(k);
    }
  }

  /** The open conversation of a pair, if any. */
  find(localNumber: string, peerNumber: string): TextUI | undefined {
    return this.open.get(key(localNumber, peerNumber));
  }

  /** Calls `listener` with every conversation opened from now on; returns the undo. */
  onStarted(listener: (ui: TextUI) => void): () => void {
    this.startListeners.add(listener);
    return () => this.startListeners.delete(listener);
  }

  /**
   * Opens a conversation (for an outbound text, or an inbound one about to be handled, whose
   * opening text is `firstMessage`).
   */
  start(localNumber: string, peer: TextPeer, firstMessage = '', resumed?: ResumedConversation): TextUI {
    const k = key(localNumber, peer.number);
    const existing = this.open.get(k);
    if (existing?.active) return existing;
    const ui = new TextUI({
      localNumber,
      peer,
      config: this.options.config,
      logger: childLogger(this.options.logger, { conversation: `${localNumber}<->${peer.number}` }),
      send: (body) => {
        // Told before sending: so the shared history has it before the phone can answer it.
        this.options.sync?.text(ui, 'app', body);
        return this.options.send(localNumber, peer, body);
      },
      idleTimeoutMs: this.options.idleTimeoutMs ?? 10 * 60_000,
      replyTimeoutMs: this.options.replyTimeoutMs ?? 5 * 60_000,
    });
    ui.firstMessage = firstMessage;
    if (resumed) {
      ui.resumed = true;
      ui.history = resumed.history;
    }
    this.open.set(k, ui);
    this.options.sync?.opened(ui);
    if (firstMessage) this.options.sync?.text(ui, 'peer', firstMessage);
    void ui.ended.then((reason) => {
      if (this.open.get(k) === ui) this.open.delete(k);
      this.options.sync?.ended(ui, reason);
    });
    for (const listener of this.startListeners) {
      try {
        listener(ui);
      } catch (error) {
        this.options.logger.warn({ err: String(error) }, 'a conversation listener threw');
      }
    }
    return ui;
  }

  /** Inbound conversations whose handler is still running. */
  get handling(): number {
    return this.handled.size;
  }

  /**
   * Routes an inbound text: to its open conversation, or into a new one run by `handler`.
   * Returns why it was declined, or undefined when it was taken. With `refuseNew`, a text that
   * would open a new conversation is declined for that reason (and answered like over capacity).
   */
  deliver(
    text: IncomingText,
    handler: TextConversationHandler | undefined,
    refuseNew?: TextDeclineReason,
    resumed?: ResumedConversation,
  ): TextDeclineReason | undefined {
    const open = this.find(text.to, text.peer.number);
    if (open?.active) {
      if (!open.deliver(text.body)) this.counts.queueOverflow++;
      this.options.sync?.text(open, 'peer', text.body);
      return undefined;
    }
    if (!handler) return 'no text handler for this number';
    if (refuseNew || this.open.size >= this.options.config.maxConcurrentConversations) {
      if ((this.options.overflow ?? 'busy') === 'busy') {
        const busy = this.options.busyMessage ?? 'Sorry, we are busy right now. Please try again later.';
        this.options.send(text.to, text.peer, busy).catch(() => {});
      }
      return refuseNew ?? 'over MAX_CONCURRENT_CONVERSATIONS';
    }
    const ui = this.start(text.to, text.peer, text.body, resumed);
    this.handled.add(ui);
    const task = this.run(ui, handler).finally(() => {
      this.tasks.delete(task);
      this.handled.delete(ui);
    });
    this.tasks.add(task);
    return undefined;
  }

  /** Resolves once every inbound conversation's handler has returned. */
  async settled(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** Ends the inbound conversations whose handler still runs (it sees HangupError), and waits for none. */
  endHandled(reason: string): number {
    const open = [...this.handled].filter((ui) => ui.active);
    for (const ui of open) void ui.end(reason);
    return open.length;
  }

  private async run(ui: TextUI, handler: TextConversationHandler): Promise<void> {
    const log = childLogger(this.options.logger, { conversation: `${ui.localNumber}<->${ui.remoteNumber}` });
    try {
      await handler(ui);
    } catch (error) {
      if (error instanceof HangupError)
        log.info({ reason: 'ended' }, 'conversation ended while the handler waited');
      else {
        this.failedHandlers++;
        log.error(
          { err: error instanceof Error ? (error.stack ?? error.message) : String(error) },
          'text handler failed',
        );
      }
    } finally {
      await ui.end('done');
    }
  }

  /** Ends every open conversation and waits for their handlers. */
  /**
   * Ends every conversation and waits for their handlers, up to `graceMs` (default 5 s): a handler
   * stuck in its own work (ignoring `ui.signal`) must not keep the process from closing.
   */
  async close(graceMs = 5000): Promise<void> {
    await Promise.allSettled([...this.open.values()].map((ui) => ui.end('closed')));
    if (this.tasks.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      Promise.allSettled([...this.tasks]).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (gaveUp)
      this.options.logger.warn(
        { handlers: this.tasks.size, graceMs },
        'text handlers still running at close; not waiting longer',
      );
  }
}

function key(localNumber: string, peerNumber: string): string {
  return `${localNumber}\u0000${peerNumber}`;
}
