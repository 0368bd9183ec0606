/**
 * The TTS cache shared by the instances of a fleet, in Redis: a prompt is synthesized by one
 * instance (the one that claims it) and the others take its audio from here. 8 kHz 16-bit PCM,
 * stored as raw little-endian bytes with an expiry, so Redis never fills up with old prompts.
 */
import type { Redis } from 'ioredis';
import type { SharedTtsStore } from '../tts/tts-cache.js';

/** Options of {@link RedisTtsStore}. */
export interface RedisTtsStoreOptions {
  /** A cached prompt not asked for this long is dropped. Default 7 days. */
  ttlMs?: number;
  /** Key prefix. Default `asteramisk`. */
  prefix?: string;
}

/** A {@link SharedTtsStore} on Redis. */
export class RedisTtsStore implements SharedTtsStore {
  private readonly ttlMs: number;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisTtsStoreOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 7 * 24 * 3600_000;
    this.prefix = `${options.prefix ?? 'asteramisk'}:tts:`;
  }

  async get(key: string): Promise<Int16Array | undefined> {
    const bytes = await this.redis.getBuffer(this.prefix + key);
    if (!bytes || bytes.length % 2 !== 0) return undefined;
    // Renew the expiry of a prompt in use (not awaited: the audio is what matters).
    void this.redis.pexpire(this.prefix + key, this.ttlMs).catch(() => {});
    const pcm = new Int16Array(bytes.length / 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    return pcm;
  }

  async put(key: string, pcm: Int16Array): Promise<void> {
    const bytes = Buffer.alloc(pcm.length * 2);
    for (let i = 0; i < pcm.length; i++) bytes.writeInt16LE(pcm[i]!, i * 2);
    await this.redis.set(this.prefix + key, bytes, 'PX', this.ttlMs);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix + key}:claim`, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }
}
