/**
 * Floods: a caller who sends 10,000 DTMF keys, and a sender who sends 10,000 texts, as fast as the
 * simulator can produce them, to a Server that serves other people at the same time. The flood is
 * cut to the limits of input-limits.ts (counted, one warning), its queues stay bounded, and the
 * other call and conversation behave exactly as without it.
 */

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LogFields, Logger } from '../src/logger.js';
import { DigitBuffer } from '../src/ui/digit-buffer.js';
import {
  DTMF_BURST,
  MAX_BUFFERED_DIGITS,
  MAX_QUEUED_TEXTS,
  TEXT_BURST,
  TokenBucket,
} from '../src/ui/input-limits.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import { deferred, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';
import { within } from './support/within.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function capture(): { logger: Logger; lines: { level: string; message: string; fields: LogFields }[] } {
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const at = (level: string) => (fields: LogFields, message?: string) => {
    lines.push({ level, message: message ?? '', fields });
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** Lets queued I/O (the flood's events) be handled between two bursts. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('input limits', () => {
  it('TokenBucket passes a burst, then the sustained rate, on the monotonic clock', () => {
    const bucket = new TokenBucket(3, 2, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true); // 2 a second: one token every 500 ms
    expect(bucket.full(500)).toBe(false);
    expect(bucket.full(2000)).toBe(true);
    expect(bucket.take(1_000_000)).toBe(true);
    expect([bucket.take(1_000_000), bucket.take(1_000_000), bucket.take(1_000_000)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('DigitBuffer keeps the newest MAX_BUFFERED_DIGITS keys and says when it dropped one', () => {
    const buffer = new DigitBuffer();
    const kept: boolean[] = [];
    for (let i = 0; i < MAX_BUFFERED_DIGITS + 10; i++) kept.push(buffer.push(String(i % 10)));
    expect(buffer.size).toBe(MAX_BUFFERED_DIGITS);
    expect(kept.filter((k) => !k).length).toBe(10);
    expect(kept.slice(0, MAX_BUFFERED_DIGITS).every(Boolean)).toBe(true);
  });
});

describe('a DTMF flood on one call', () => {
  it('is cut to the rate limit while another call on the same Server gathers and speaks normally', async () => {
    const log = capture();
    h = await startVoiceHarness({ server: { logger: log.logger } });
    const flooder = deferred<VoiceUI>();
    const floodOver = deferred<void>();
    const normal = deferred<{ code: string; dropped: number }>();
    await h.server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        if (ui.remoteNumber === 'alice') {
          flooder.resolve(ui);
          await floodOver.promise; // reads no key meanwhile: they pile up as type-ahead
          return;
        }
        const code = await ui.gather('Enter your code', { numDigits: 4, timeout: 30 });
        await ui.say(`Code ${code}`);
        normal.resolve({ code, dropped: ui.dtmfStats.dropped });
      },
    });

    const alice = await h.sim.call({ from: 'alice', to: '1000' });
    const floodUi = await within(flooder.promise, 5000, 'the flooding call');
    const FLOOD = 10_000;
    const keys = '1234567890*#ABCD';
    const flood = (async () => {
      for (let sent = 0; sent < FLOOD; sent++) {
        // Each key with its own duration: two identical events within a second would be one
        // event delivered twice (see AriClient's duplicate filter), not a flood.
        await alice.press(keys[sent % keys.length]!, { gapMs: 0, durationMs: 40 + sent });
        if (sent % 500 === 499) await turn();
      }
    })();

    // Meanwhile Bob calls, hears the prompt, types his code at a person's pace.
    const bob = await h.sim.call({ from: 'bob', to: '1000' });
    await within(bob.waitForAudio(10), 10_000, "Bob's prompt");
    await bob.press('4321');
    const result = await within(normal.promise, 20_000, "Bob's gather and say");
    await flood;
    // No event marks a dropped key: poll the counter until the last key of the flood is in.
    await vi.waitFor(() => expect(floodUi.dtmfStats.received).toBe(FLOOD), { timeout: 10_000, interval: 10 });

    expect(result).toEqual({ code: '4321', dropped: 0 });
    expect(h.tts.said).toContain('Code 4321');
    const stats = floodUi.dtmfStats;
    expect(stats.received).toBe(FLOOD);
    const accepted = stats.received - stats.dropped;
    // The burst, plus 20 a second for however long the flood took (far less than 100 s).
    expect(accepted).toBeGreaterThanOrEqual(DTMF_BURST);
    expect(accepted).toBeLessThan(DTMF_BURST + 2000);
    expect(stats.buffered).toBeLessThanOrEqual(MAX_BUFFERED_DIGITS);
    expect(stats.buffered + stats.overflowed).toBe(accepted);
    const warnings = log.lines.filter((l) => l.message.startsWith('DTMF flood'));
    expect(warnings.length).toBe(1);
    expect(warnings[0]!.fields.call).toBe(floodUi.channelId);
    expect(warnings[0]!.level).toBe('warn');
    floodOver.resolve();
    await within(alice.ended(), 5000, 'the flooding call to end');
  }, 30_000);
});

describe('a text flood from one sender', () => {
  it('is cut to the rate limit, its conversation queue stays bounded, another sender is served normally', async () => {
    const log = capture();
    h = await startVoiceHarness({
      server: { logger: log.logger, textRateLimit: { messages: 1000, perMs: 1000 } },
    });
    const floodSent = deferred<void>();
    const drained = deferred<string[]>();
    await h.server.registerExtension('2000', {
      text: async (ui) => {
        if (ui.remoteNumber === 'alice') {
          await floodSent.promise; // reads nothing meanwhile: texts queue up
          const got: string[] = [];
          // Drains what is queued: a queued text is returned at once, the first empty read ends it.
          for (
            let text = await ui.prompt('', { timeout: 0 });
            text !== '';
            text = await ui.prompt('', { timeout: 0 })
          ) {
            got.push(text);
          }
          drained.resolve(got);
          return;
        }
        const name = await ui.prompt(`Hello ${ui.remoteNumber}, your name?`);
        await ui.say(`Thanks ${name}`);
      },
    });
    let rateDeclined = 0;
    const otherDeclines: unknown[] = [];
    h.server.on('textDeclined', (info) => {
      if (info.reason === 'over the inbound text rate' && info.from === 'alice') rateDeclined++;
      else otherDeclines.push(info);
    });

    const sim = h.sim;
    const FLOOD = 10_000;
    const flood = (async () => {
      for (let i = 0; i < FLOOD; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, k) =>
            sim.sendText({ from: 'alice', to: '2000', body: `m${i + k}` }),
          ),
        );
        await turn();
      }
    })();
    // Bob's conversation runs during the flood.
    await sim.sendText({ from: 'bob', to: '2000', body: 'hi' });
    const bobReply = async () =>
      (
        await within(
          sim.nextSentText((t) => t.toUser === 'bob'),
          10_000,
          'a reply to Bob',
        )
      ).body;
    expect(await bobReply()).toBe('Hello bob, your name?');
    await sim.sendText({ from: 'bob', to: '2000', body: 'Bob' });
    expect(await bobReply()).toBe('Thanks Bob');
    await flood;

    // A barrier: texts reach the Server in order on one websocket and are routed as they come, so
    // once Bob's next text is answered, every text of the flood has been taken or declined.
    await sim.sendText({ from: 'bob', to: '2000', body: 'again' });
    expect(await bobReply()).toBe('Hello bob, your name?');
    const taken = () => FLOOD - rateDeclined;
    floodSent.resolve();
    const got = await within(drained.promise, 5000, 'the flooded conversation to drain');
    expect(otherDeclines).toEqual([]);
    expect(taken()).toBeGreaterThanOrEqual(TEXT_BURST);
    expect(taken()).toBeLessThan(TEXT_BURST + 100);
    // The first text opened the conversation (firstMessage); the rest queued, newest kept.
    expect(got.length).toBe(Math.min(taken() - 1, MAX_QUEUED_TEXTS));
    const numbers = got.map((t) => Number(t.slice(1)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    const warnings = log.lines.filter((l) => l.message.startsWith('text flood'));
    expect(warnings.length).toBe(1);
    expect(warnings[0]!.fields).toMatchObject({ from: 'alice', to: '2000' });
    // Thousands of texts, a handful of log lines.
    expect(log.lines.filter((l) => l.level !== 'debug').length).toBeLessThan(60);
  }, 30_000);
});
