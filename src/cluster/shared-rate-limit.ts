/**
 * A per-recipient rate limit that holds across app instances: a sliding window of reserved send
 * times in one Redis script, on Redis's clock. Each send reserves the earliest slot that keeps at
 * most `messages` sends in any `perMs` window (and keeps the order of reservations), and learns how
 * long to wait for it: texts are delayed, never dropped, and no instance can exceed the limit by
 * counting only its own sends.
 */
import type { Redis } from 'ioredis';

/** Reserves a slot: returns the milliseconds to wait before sending. */
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local perMs = tonumber(ARGV[1])
local messages = tonumber(ARGV[2])
local times = redis.call('LRANGE', KEYS[1], -messages, -1)
local sendAt = now
if #times >= messages then
  local due = tonumber(times[1]) + perMs
  if due > sendAt then sendAt = due end
end
if #times > 0 then
  local last = tonumber(times[#times])
  if last > sendAt then sendAt = last end
end
redis.call('RPUSH', KEYS[1], sendAt)
redis.call('LTRIM', KEYS[1], -messages, -1)
redis.call('PEXPIRE', KEYS[1], sendAt - now + perMs)
return sendAt - now`;

/** `messages` per `perMs` for each recipient, across every instance using the same Redis. */
export class SharedRateLimit {
  constructor(
    private readonly redis: Redis,
    private readonly limit: { messages: number; perMs: number },
    private readonly prefix = 'asteramisk',
  ) {}

  /** Reserves the next send to `recipient`: resolves with the milliseconds to wait for it. */
  async reserve(recipient: string): Promise<number> {
    const wait = await this.redis.eval(
      RESERVE,
      1,
      `${this.prefix}:rate:${recipient}`,
      this.limit.perMs,
      this.limit.messages,
    );
    return Math.max(0, Number(wait));
  }
}
