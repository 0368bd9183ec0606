import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SentText } from '../src/sandbox/pbx.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { type FleetInstance, startFleetInstance } from './support/fleet-process.js';
import { redisServerAvailable, startRedis, type TestRedis } from './support/redis-server.js';

/**
 * Texts to one number served by three app instances, each in its own process, sharing a real
 * redis-server: every instance receives every text (as on Asterisk, each subscribes to the
 * endpoints), yet each is answered once, a conversation stays with its instance, and when that
 * instance is killed (SIGKILL) the next text is answered by another one, with the history.
 */
const run = redisServerAvailable('cluster-texts.test.ts');
const ACK_MS = 600;

describe.runIf(run)('texts shared by three instances in separate processes', () => {
  let redis: TestRedis;
  let sim: Simulator;
  const instances: FleetInstance[] = [];
  /** Replies by recipient, in order. */
  const replies = new Map<string, string[]>();
  const waiters: { check: () => boolean; resolve: () => void }[] = [];

  function onSent(text: SentText): void {
    const list = replies.get(text.toUser) ?? [];
    list.push(text.body);
    replies.set(text.toUser, list);
    for (const w of [...waiters]) {
      if (w.check()) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Resolves when `check` holds (checked after every text the instances send). */
  function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  const instanceOf = (reply: string | undefined) => /^\[([^\]]+)\]/.exec(reply ?? '')?.[1];

  async function startInstance(id: string): Promise<FleetInstance> {
    const instance = await startFleetInstance(id, sim, {
      ASTERAMISK_REDIS_URL: redis.url,
      ASTERAMISK_TEST_ACK_MS: String(ACK_MS),
      ASTERAMISK_TEST_LEASE_MS: '3000',
    });
    instances.push(instance);
    return instance;
  }

  beforeAll(async () => {
    redis = await startRedis();
    sim = await Simulator.start();
    sim.onSentText(onSent);
    await Promise.all(['a', 'b', 'c'].map((id) => startInstance(id)));
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.kill();
    await sim?.close();
    await redis?.stop();
  });

  it('100 conversations on one number: each text answered exactly once, each conversation by one instance', async () => {
    const numbers = Array.from({ length: 100 }, (_, i) => `+1555010${String(i).padStart(4, '0')}`);
    await Promise.all(numbers.map((from) => sim.sendText({ from, to: '1000', body: 'hello' })));
    await until(() => numbers.every((n) => (replies.get(n)?.length ?? 0) >= 1), 'the first replies');
    await Promise.all(numbers.map((from) => sim.sendText({ from, to: '1000', body: 'again' })));
    await until(() => numbers.every((n) => (replies.get(n)?.length ?? 0) >= 2), 'the second replies');
    // A duplicate would come from a non-owner that decided the owner had not taken the text: wait
    // out that decision (the ack wait) twice before counting.
    await sleep(ACK_MS * 2 + 200);
    const perInstance = new Map<string, number>();
    for (const n of numbers) {
      const list = replies.get(n)!;
      expect(list, n).toHaveLength(2);
      expect(list[0]).toMatch(/^\[[abc]\] hi hello$/);
      expect(list[1]).toBe(`[${instanceOf(list[0])}] got again`);
      perInstance.set(instanceOf(list[0])!, (perInstance.get(instanceOf(list[0])!) ?? 0) + 1);
    }
    console.info(`texts: conversations per instance ${JSON.stringify(Object.fromEntries(perInstance))}`);
    await Promise.all(numbers.map((from) => sim.sendText({ from, to: '1000', body: 'bye' })));
  }, 90_000);

  it('the owner is killed mid-conversation: the next text is answered by another instance, with the history', async () => {
    const from = '+15550209999';
    await sim.sendText({ from, to: '1000', body: 'hello' });
    await until(() => (replies.get(from)?.length ?? 0) >= 1, 'the greeting');
    await sim.sendText({ from, to: '1000', body: 'one' });
    await until(() => (replies.get(from)?.length ?? 0) >= 2, 'the answer to one');
    const owner = instanceOf(replies.get(from)![0]);
    expect(replies.get(from)![1]).toBe(`[${owner}] got one`);

    await instances.find((i) => i.id === owner)!.kill();

    await sim.sendText({ from, to: '1000', body: 'two' });
    await until(() => (replies.get(from)?.length ?? 0) >= 3, 'an answer after the kill');
    const takeover = replies.get(from)![2]!;
    const heir = instanceOf(takeover);
    expect(heir).not.toBe(owner);
    expect(takeover).toBe(
      `[${heir}] resumed: peer:hello | app:[${owner}] hi hello | peer:one | app:[${owner}] got one`,
    );
    await sim.sendText({ from, to: '1000', body: 'three' });
    await until(() => (replies.get(from)?.length ?? 0) >= 4, 'the next answer');
    expect(replies.get(from)![3]).toBe(`[${heir}] got three`);
    await sleep(ACK_MS * 2 + 200);
    expect(replies.get(from)).toHaveLength(4);
  }, 60_000);
});
