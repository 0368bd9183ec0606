import { afterEach, describe, expect, it } from 'vitest';
import { IVR_NUMBER, ivr, OPERATOR } from '../examples/ivr.js';
import { nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function tone(ms: number): Int16Array {
  return Int16Array.from({ length: ms * 8 }, (_, i) =>
    Math.round(9000 * Math.sin((2 * Math.PI * 350 * i) / 8000)),
  );
}

describe('examples/ivr.ts against the simulator', () => {
  it('balance, submenu with * back, then a voicemail', async () => {
    h = await startVoiceHarness();
    await h.server.registerExtension(IVR_NUMBER, { voice: ivr });
    const ended = nextServerEvent(h.server, 'callEnded');
    const phone = await h.sim.call({ from: 'alice', to: IVR_NUMBER });
    await phone.press('1');
    await phone.press('4711#');
    await phone.press('3');
    await phone.press('*');
    await phone.press('2');
    await phone.waitForMedia('sound:beep');
    await phone.speak(tone(300));
    await phone.press('#');
    const [, outcome] = await ended;
    expect(outcome.error).toBeUndefined();
    expect(h.tts.said.some((t) => t.startsWith('The balance of account 4 7 1 1 is'))).toBe(true);
    expect(h.tts.said).toContain(
      'For weekday hours, press 1. For weekend hours, press 2. Press star to go back.',
    );
    expect(h.tts.said.some((t) => /^Thank you\. Your message of \d+ seconds was saved\./.test(t))).toBe(true);
    expect(h.sim.pbx.storedRecordings.size).toBe(1);
    expect((await phone.ended()).cause).toBe(16);
  });

  it('transfers to the operator without hanging the call up', async () => {
    h = await startVoiceHarness();
    h.sim.addExtension(OPERATOR.context, OPERATOR.extension, 1, 'Answer');
    h.sim.addExtension(OPERATOR.context, OPERATOR.extension, 2, 'Stasis', 'operator-desk,call');
    await h.server.registerExtension(IVR_NUMBER, { voice: ivr });
    const ended = nextServerEvent(h.server, 'callEnded');
    const phone = await h.sim.call({ from: 'bob', to: IVR_NUMBER });
    await phone.press('0');
    const [ui] = await ended;
    expect(await ui.ended).toBe('transferred');
    // The call lives on in the operator's dialplan (its Stasis app is not connected, so it falls
    // through and ends there, not in our handler).
    expect((await phone.ended()).cause).toBe(16);
    expect(h.tts.said).toContain('Transferring you to an operator.');
  });
});
