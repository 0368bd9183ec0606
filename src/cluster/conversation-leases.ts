/**
 * Who handles a text conversation when several app instances receive every text (each one is
 * subscribed to the same endpoints, as Asterisk requires): the instance holding the
 * conversation's lease in Redis. A lease is taken atomically by the first instance to see a text
 * of a conversation nobody owns, renewed by a heartbeat while the conversation is open, and given
 * back when it ends. Every text is also claimed by message id, so that it is handled once, and so
 * that the others can see that the owner took it: when the owner has not claimed a text within
 * `ackWaitMs` (it died, or lost Asterisk), another instance takes the lease over and handles it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** Options of {@link ConversationLeases}. */
export interface ConversationLeasesOptions {
  redis: Redis;
  /** This instance's id (unique in the fleet). */
  instanceId: string;
  logger: Logger;
  /** A lease not renewed for this long expires. Default 6000 ms (renewed every third of it). */
  leaseMs?: number;
  /** How long a non-owner waits for the owner to claim a text before taking over. Default 2000 ms. */
  ackWaitMs?: number;
  /** How long a text's claim is remembered. Default 10 minutes. */
  claimTtlMs?: number;
  /** Key prefix. Default `asteramisk`. */
  prefix?: string;
}

/** What this instance does with a text. */
export type TextRoute =
  /** Handle it: the conversation is ours (`tookOver`: from an owner that did not answer). */
  | { handle: true; tookOver: boolean }
  /** Another instance handled it (or it was handled already). */
  | { handle: false };

/** Takes the lease when nobody holds it, then claims the text if the lease is ours. */
const ROUTE = `
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  owner = ARGV[1]
end
if owner == ARGV[1] then
  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return {1, ''} end
  return {0, ''}
end
return {2, owner}`;

/** After the wait: unless the text was claimed, takes the lease over from `expected` and claims it. */
const TAKE_OVER = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, ''} end
local owner = redis.call('GET', KEYS[1])
if owner ~= false and owner ~= ARGV[2] and owner ~= ARGV[1] then return {2, owner} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return {1, ''}`;

/** Renews each lease still ours; returns 1/0 per key. */
const RENEW = `
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept`;

/** Takes the lease if it is free (or already ours). */
const ACQUIRE = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** Gives a lease back if it is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Conversation leases and text claims of one instance. */
export class ConversationLeases {
  private readonly redis: Redis;
  private readonly id: string;
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly ackWaitMs: number;
  private readonly claimTtlMs: number;
  private readonly prefix: string;
  /** Leases held: conversation key → called when it is lost to another instance. */
  private readonly held = new Map<string, () => void>();
  private readonly heartbeat: NodeJS.Timeout;
  /** Waits in progress: closing ends them at once. */
  private readonly waits = new Map<NodeJS.Timeout, () => void>();
  private closed = false;

  constructor(options: ConversationLeasesOptions) {
    this.redis = options.redis;
    this.id = options.instanceId;
    this.logger = options.logger;
    this.leaseMs = options.leaseMs ?? 6000;
    this.ackWaitMs = options.ackWaitMs ?? 2000;
    this.claimTtlMs = options.claimTtlMs ?? 10 * 60_000;
    this.prefix = options.prefix ?? 'asteramisk';
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.heartbeat.unref();
  }

  /** The Redis key of the conversation between our `localNumber` and `peer`. */
  conversationKey(localNumber: string, peer: string): string {
    return `${this.prefix}:conv:${localNumber}:${peer}`;
  }

  /**
   * Decides whether this instance handles the text `messageId` of `conversation`. Resolves at once
   * for the owner (or a new owner); a non-owner resolves after `ackWaitMs`, with `handle: true`
   * only if the owner did not claim it meanwhile.
   */
  async route(conversation: string, messageId: string): Promise<TextRoute> {
    const claim = `${this.prefix}:msg:${messageId}`;
    for (let round = 0; round < 3; round++) {
      const [verdict, owner] = (await this.redis.eval(
        ROUTE,
        2,
        conversation,
        claim,
        this.id,
        this.leaseMs,
        this.claimTtlMs,
      )) as [number, string];
      if (verdict === 1) return { handle: true, tookOver: false };
      if (verdict === 0) return { handle: false };
      await this.wait(this.ackWaitMs);
      if (this.closed) return { handle: false };
      const [taken, newOwner] = (await this.redis.eval(
        TAKE_OVER,
        2,
        conversation,
        claim,
        this.id,
        owner,
        this.leaseMs,
        this.claimTtlMs,
      )) as [number, string];
      if (taken === 1) {
        this.logger.warn(
          { conversation, from: owner },
          'took a text conversation over: its owner did not take the text in time',
        );
        return { handle: true, tookOver: true };
      }
      if (taken === 0) return { handle: false };
      // A third instance took it over meanwhile: it should take this text too; wait for it.
      this.logger.debug({ conversation, owner: newOwner }, 'conversation moved meanwhile; waiting again');
    }
    return { handle: false };
  }

  /**
   * Keeps the lease of `conversation` while it is open (taking it first if it is free, for a
   * conversation this instance starts); `onLost` runs if another instance takes it. Resolves with
   * false when another instance owns it: its texts then go there.
   */
  async hold(conversation: string, onLost: () => void): Promise<boolean> {
    const ours = (await this.redis.eval(ACQUIRE, 1, conversation, this.id, this.leaseMs)) === 1;
    if (ours) this.held.set(conversation, onLost);
    return ours;
  }

  /** Gives the lease back (the conversation ended here). */
  async release(conversation: string): Promise<void> {
    if (!this.held.delete(conversation)) return;
    try {
      await this.redis.eval(RELEASE, 1, conversation, this.id);
    } catch (error) {
      // It expires by itself within leaseMs.
      this.logger.warn({ conversation, err: String(error) }, 'could not release a conversation lease');
    }
  }

  /** Stops renewing (the leases expire within leaseMs, or are released by the conversations' ends). */
  close(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const [timer, resolve] of this.waits) {
      clearTimeout(timer);
      resolve();
    }
    this.waits.clear();
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const keys = [...this.held.keys()];
    let kept: number[];
    try {
      kept = (await this.redis.eval(RENEW, keys.length, ...keys, this.id, this.leaseMs)) as number[];
    } catch (error) {
      this.logger.warn({ err: String(error), leases: keys.length }, 'could not renew conversation leases');
      return;
    }
    kept.forEach((ok, i) => {
      const key = keys[i]!;
      const onLost = this.held.get(key);
      if (ok === 1 || !onLost) return;
      this.held.delete(key);
      this.logger.warn({ conversation: key }, 'lost a conversation lease to another instance');
      onLost();
    });
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waits.delete(timer);
        resolve();
      }, ms);
      this.waits.set(timer, resolve);
    });
  }
}
