import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AriRequestEvent } from '../src/sandbox/ari-server.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { type RawAri, rawAri } from './support/raw-ari.js';

let sim: Simulator;
let ari: RawAri;
const seen: AriRequestEvent[] = [];
const record = (e: AriRequestEvent) => seen.push(e);

beforeAll(async () => {
  sim = await Simulator.start({ timeScale: 0.05 });
  sim.addExtension('asteramisk-call', '1000', 1, 'Stasis', 'hook,1000');
  ari = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'hook');
  sim.pbx.on('ari-request', record);
});

afterAll(async () => {
  sim?.pbx.off('ari-request', record);
  ari?.close();
  await sim?.close();
});

describe("simulator test hook: the Pbx's 'ari-request' event", () => {
  it('fires for a channel operation, with its method, path, channel id and arrival time', async () => {
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await ari.next('StasisStart');
    const before = performance.now();
    seen.length = 0;
    const res = await ari.rest('POST', `/channels/${phone.channelId}/answer`);
    expect(res.status).toBe(204);
    expect(seen).toHaveLength(1);
    const [event] = seen;
    expect(event).toMatchObject({
      method: 'POST',
      path: `/channels/${phone.channelId}/answer`,
      params: { channelId: phone.channelId },
      channelId: phone.channelId,
    });
    expect(event!.receivedAt).toBeGreaterThanOrEqual(before);
    expect(event!.receivedAt).toBeLessThanOrEqual(performance.now());
  });

  it('fires before the operation runs, so a key press → request round trip can be timed', async () => {
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await ari.next('StasisStart');
    await ari.rest('POST', `/channels/${phone.channelId}/answer`);
    let pressedAt = 0;
    const timed = new Promise<{ latency: number; playbacksThen: number }>((resolve) => {
      const listener = (e: AriRequestEvent) => {
        if (e.channelId !== phone.channelId || !e.path.endsWith('/play')) return;
        sim.pbx.off('ari-request', listener);
        resolve({ latency: e.receivedAt - pressedAt, playbacksThen: sim.pbx.playbacks.size });
      };
      sim.pbx.on('ari-request', listener);
    });
    pressedAt = performance.now();
    await phone.press('5');
    await ari.next('ChannelDtmfReceived');
    const res = await ari.rest('POST', `/channels/${phone.channelId}/play`, { media: 'sound:beep' });
    expect(res.status).toBe(201);
    const { latency, playbacksThen } = await timed;
    expect(latency).toBeGreaterThan(0);
    // The playback did not exist yet when the hook fired.
    expect(playbacksThen).toBe(0);
  });

  it('has no channel id for other operations, and stays silent for refused or unknown requests', async () => {
    seen.length = 0;
    expect((await ari.rest('GET', '/asterisk/info')).status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'GET', path: '/asterisk/info', params: {} });
    expect(seen[0]!.channelId).toBeUndefined();

    seen.length = 0;
    expect((await fetch(`${sim.ariUrl}/ari/channels`)).status).toBe(401);
    expect((await ari.rest('GET', '/no/such/resource')).status).toBe(404);
    expect((await ari.rest('PATCH', '/channels')).status).toBe(405);
    expect(seen).toHaveLength(0);
  });
});
