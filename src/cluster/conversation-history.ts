/**
 * The texts of each open conversation, kept in Redis so that an instance taking a conversation
 * over from one that died can give its handler what was said (`ui.history`, `ui.resumed`).
 */
import type { Redis } from 'ioredis';
import type { TextHistoryEntry } from '../ui/text-ui.js';

/** One text of a conversation (the TextUI's {@link TextHistoryEntry}). */
export type HistoryEntry = TextHistoryEntry;

/** Options of {@link ConversationHistory}. */
export interface ConversationHistoryOptions {
  redis: Redis;
  /** Texts kept per conversation (the oldest go first). Default 100. */
  limit?: number;
  /** A history nobody adds to for this long is dropped. Default 24 hours. */
  ttlMs?: number;
}

/** Conversation histories in Redis lists, keyed by the conversation's lease key. */
export class ConversationHistory {
  private readonly redis: Redis;
  private readonly limit: number;
  private readonly ttlMs: number;

  constructor(options: ConversationHistoryOptions) {
    this.redis = options.redis;
    this.limit = options.limit ?? 100;
    this.ttlMs = options.ttlMs ?? 24 * 3600_000;
  }

  /** Adds a text to the history of `conversation`. */
  async append(conversation: string, entry: HistoryEntry): Promise<void> {
    const key = `${conversation}:history`;
    await this.redis
      .multi()
      .rpush(key, JSON.stringify(entry))
      .ltrim(key, -this.limit, -1)
      .pexpire(key, this.ttlMs)
      .exec();
  }

  /** The texts of `conversation`, oldest first ([] when there is none). */
  async read(conversation: string): Promise<HistoryEntry[]> {
    const items = await this.redis.lrange(`${conversation}:history`, 0, -1);
    const entries: HistoryEntry[] = [];
    for (const item of items) {
      try {
        const e = JSON.parse(item) as Partial<HistoryEntry>;
        if ((e.from === 'peer' || e.from === 'app') && typeof e.body === 'string' && typeof e.at === 'number')
          entries.push({ from: e.from, body: e.body, at: e.at });
      } catch {
        // Not ours: skipped.
      }
    }
    return entries;
  }

  /** Forgets `conversation` (it ended normally: the next text starts afresh). */
  async clear(conversation: string): Promise<void> {
    await this.redis.del(`${conversation}:history`);
  }
}
