import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConversationHistory } from '../src/cluster/conversation-history.js';
import { ConversationLeases } from '../src/cluster/conversation-leases.js';
import { connectRedis, redactRedisUrl } from '../src/cluster/redis-connection.js';
import { RedisTtsStore } from '../src/cluster/redis-tts-store.js';
import { SharedRateLimit } from '../src/cluster/shared-rate-limit.js';
import { Communicator } from '../src/communicator.js';
import { ConfigError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';
import type { SynthesizeOptions } from '../src/tts/tts-engine.js';
import { redisServerAvailable, startRedis, type TestRedis } from './support/redis-server.js';

/** The Redis building blocks of several app instances, against a real redis-server. */
const run = redisServerAvailable('cluster-redis.test.ts');

describe.runIf(run)('shared state in Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const leases: ConversationLeases[] = [];

  async function client(): Promise<Redis> {
    const c = await connectRedis(redis.url, silentLogger);
    clients.push(c);
    return c;
  }

  async function instance(id: string, options: { leaseMs?: number; ackWaitMs?: number } = {}) {
    const l = new ConversationLeases({
      redis: await client(),
      instanceId: id,
      logger: silentLogger,
      leaseMs: options.leaseMs ?? 3000,
      ackWaitMs: options.ackWaitMs ?? 200,
    });
    leases.push(l);
    return l;
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) l.close();
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('connects, and names an unreachable or malformed Redis without leaking its password', async () => {
    const c = await client();
    expect(await c.ping()).toBe('PONG');
    await expect(connectRedis('http://x', silentLogger)).rejects.toThrow(ConfigError);
    const refused = connectRedis('redis://user:s3cret@127.0.0.1:1', silentLogger, 500);
    await expect(refused).rejects.toThrow(/not reachable/);
    await expect(refused).rejects.not.toThrow(/s3cret/);
    expect(redactRedisUrl('redis://user:s3cret@h:1/0')).toBe('redis://user:***@h:1/0');
  });

  it('three instances see the same texts: the first takes the conversation, each text is handled once', async () => {
    const [a, b, c] = [await instance('a'), await instance('b'), await instance('c')];
    const conv = a.conversationKey('1000', 'alice');
    // Every instance receives every text (all subscribed to the endpoint); each routes it.
    for (let n = 1; n <= 5; n++) {
      const routes = await Promise.all([a, b, c].map((x) => x.route(conv, `m${n}`)));
      expect(routes.filter((r) => r.handle)).toHaveLength(1);
    }
    // The first one to see a text of a free conversation owns it, and keeps it.
    const first = await Promise.all([a.route(conv, 'm6'), b.route(conv, 'm6')]);
    expect(first.map((r) => r.handle).filter(Boolean)).toHaveLength(1);
  });

  it('an owner that stops taking texts loses the conversation to the next instance, which is told it took over', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const conv = a.conversationKey('1000', 'bob');
    expect(await a.route(conv, 'x1')).toEqual({ handle: true, tookOver: false });
    await a.hold(conv, () => {});
    // a "dies": it renews its lease no more and never sees the next text.
    a.close();
    expect(await b.route(conv, 'x2')).toEqual({ handle: true, tookOver: true });
    // From now on b owns it: its texts route to b at once.
    expect(await b.route(conv, 'x3')).toEqual({ handle: true, tookOver: false });
  });

  it('a live owner that was slow loses the lease, and is told so by its heartbeat', async () => {
    const a = await instance('a', { leaseMs: 300 });
    const b = await instance('b', { leaseMs: 300, ackWaitMs: 50 });
    const conv = a.conversationKey('2000', 'carol');
    expect((await a.route(conv, 'y1')).handle).toBe(true);
    let lostResolve!: () => void;
    const lost = new Promise<void>((resolve) => {
      lostResolve = resolve;
    });
    expect(await a.hold(conv, lostResolve)).toBe(true);
    // b sees a text that a (busy) never claims: b takes over; a's next renewal finds it gone.
    expect(await b.route(conv, 'y2')).toEqual({ handle: true, tookOver: true });
    await lost;
    expect((await a.route(conv, 'y2')).handle).toBe(false);
  });

  it('a released conversation is free for anyone', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const conv = a.conversationKey('1000', 'dave');
    await a.route(conv, 'z1');
    await a.hold(conv, () => {});
    await a.release(conv);
    expect(await b.route(conv, 'z2')).toEqual({ handle: true, tookOver: false });
  });

  it('keeps a bounded history per conversation', async () => {
    const history = new ConversationHistory({ redis: await client(), limit: 3 });
    const conv = 'asteramisk:conv:1000:erin';
    for (const [i, body] of ['one', 'two', 'three', 'four'].entries()) {
      await history.append(conv, { from: i % 2 ? 'app' : 'peer', body, at: i });
    }
    expect((await history.read(conv)).map((e) => e.body)).toEqual(['two', 'three', 'four']);
    await history.clear(conv);
    expect(await history.read(conv)).toEqual([]);
  });

  it('a TTS cache in Redis: two instances asking for a prompt at once synthesize it once', async () => {
    let engineCalls = 0;
    const engine = () => {
      const inner = new OfflineTtsEngine({ msPerChar: 5 });
      return {
        name: 'counting',
        async synthesize(text: string, options?: SynthesizeOptions) {
          engineCalls++;
          // Slow enough that the second instance asks while the first one synthesizes.
          await new Promise((resolve) => setTimeout(resolve, 150));
          return inner.synthesize(text, options);
        },
      };
    };
    const x = new CachedTts(engine(), { shared: new RedisTtsStore(await client()) });
    const y = new CachedTts(engine(), { shared: new RedisTtsStore(await client()) });
    const [a, b] = await Promise.all([x.speak('Welcome to the fleet.'), y.speak('Welcome to the fleet.')]);
    expect(engineCalls).toBe(1);
    expect(b).toEqual(a);
    expect(x.stats().sharedHits + y.stats().sharedHits).toBe(1);
    // A third instance later: from Redis, no synthesis.
    const z = new CachedTts(engine(), { shared: new RedisTtsStore(await client()) });
    expect(await z.speak('Welcome to the fleet.')).toEqual(a);
    expect(engineCalls).toBe(1);
    expect(z.stats()).toMatchObject({ sharedHits: 1, synthCalls: 0 });
  });

  it('a rate limit holds across instances: at most N sends per window, in reservation order', async () => {
    const limit = { messages: 3, perMs: 2000 };
    const x = new SharedRateLimit(await client(), limit);
    const y = new SharedRateLimit(await client(), limit);
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) waits.push(await (i % 2 ? x : y).reserve('+15550001'));
    // The first three go at once; the next three wait for the window; the seventh for the next.
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    for (const w of waits.slice(3, 6)) expect(w).toBeGreaterThan(1000);
    expect(waits[6]).toBeGreaterThan(3000);
    // In order: no reservation is earlier than the one before it.
    for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1]! - 50);
    // Another recipient is not affected.
    expect(await x.reserve('+15550002')).toBe(0);
  });
});

describe.runIf(run)('a text rate limit held by two instances together', () => {
  it('two Communicators texting one recipient send at most N per window between them, none dropped', async () => {
    const redis = await startRedis();
    const sim = await Simulator.start();
    const limit = { messages: 3, perMs: 1500 };
    const sentAt: number[] = [];
    sim.onSentText((t) => {
      if (t.toUser === '+15550300') sentAt.push(Date.now());
    });
    const communicators: Communicator[] = [];
    try {
      for (const id of ['x', 'y']) {
        communicators.push(
          await Communicator.create({
            ...sim.connectionOptions(),
            appName: `rate-${id}`,
            logger: silentLogger,
            tts: false,
            stt: false,
            textRateLimit: limit,
            cluster: { redis: redis.url, instanceId: id },
          }),
        );
      }
      await Promise.all(
        communicators.map(async (c, i) => {
          const ui = await c.makeText('+15550300', { from: `100${i}` });
          for (let n = 0; n < 3; n++) await ui.say(`text ${n} from ${i}`);
        }),
      );
      expect(sentAt).toHaveLength(6);
      // Any 3 + 1 consecutive sends span at least the window (Redis's clock, read here: 50 ms slack).
      for (let i = 0; i + limit.messages < sentAt.length; i++) {
        expect(sentAt[i + limit.messages]! - sentAt[i]!).toBeGreaterThanOrEqual(limit.perMs - 50);
      }
    } finally {
      for (const c of communicators) await c.close();
      await sim.close();
      await redis.stop();
    }
  }, 20_000);
});
