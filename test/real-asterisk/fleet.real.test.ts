import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AriClient } from '../../src/asterisk/ari-client.js';
import { type FleetInstance, startFleetInstance } from '../support/fleet-process.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { ariPass, ariPort, ariUser, host, realConnectionOptions, sipProxy } from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * Two app instances of one fleet, each in its own process, sharing the calls sipp places through a
 * real Asterisk 22: the calls are spread between them (the first live instance moves calls to the
 * least loaded with ARI's channel move); one instance is SIGKILLed: Asterisk keeps its calls in
 * Stasis, the other instance ends them, and takes every new call.
 */
const haveSipp = sippAvailable();
const run = realAsteriskAvailable('fleet.real.test.ts', {
  ok: haveSipp,
  needs: 'sipp on the PATH (Debian: apt-get install sip-tester)',
});
const NUMBER = '2170';
/** A fleet name of this run: a killed instance's app stays listed on the PBX for good. */
const FLEET = `realfleet${process.pid}`;

describe.runIf(run)('a fleet of two instances on a real Asterisk', () => {
  let spy: AriClient;
  const instances: FleetInstance[] = [];
  const phones: SippPhone[] = [];

  /** Channels each fleet app holds now. */
  async function loads(): Promise<Map<string, string[]>> {
    const apps = await spy.applications.list();
    return new Map(apps.filter((a) => a.name.startsWith(`${FLEET}.`)).map((a) => [a.name, a.channel_ids]));
  }

  async function until<T>(
    what: string,
    read: () => Promise<T>,
    ok: (v: T) => boolean,
    ms = 20_000,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await read();
      if (ok(value)) return value;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}: ${JSON.stringify(value, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v))}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  beforeAll(async () => {
    spy = new AriClient({
      url: `http://${host}:${ariPort}`,
      username: ariUser,
      password: ariPass,
      app: `realfleet-spy-${process.pid}`,
    });
    await spy.connect();
    for (const id of ['a', 'b']) {
      instances.push(
        await startFleetInstance(id, realConnectionOptions(), {
          ASTERAMISK_TEST_NUMBER: NUMBER,
          ASTERAMISK_TEST_FLEET_NAME: FLEET,
          ASTERAMISK_TEST_FLEET_REFRESH_MS: '1000',
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    // sipp killed sends no BYE: end what is left of this run's calls on the PBX.
    for (const ids of (await loads().catch(() => new Map<string, string[]>())).values()) {
      for (const id of ids) await spy.channels.hangup(id).catch(() => {});
    }
    for (const phone of phones) await phone.dispose();
    for (const instance of instances) await instance.kill();
    await spy?.close();
  });

  it('spreads sipp calls over both; a killed instance loses its calls and the other takes the new ones', async () => {
    phones.push(
      await SippPhone.call({ to: NUMBER, proxy: sipProxy, calls: { total: 20, rate: 10, limit: 20 } }),
    );
    const spread = await until(
      '20 calls held by the fleet',
      loads,
      (m) => [...m.values()].reduce((n, c) => n + c.length, 0) >= 20,
    );
    const counts = Object.fromEntries([...spread].map(([app, ids]) => [app, ids.length]));
    console.info(`real fleet: calls per instance ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort()).toEqual([`${FLEET}.a`, `${FLEET}.b`]);
    for (const n of Object.values(counts)) expect(n).toBeGreaterThanOrEqual(5);

    // Kill b: Asterisk keeps its channels in Stasis; a ends them.
    const theirs = spread.get(`${FLEET}.b`)!;
    const ours = spread.get(`${FLEET}.a`)!;
    await instances[1]!.kill();
    await until(
      "b's calls to end",
      async () => new Set((await spy.channels.list()).map((c) => c.id)),
      (live) => theirs.every((id) => !live.has(id)),
    );
    const live = new Set((await spy.channels.list()).map((c) => c.id));
    expect(ours.every((id) => live.has(id))).toBe(true);

    // New calls: all to a.
    phones.push(
      await SippPhone.call({ to: NUMBER, proxy: sipProxy, calls: { total: 5, rate: 10, limit: 5 } }),
    );
    const after = await until(
      '5 more calls on a',
      loads,
      (m) => (m.get(`${FLEET}.a`)?.length ?? 0) >= ours.length + 5,
    );
    // Asterisk keeps listing the dead b (it was subscribed to the PJSIP endpoints), with no call.
    expect(after.get(`${FLEET}.b`) ?? []).toEqual([]);
  }, 90_000);
});
