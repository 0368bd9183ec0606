import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimPhone } from '../src/sandbox/sim-phone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { type FleetInstance, startFleetInstance } from './support/fleet-process.js';

/**
 * Calls to one number shared by three app instances of a fleet, each in its own process, on two
 * Asterisk nodes (two simulators; every instance serves both): on each node the first live
 * instance sends each call to the least loaded one; an instance killed with SIGKILL loses its calls
 * on both nodes (the others end them, and retire its dialplan steps), and new calls go to the
 * others.
 */
describe('calls shared by a fleet of three instances × two nodes, in separate processes', () => {
  let nodes: [Simulator, Simulator];
  const instances: FleetInstance[] = [];
  const phones: SimPhone[] = [];

  /** Dials 1000 from `from` on `sim`; resolves with the phone once an instance answered it. */
  async function call(sim: Simulator, from: string): Promise<SimPhone> {
    const phone = await sim.call({ from, to: '1000' });
    phones.push(phone);
    await phone.waitForAnswer();
    return phone;
  }

  const appOf = (phone: SimPhone) => phone.channel.stasisApp ?? '';

  beforeAll(async () => {
    nodes = [await Simulator.start(), await Simulator.start()];
    for (const id of ['a', 'b', 'c'])
      instances.push(
        await startFleetInstance(id, nodes, {
          ASTERAMISK_TEST_FLEET_REFRESH_MS: '500',
          // Room for every call: the spread comes from the dispatch, not from capacity overflow.
          MAX_CONCURRENT_CALLS: '1000',
          ...(process.env.DEBUG_FLEET ? { ASTERAMISK_TEST_LOG: '1' } : {}),
        }),
      );
  }, 60_000);

  afterAll(async () => {
    for (const phone of phones) await phone.hangup();
    for (const instance of instances) await instance.kill();
    for (const sim of nodes ?? []) await sim.close();
  });

  it('300 calls are spread (no instance over 40 %); a killed instance loses its calls, the others take the new ones', async () => {
    const first: SimPhone[] = [];
    for (let batch = 0; batch < 10; batch++) {
      first.push(
        ...(await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            call(nodes[i % 2]!, `+1555030${String(batch * 30 + i).padStart(4, '0')}`),
          ),
        )),
      );
    }
    const counts = new Map<string, number>();
    for (const phone of first) counts.set(appOf(phone), (counts.get(appOf(phone)) ?? 0) + 1);
    // Each instance takes calls on both nodes.
    for (const app of counts.keys()) {
      for (const sim of nodes)
        expect(first.some((p) => appOf(p) === app && sim.phone(p.channelId) === p)).toBe(true);
    }
    console.info(`calls per instance: ${JSON.stringify(Object.fromEntries(counts))}`);
    expect([...counts.keys()].sort()).toEqual(['fleet.a', 'fleet.b', 'fleet.c']);
    for (const n of counts.values()) expect(n).toBeLessThanOrEqual(120);

    // Kill the instance holding the most calls: its calls end, the others' stay up.
    const [victimApp] = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]!;
    const victim = instances.find((i) => `fleet.${i.id}` === victimApp)!;
    const theirs = first.filter((p) => appOf(p) === victimApp);
    const others = first.filter((p) => appOf(p) !== victimApp);
    await victim.kill();
    const killedAt = performance.now();
    await Promise.all(theirs.map((p) => p.ended()));
    const endedMs = performance.now() - killedAt;
    expect(others.filter((p) => p.hungUp)).toEqual([]);
    // The dead instance's dialplan step is taken out by the others (a pass-through or removed).
    const stepsOf1000 = (sim: Simulator) =>
      sim.pbx.dialplan
        .dump()
        .filter((d) => d.exten === '1000')
        .map((d) => `${d.step.app}(${d.step.appData})`);
    // The survivors' AMI writes have no event of their own here: look until the step is gone.
    for (const sim of nodes) {
      while (stepsOf1000(sim).includes(`Stasis(${victimApp},call)`))
        await new Promise((r) => setTimeout(r, 50));
      expect(stepsOf1000(sim).filter((s) => s.startsWith('Stasis('))).toHaveLength(2);
    }

    // New calls go to the survivors.
    const after = await Promise.all(
      Array.from({ length: 30 }, (_, i) => call(nodes[i % 2]!, `+1555031${String(i).padStart(4, '0')}`)),
    );
    const firstNewMs = performance.now() - killedAt;
    for (const phone of after) expect(appOf(phone)).not.toBe(victimApp);
    expect(new Set(after.map(appOf)).size).toBe(2);
    console.info(
      `kill: ${theirs.length} calls of ${victimApp} ended ${endedMs.toFixed(0)} ms after it died; ` +
        `30 new calls answered by the others ${firstNewMs.toFixed(0)} ms after`,
    );
  }, 120_000);
});
