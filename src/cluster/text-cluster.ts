/**
 * What a Runtime needs to share texts with other app instances through Redis: who handles each
 * text (leases and claims), the history a taking-over instance resumes with, and the per-recipient
 * rate limit of the whole fleet. Created when `cluster.redis` (or ASTERAMISK_REDIS_URL) is set.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { TextHistoryEntry } from '../ui/text-ui.js';
import { ConversationHistory } from './conversation-history.js';
import { ConversationLeases, type TextRoute } from './conversation-leases.js';
import { connectRedis, type RedisTarget } from './redis-connection.js';
import { RedisTtsStore } from './redis-tts-store.js';
import { SharedRateLimit } from './shared-rate-limit.js';

/** Options of several app instances sharing texts (`cluster` of Server/Communicator options). */
export interface ClusterOptions {
  /** The Redis every instance uses: a `redis://` URL or ioredis options. */
  redis: RedisTarget;
  /** This instance's id in the fleet. Default: the host name, the process id and a random suffix. */
  instanceId?: string;
  /**
   * A conversation whose owner has not renewed its lease for this long may be taken over.
   * Default 6000 ms.
   */
  leaseMs?: number;
  /** How long other instances wait for a conversation's owner to take a text. Default 2000 ms. */
  ackWaitMs?: number;
  /** Texts kept per conversation for a resuming instance. Default 100. */
  historyLimit?: number;
  /** Prefix of every Redis key. Default `asteramisk`. */
  keyPrefix?: string;
  /** Shares the TTS cache through Redis too (a prompt is synthesized once per fleet). Default true. */
  sharedTtsCache?: boolean;
}

/** The fields of Asterisk's TextMessageReceived that identify one SIP MESSAGE. */
export interface TextIdentity {
  asteriskId?: string;
  from: string;
  to: string;
  body: string;
  timestamp?: string;
  variables?: Record<string, string>;
}

/**
 * The same id on every instance that received this SIP MESSAGE: its transaction (Call-ID, CSeq,
 * From tag) when Asterisk passed the headers on, else its addresses, body and event time.
 */
export function messageIdOf(text: TextIdentity): string {
  const v = text.variables ?? {};
  const tag = /;\s*tag=([^;\s]+)/i.exec(v.From ?? '')?.[1];
  const parts = v['Call-ID']
    ? [text.asteriskId ?? '', v['Call-ID'], v.CSeq ?? '', tag ?? '']
    : [text.asteriskId ?? '', text.from, text.to, text.body, text.timestamp ?? ''];
  return createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 24);
}

/** Texts shared with other instances. */
export class TextCluster {
  readonly instanceId: string;
  private readonly leases: ConversationLeases;
  private readonly histories: ConversationHistory;
  private readonly rates = new Map<string, SharedRateLimit>();
  /** Texts of one conversation are routed one after another, in arrival order. */
  private readonly chains = new Map<string, Promise<unknown>>();

  private constructor(
    private readonly redis: Redis,
    private readonly options: ClusterOptions,
    private readonly logger: Logger,
  ) {
    this.instanceId =
      options.instanceId ?? `${process.env.HOSTNAME ?? 'app'}-${process.pid}-${randomUUID().slice(0, 6)}`;
    this.leases = new ConversationLeases({
      redis,
      instanceId: this.instanceId,
      logger,
      ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      ...(options.ackWaitMs !== undefined ? { ackWaitMs: options.ackWaitMs } : {}),
      ...(options.keyPrefix ? { prefix: options.keyPrefix } : {}),
    });
    this.histories = new ConversationHistory({
      redis,
      ...(options.historyLimit !== undefined ? { limit: options.historyLimit } : {}),
    });
  }

  /** Connects to Redis (ConfigError when it is not reachable). */
  static async connect(options: ClusterOptions, logger: Logger): Promise<TextCluster> {
    const redis = await connectRedis(options.redis, logger);
    const cluster = new TextCluster(redis, options, logger);
    logger.info({ instance: cluster.instanceId }, 'sharing texts with other instances through Redis');
    return cluster;
  }

  /** Whether this instance handles a text of (our number, peer); calls for one pair run in order. */
  route(localNumber: string, peer: string, messageId: string): Promise<TextRoute> {
    const key = this.leases.conversationKey(localNumber, peer);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(
      () => this.leases.route(key, messageId),
      () => this.leases.route(key, messageId),
    );
    this.chains.set(key, next);
    const forget = () => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    };
    next.then(forget, forget);
    return next;
  }

  /** The texts of the conversation so far (for an instance that took it over). */
  history(localNumber: string, peer: string): Promise<TextHistoryEntry[]> {
    return this.histories.read(this.leases.conversationKey(localNumber, peer));
  }

  /** A conversation opened here: keep its lease; `onLost` runs if another instance takes it. */
  opened(localNumber: string, peer: string, onLost: () => void): void {
    const key = this.leases.conversationKey(localNumber, peer);
    this.leases.hold(key, onLost).then(
      (ours) => {
        if (!ours)
          this.logger.warn(
            { conversation: key },
            'started a conversation another instance owns: the replies will go to that instance',
          );
      },
      (error: unknown) =>
        this.logger.warn({ conversation: key, err: String(error) }, 'could not take a conversation lease'),
    );
  }

  /** Adds a text to the conversation's shared history (failures are logged, not thrown). */
  record(localNumber: string, peer: string, entry: TextHistoryEntry): void {
    this.histories
      .append(this.leases.conversationKey(localNumber, peer), entry)
      .catch((error: unknown) =>
        this.logger.warn({ err: String(error) }, 'could not save a text to the history'),
      );
  }

  /**
   * A conversation ended here: its lease is given back. `finished` (the handler returned, hung up,
   * or the peer went idle) also forgets its history; otherwise (this instance is closing) another
   * instance resumes it with the history at the next text.
   */
  async ended(localNumber: string, peer: string, finished: boolean): Promise<void> {
    const key = this.leases.conversationKey(localNumber, peer);
    await this.leases.release(key);
    if (finished) await this.histories.clear(key).catch(() => {});
  }

  /** The fleet's TTS cache in this Redis. */
  ttsStore(): RedisTtsStore {
    return new RedisTtsStore(this.redis, this.options.keyPrefix ? { prefix: this.options.keyPrefix } : {});
  }

  /** Waits for `recipient`'s turn under the fleet-wide rate limit. */
  async waitTurn(recipient: string, limit: { messages: number; perMs: number }): Promise<void> {
    const id = `${limit.messages}/${limit.perMs}`;
    let rate = this.rates.get(id);
    if (!rate) {
      rate = new SharedRateLimit(this.redis, limit, this.options.keyPrefix);
      this.rates.set(id, rate);
    }
    const wait = await rate.reserve(recipient);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /** Stops the heartbeats and disconnects. */
  async close(): Promise<void> {
    this.leases.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
