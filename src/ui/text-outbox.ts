import PQueue from 'p-queue';

/** How many texts one recipient may receive per time window. */
export interface TextRateLimit {
  /** Texts per window. Default 30. */
  messages: number;
  /** The window, in ms. Default 60 000. */
  perMs: number;
}

/** Default: 30 texts a minute per recipient, sent in order. */
export const DEFAULT_TEXT_RATE_LIMIT: TextRateLimit = { messages: 30, perMs: 60_000 };

/**
 * Runs sends at most `messages` per `perMs` for each recipient, in order. Texts over the limit
 * wait their turn; none is dropped. Each recipient has its own queue (p-queue with an interval
 * cap), forgotten once it has been idle for a whole window.
 */
export class TextOutbox {
  private readonly queues = new Map<string, { queue: PQueue; lastUsed: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly limit: TextRateLimit = DEFAULT_TEXT_RATE_LIMIT) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, limit.perMs)).unref();
  }

  /** Runs `send` in `recipient`'s turn; resolves or rejects as it does. */
  enqueue(recipient: string, send: () => Promise<void>): Promise<void> {
    let entry = this.queues.get(recipient);
    if (!entry) {
      entry = {
        queue: new PQueue({ concurrency: 1, intervalCap: this.limit.messages, interval: this.limit.perMs }),
        lastUsed: Date.now(),
      };
      this.queues.set(recipient, entry);
    }
    entry.lastUsed = Date.now();
    return entry.queue.add(send);
  }

  /** Texts waiting (not yet sent) for `recipient`. */
  pending(recipient: string): number {
    return this.queues.get(recipient)?.queue.size ?? 0;
  }

  /** Texts waiting (not yet sent), all recipients together. */
  get queued(): number {
    let total = 0;
    for (const entry of this.queues.values()) total += entry.queue.size;
    return total;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [recipient, entry] of this.queues) {
      if (entry.queue.size === 0 && entry.queue.pending === 0 && now - entry.lastUsed > this.limit.perMs) {
        this.queues.delete(recipient);
      }
    }
  }

  /** Waits for queued texts to go out, then stops. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.queues.values()].map((e) => e.queue.onIdle()));
    this.queues.clear();
  }
}
