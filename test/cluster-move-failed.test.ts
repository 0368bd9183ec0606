import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatVariable } from '../src/cluster/call-dispatch.js';
import type { AriRequestEvent } from '../src/sandbox/ari-server.js';
import type { SimPhone } from '../src/sandbox/sim-phone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { type FleetInstance, startFleetInstance } from './support/fleet-process.js';
import { type RawAri, rawAri } from './support/raw-ari.js';

/**
 * The window right after an instance of a fleet dies: its websocket is gone, but its heartbeat has
 * not yet gone stale in the others' eyes, and once a survivor has ended its calls Asterisk lists it
 * with no channel (an app subscribed to endpoints stays listed), the least loaded of all. Calls the
 * receiving instance moves there fail (ApplicationMoveFailed); they must go to the next least
 * loaded instance, not pile up on the receiving one.
 */
describe('a fleet member that is listed, beating, and gone', () => {
  let sim: Simulator;
  const instances: FleetInstance[] = [];
  const phones: SimPhone[] = [];
  let control: RawAri;

  beforeAll(async () => {
    sim = await Simulator.start();
    const { ariUser, ariPassword } = sim.credentials;
    control = await rawAri(sim.ariUrl, ariUser, ariPassword, 'control');
  }, 30_000);

  afterAll(async () => {
    for (const phone of phones) await phone.hangup();
    for (const instance of instances) await instance.kill();
    control?.close();
    await sim?.close();
  });

  const appOf = (phone: SimPhone) => phone.channel.stasisApp ?? '';
  async function call(from: string): Promise<SimPhone> {
    const phone = await sim.call({ from, to: '1000' });
    phones.push(phone);
    await phone.waitForAnswer();
    return phone;
  }

  it('calls picked for it go to the next least loaded instance', async () => {
    // refreshMs 2000: a member whose heartbeat stops is dead 6 s after a last saw it move.
    const env = { ASTERAMISK_TEST_FLEET_REFRESH_MS: '2000', MAX_CONCURRENT_CALLS: '1000' };
    // Instance a alone takes 10 calls: more than c can reach below (2 × 4 for calls sent to it).
    instances.push(await startFleetInstance('a', sim, env));
    const first: SimPhone[] = [];
    for (let i = 0; i < 10; i++) first.push(await call(`+155504000${String(i).padStart(2, '0')}`));
    expect(first.map(appOf)).toEqual(Array(10).fill('fleet.a'));

    // Instance c joins with none; fleet.z joins, subscribed to endpoints, and its websocket goes:
    // listed with no channel, its heartbeat written once, so a takes it for alive for 6 s.
    instances.push(await startFleetInstance('c', sim, env));
    const { ariUser, ariPassword } = sim.credentials;
    const z = await rawAri(sim.ariUrl, ariUser, ariPassword, 'fleet.z');
    await z.rest('POST', '/applications/fleet.z/subscription', { eventSource: 'endpoint:PJSIP' });
    z.close();
    await control.rest('POST', '/asterisk/variable', { variable: heartbeatVariable('fleet.z'), value: '1' });
    const listed = await control.rest('GET', '/applications');
    expect((listed.json as { name: string }[]).map((a) => a.name)).toContain('fleet.z');
    // Only a reads c's heartbeat. The second read of it from now on belongs to a fleet read that
    // started after z was listed: a then knows c and z, both with no channel.
    await new Promise<void>((resolve) => {
      let reads = 0;
      const onRead = (r: AriRequestEvent) => {
        if (r.method !== 'GET' || r.query.variable !== heartbeatVariable('fleet.c') || ++reads < 2) return;
        sim.pbx.off('ari-request', onRead);
        resolve();
      };
      sim.pbx.on('ari-request', onRead);
    });

    // Four calls at once: a (first in the dialplan) sends them to the least loaded, c or z; the
    // moves to z fail, and those calls go to c, which still holds fewer than a.
    const moves: string[] = [];
    const onRequest = (r: AriRequestEvent) => {
      if (r.method === 'POST' && r.path.endsWith('/move')) moves.push(r.query.app ?? '');
    };
    sim.pbx.on('ari-request', onRequest);
    const after = await Promise.all(Array.from({ length: 4 }, (_, i) => call(`+1555041000${i}`)));
    sim.pbx.off('ari-request', onRequest);
    expect(after.map(appOf)).toEqual(Array(4).fill('fleet.c'));
    // The scenario happened: some moves went to z first (and failed), then to c.
    expect(moves).toContain('fleet.z');
    expect(moves.filter((app) => app === 'fleet.c')).toHaveLength(4);
  }, 60_000);
});
