/**
 * The Redis connection that app instances share state through (ioredis, loaded only when `redis`
 * is configured). One per process and URL; closed when its last user releases it.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Where Redis is: a `redis://` / `rediss://` URL, or ioredis options. */
export type RedisTarget = string | RedisOptions;

/** `redis://user:secret@host` → `redis://user:***@host`, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

/**
 * Connects to Redis and waits until it answers PING. Rejects with ConfigError for an unusable
 * URL, or with the connection's error after `timeoutMs`.
 */
export async function connectRedis(target: RedisTarget, logger: Logger, timeoutMs = 5000): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const where =
    typeof target === 'string'
      ? redactRedisUrl(target)
      : `${target.host ?? '127.0.0.1'}:${target.port ?? 6379}`;
  if (typeof target === 'string' && !/^rediss?:\/\//.test(target)) {
    throw new ConfigError(
      'redis',
      `REDIS_URL must start with redis:// or rediss://, not ${JSON.stringify(where)}`,
    );
  }
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    // Commands wait while Redis reconnects, but not forever: a lost Redis is an error, not a hang.
    maxRetriesPerRequest: 3,
    enableOfflineQueue: true,
  };
  const client =
    typeof target === 'string' ? new Redis(target, options) : new Redis({ ...target, ...options });
  let lastError = '';
  client.on('error', (error: Error) => {
    // ioredis retries by itself; say so once per distinct error rather than once per attempt.
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn({ redis: where, err: error.message }, 'Redis connection error; retrying');
  });
  client.on('ready', () => {
    if (lastError) logger.info({ redis: where }, 'Redis connection restored');
    lastError = '';
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new ConfigError(
      'redis',
      `Redis at ${where} is not reachable: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return client;
}
