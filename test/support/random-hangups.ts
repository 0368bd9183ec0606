import type { AriRequestEvent } from '../../src/sandbox/ari-server.js';
import type { SimPhone } from '../../src/sandbox/sim-phone.js';
import type { Simulator } from '../../src/sandbox/simulator.js';
import type { Server } from '../../src/server.js';
import type { VoiceUI } from '../../src/ui/voice-ui.js';

/** The number {@link randomHangupRun} serves. */
export const FLOW_NUMBER = '4000';
/** Where the flow transfers to (a context of the simulated dialplan that answers and hangs up). */
export const TRANSFER_TARGET = { context: 'random-hangup-elsewhere', extension: 'desk' };

/** A deterministic pseudo-random generator (mulberry32), so a failing run can be replayed by its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The handler under test: every verb that makes ARI requests or waits on the caller, so a hang-up
 * can land between any two of them: answer, the media set-up (bridge, externalMedia leg, joins),
 * say over RTP, gather, then a recording, a transfer or a playback depending on the key.
 */
export async function flowHandler(ui: VoiceUI): Promise<void> {
  await ui.answer();
  await ui.say('Hello');
  const key = await ui.gather('Press a key', { numDigits: 1, timeout: 1 });
  if (key === '1') await ui.record({ maxLength: 1, timeout: 0.3, playBeep: true });
  else if (key === '2') await ui.transfer(TRANSFER_TARGET);
  else await ui.play('sound:beep');
  await ui.say('Bye');
}

/** How a call of {@link randomHangupRun} ended, for the summary. */
export type HangupMoment = 'at-request' | 'at-time' | 'never';

/**
 * Places `calls` calls into {@link FLOW_NUMBER}, `concurrency` at a time. Each caller hangs up at
 * a random moment: with some probability at a random ARI request that concerns its call (just
 * before the PBX carries it out: between the requests of the media set-up, during the bridge
 * join, a recording, a transfer), otherwise after a random time, or not at all. Returns how many
 * calls ended each way and which requests were interrupted.
 */
export async function randomHangupRun(options: {
  sim: Simulator;
  server: Server;
  calls: number;
  concurrency: number;
  seed: number;
}): Promise<{ moments: Record<HangupMoment, number>; interrupted: Record<string, number> }> {
  const { sim, calls, concurrency } = options;
  const random = seededRandom(options.seed);
  const moments: Record<HangupMoment, number> = { 'at-request': 0, 'at-time': 0, never: 0 };
  const interrupted: Record<string, number> = {};
  /** Per live caller channel: after how many of its requests it hangs up. */
  const plans = new Map<string, { phone: SimPhone; remaining: number }>();
  const callerOf = (event: AriRequestEvent): string | undefined => {
    if (event.channelId && plans.has(event.channelId)) return event.channelId;
    const bridgeId = event.params.bridgeId;
    const name = bridgeId ? sim.pbx.bridges.get(bridgeId)?.name : undefined;
    const owner = name?.startsWith('asteramisk-') ? name.slice('asteramisk-'.length) : undefined;
    return owner && plans.has(owner) ? owner : undefined;
  };
  const onRequest = (event: AriRequestEvent): void => {
    const caller = callerOf(event);
    if (!caller) return;
    const plan = plans.get(caller)!;
    if (--plan.remaining > 0) return;
    plans.delete(caller);
    const kind = `${event.method} ${event.path.replace(/\/[^/]*[0-9a-f]{8}[^/]*/gi, '/:id')}`;
    interrupted[kind] = (interrupted[kind] ?? 0) + 1;
    // Synchronously, before the PBX runs the request: the request then meets a caller who is gone.
    void plan.phone.hangup();
  };
  sim.pbx.on('ari-request', onRequest);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls) {
        next++;
        const phone = await sim.call({ from: random() < 0.5 ? 'alice' : 'bob', to: FLOW_NUMBER });
        const draw = random();
        let moment: HangupMoment;
        if (draw < 0.5) {
          moment = 'at-request';
          plans.set(phone.channelId, { phone, remaining: 1 + Math.floor(random() * 14) });
          void pressLater(phone, random);
        } else if (draw < 0.85) {
          moment = 'at-time';
          void pressLater(phone, random);
          setTimeout(() => void phone.hangup(), Math.floor(random() * 600)).unref();
        } else {
          moment = 'never';
          void pressLater(phone, random);
        }
        moments[moment]++;
        const ended = await Promise.race([
          phone.ended(),
          new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 15_000).unref()),
        ]);
        plans.delete(phone.channelId);
        if (ended === 'stuck') throw new Error(`call ${phone.channelId} (${moment}) never ended`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    sim.pbx.off('ari-request', onRequest);
  }
  return { moments, interrupted };
}

/** The caller presses 1, 2 or 3 (record, transfer, playback) a random moment after the call starts. */
async function pressLater(phone: SimPhone, random: () => number): Promise<void> {
  const key = String(1 + Math.floor(random() * 3));
  await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 400)).unref());
  if (!phone.hungUp) await phone.press(key);
}
