import type { Config } from '../config.js';
import { HangupError } from '../errors.js';
import { childLogger, type Logger } from '../logger.js';
import type { IncomingText, TextPeer } from './sip-address.js';
import { TextUI } from './text-ui.js';

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
}

/** Why a text did not start a conversation. */
export type TextDeclineReason = 'no text handler for this number' | 'over MAX_CONCURRENT_CONVERSATIONS';

/**
 * The open text conversations of a process, keyed by (our number, peer): a text goes to the open
 * conversation of its pair, or starts one with the number's handler. Two of our numbers can talk
 * with the same peer at once; texts of one pair are handled in arrival order.
 */
export class TextConversations {
  private readonly open = new Map<string, TextUI>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly options: TextConversationsOptions;

  constructor(options: TextConversationsOptions) {
    this.options = options;
  }

  /** Open conversations now. */
  get size(): number {
    return this.open.size;
  }

  /** The open conversation of a pair, if any. */
  find(localNumber: string, peerNumber: string): TextUI | undefined {
    return this.open.get(key(localNumber, peerNumber));
  }

  /** Opens a conversation (for an outbound text, or an inbound one about to be handled). */
  start(localNumber: string, peer: TextPeer): TextUI {
    const k = key(localNumber, peer.number);
    const existing = this.open.get(k);
    if (existing?.active) return existing;
    const ui = new TextUI({
      localNumber,
      peer,
      config: this.options.config,
      logger: childLogger(this.options.logger, { conversation: `${localNumber}<->${peer.number}` }),
      send: (body) => this.options.send(localNumber, peer, body),
      idleTimeoutMs: this.options.idleTimeoutMs ?? 10 * 60_000,
      replyTimeoutMs: this.options.replyTimeoutMs ?? 5 * 60_000,
    });
    this.open.set(k, ui);
    void ui.ended.then(() => {
      if (this.open.get(k) === ui) this.open.delete(k);
    });
    return ui;
  }

  /**
   * Routes an inbound text: to its open conversation, or into a new one run by `handler`.
   * Returns why it was declined, or undefined when it was taken.
   */
  deliver(text: IncomingText, handler: TextConversationHandler | undefined): TextDeclineReason | undefined {
    const open = this.find(text.to, text.peer.number);
    if (open?.active) {
      open.deliver(text.body);
      return undefined;
    }
    if (!handler) return 'no text handler for this number';
    if (this.open.size >= this.options.config.maxConcurrentConversations) {
      if ((this.options.overflow ?? 'busy') === 'busy') {
        const busy = this.options.busyMessage ?? 'Sorry, we are busy right now. Please try again later.';
        this.options.send(text.to, text.peer, busy).catch(() => {});
      }
      return 'over MAX_CONCURRENT_CONVERSATIONS';
    }
    const ui = this.start(text.to, text.peer);
    ui.firstMessage = text.body;
    const task = this.run(ui, handler).finally(() => this.tasks.delete(task));
    this.tasks.add(task);
    return undefined;
  }

  private async run(ui: TextUI, handler: TextConversationHandler): Promise<void> {
    const log = childLogger(this.options.logger, { conversation: `${ui.localNumber}<->${ui.remoteNumber}` });
    try {
      await handler(ui);
    } catch (error) {
      if (error instanceof HangupError)
        log.info({ reason: 'ended' }, 'conversation ended while the handler waited');
      else
        log.error(
          { err: error instanceof Error ? (error.stack ?? error.message) : String(error) },
          'text handler failed',
        );
    } finally {
      await ui.end('done');
    }
  }

  /** Ends every open conversation and waits for their handlers. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.open.values()].map((ui) => ui.end('closed')));
    await Promise.allSettled([...this.tasks]);
  }
}

function key(localNumber: string, peerNumber: string): string {
  return `${localNumber}\u0000${peerNumber}`;
}
