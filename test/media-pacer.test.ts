import { describe, expect, it } from 'vitest';
import { type PacedStream, Pacer, type TickInfo } from '../src/media/pacer.js';
import { SimulatedClock } from './support/simulated-clock.js';

/** A deterministic pseudo-random sequence (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A simulated clock whose next timer fires `ms` late after `stallNext(ms)` (a blocked event loop). */
function stallingClock(): { clock: SimulatedClock; stallNext: (ms: number) => void } {
  let stall = 0;
  const clock = new SimulatedClock(() => {
    const late = stall;
    stall = 0;
    return late;
  });
  return { clock, stallNext: (ms) => (stall = ms) };
}

/** A stream that counts its ticks and checks it is never called twice in one tick. */
class CountingStream implements PacedStream {
  calls = 0;
  ticks = new Set<number>();
  twice = 0;
  onTick(tick: number): void {
    this.calls++;
    if (this.ticks.has(tick)) this.twice++;
    this.ticks.add(tick);
  }
}

describe('Pacer', () => {
  it('gives every registered stream exactly one call per tick, every 20 ms', async () => {
    // One slot: all five streams on the same tick, which the observer sees ten times.
    const pacer = new Pacer({ slots: 1 });
    const streams = Array.from({ length: 5 }, () => new CountingStream());
    const ticks: TickInfo[] = [];
    const tenTicks = new Promise<void>((resolve) => {
      const off = pacer.observe((info) => {
        ticks.push(info);
        if (ticks.length === 10) {
          off();
          resolve();
        }
      });
    });
    for (const s of streams) pacer.add(s);
    await tenTicks;
    for (const s of streams) pacer.remove(s);
    expect(pacer.running).toBe(false);
    for (const s of streams) {
      expect(s.calls).toBe(10);
      expect(s.twice).toBe(0);
    }
    // Tick k is scheduled for origin + 20k ms.
    const origin = ticks[0]!.idealMs;
    for (const [k, t] of ticks.entries()) expect(t.idealMs).toBeCloseTo(origin + 20 * k, 6);
  });

  it("warms every stream of a tick before the first onTick, hands them the tick's start, and survives a throwing warm()", () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock, slots: 1 });
    const events: string[] = [];
    const nows: { dueAt: number; now: number }[] = [];
    const stream = (name: string, warm: () => number): PacedStream => ({
      warm: () => {
        events.push(`warm ${name}`);
        return warm();
      },
      onTick: (_tick, dueAt, now) => {
        events.push(`tick ${name}`);
        nows.push({ dueAt, now });
      },
    });
    const a = stream('a', () => 1);
    const b = stream('b', () => 2);
    pacer.add(a);
    pacer.add(b);
    clock.runUntil(clock.time + 20);
    expect(events.slice(-4)).toEqual(['warm a', 'warm b', 'tick a', 'tick b']);
    for (const { dueAt, now } of nows) expect(now).toBeGreaterThanOrEqual(dueAt);
    // A warm() that throws ends the pass, not the tick: both streams still tick.
    const c = stream('c', () => {
      throw new Error('cold');
    });
    pacer.add(c);
    events.length = 0;
    clock.runUntil(clock.time + 20);
    expect(events.filter((e) => e.startsWith('tick'))).toEqual(['tick a', 'tick b', 'tick c']);
    for (const s of [a, b, c]) pacer.remove(s);
  });

  it('runs only while a stream is registered and starts with a tick at once', () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock });
    expect(clock.pending).toBe(0);
    const stream = new CountingStream();
    pacer.add(stream);
    expect(pacer.running).toBe(true);
    clock.runUntil(clock.time);
    expect(stream.calls).toBe(1);
    clock.runUntil(clock.time + 100);
    expect(stream.calls).toBe(6);
    pacer.remove(stream);
    expect(pacer.running).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('tells each stream when its tick was due, on the clock now() reads', () => {
    // Timers fire 3 ms late: `dueAt` is still the ideal time, never the late one.
    const clock = new SimulatedClock(() => 3);
    const pacer = new Pacer({ clock });
    expect(pacer.now()).toBe(clock.time);
    const start = clock.time;
    const seen: { dueAt: number; now: number }[] = [];
    const stream: PacedStream = { onTick: (_tick, dueAt) => seen.push({ dueAt, now: pacer.now() }) };
    pacer.add(stream);
    clock.runUntil(start + 65);
    pacer.remove(stream);
    expect(seen.map((s) => s.dueAt - start)).toEqual([0, 20, 40, 60]);
    for (const s of seen) expect(s.now - s.dueAt).toBe(3);
  });

  it('a stream that unregisters inside its tick is called no more, and the clock stops', () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock });
    let calls = 0;
    const once: PacedStream = {
      onTick: () => {
        calls++;
        pacer.remove(once);
      },
    };
    pacer.add(once);
    clock.runUntil(clock.time + 200);
    expect(calls).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('within a tick, skips a stream another one removed, and starts one added from the next tick', () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock, slots: 1 });
    const order: string[] = [];
    const late = new CountingStream();
    const added = new CountingStream();
    // Ticks 0 and 1 run as the set left them; on tick 2 `first` removes `late` and adds `added`.
    let ticks = 0;
    const first: PacedStream = {
      onTick: () => {
        order.push(`first ${ticks}`);
        if (ticks++ === 2) {
          pacer.remove(late);
          pacer.add(added);
        }
      },
    };
    pacer.add(first);
    pacer.add(late);
    clock.runUntil(clock.time + 20 * 4);
    expect(ticks).toBe(5);
    expect(late.calls).toBe(2);
    // Not on tick 2, where it was added; on ticks 3 and 4.
    expect(added.calls).toBe(2);
    expect(added.twice).toBe(0);
    pacer.remove(first);
    pacer.remove(added);
    expect(pacer.running).toBe(false);
  });

  it("counts the relayed ticks of the media worker's clock: lateness, and skips from jumps in tick numbers", () => {
    const pacer = new Pacer({ clock: new SimulatedClock() });
    const seen: TickInfo[] = [];
    pacer.observe((t) => seen.push(t));
    for (const [tick, late] of [
      [0, 0],
      [1, 3],
      [2, 0],
      [5, 12],
      [6, 1],
      // The worker's clock stopped (no call) and started again: not a skip.
      [0, 0],
      [1, 0],
    ] as const) {
      pacer.relay({ tick, idealMs: 1000 + tick * 20, actualMs: 1000 + tick * 20 + late });
    }
    expect(seen.map((t) => t.tick)).toEqual([0, 1, 2, 5, 6, 0, 1]);
    expect(pacer.stats).toMatchObject({ ticks: 7, skippedTicks: 2, maxLatenessMs: 12, lastLatenessMs: 0 });
    // The clock of this thread never ran.
    expect(pacer.running).toBe(false);
  });

  it('catches up at most two ticks after a stall and skips the rest', () => {
    const { clock, stallNext } = stallingClock();
    const pacer = new Pacer({ clock });
    const stream = new CountingStream();
    const bursts: number[] = [];
    let lastActual = -1;
    pacer.observe((t) => {
      if (t.actualMs === lastActual) bursts[bursts.length - 1]!++;
      else bursts.push(1);
      lastActual = t.actualMs;
    });
    pacer.add(stream);
    clock.runUntil(clock.time + 100);
    stallNext(205); // the event loop blocks for ~10 ticks
    clock.runUntil(clock.time + 600);
    expect(Math.max(...bursts)).toBe(2);
    expect(pacer.stats.skippedTicks).toBeGreaterThanOrEqual(8);
    pacer.remove(stream);
  });

  it('does not drift: after 10 simulated minutes of late timers, ticks are still on the ideal clock', () => {
    const rand = random(42);
    // Timers fire 0–4 ms late, with a 30–80 ms stall about once a minute.
    const clock = new SimulatedClock(() => (rand() < 1 / 3000 ? 30 + rand() * 50 : rand() * 4));
    const pacer = new Pacer({ clock });
    const stream = new CountingStream();
    let last: TickInfo | undefined;
    let worst = 0;
    pacer.observe((t) => {
      last = t;
      worst = Math.max(worst, t.actualMs - t.idealMs);
    });
    const start = clock.time;
    pacer.add(stream);
    const tenMinutes = 10 * 60 * 1000;
    clock.runUntil(start + tenMinutes);
    pacer.remove(stream);
    const expectedTicks = tenMinutes / 20 + 1;
    const { ticks, skippedTicks } = pacer.stats;
    // Every 20 ms slot of the ten minutes was either run or (after a stall) skipped: none lost to drift.
    expect(ticks + skippedTicks).toBeGreaterThanOrEqual(expectedTicks - 1);
    expect(ticks + skippedTicks).toBeLessThanOrEqual(expectedTicks);
    expect(skippedTicks).toBeLessThan(100);
    // The last tick is within one timer lateness of its ideal time, which itself is on the 20 ms grid.
    expect(last!.actualMs - last!.idealMs).toBeLessThan(5);
    expect((last!.idealMs - start) % 20).toBeCloseTo(0, 6);
    expect(last!.idealMs).toBeGreaterThan(start + tenMinutes - 40);
    expect(worst).toBeLessThan(100);
  });

  it('spreads the streams over the slots of the period, each stream on its own 20 ms grid', () => {
    const clock = new SimulatedClock(() => 0);
    // Two streams per slot before the next one opens: 25 streams fill the ten slots.
    const pacer = new Pacer({ clock, slots: 10, slotCapacity: 2 });
    const start = clock.time;
    const seen = new Map<PacedStream, number[]>();
    const streams = Array.from({ length: 25 }, () => {
      const stream: PacedStream = { onTick: (_tick, dueAt) => seen.get(stream)!.push(dueAt) };
      seen.set(stream, []);
      return stream;
    });
    const perTick: number[] = [];
    pacer.observe((t) => perTick.push(t.slot ?? -1));
    for (const s of streams) pacer.add(s);
    clock.runUntil(start + 200);
    const phases = new Map<number, number>();
    for (const dues of seen.values()) {
      expect(dues.length).toBeGreaterThanOrEqual(9);
      for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).toBe(20);
      const phase = (dues[0]! - start) % 20;
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    }
    // Ten phases 2 ms apart, two or three streams each.
    expect([...phases.keys()].sort((a, b) => a - b)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    for (const n of phases.values()) expect([2, 3]).toContain(n);
    // One wake-up per slot tick, each slot in turn.
    expect(perTick.slice(0, 20)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const s of streams) pacer.remove(s);
    expect(clock.pending).toBe(0);
  });

  it('puts a stream that joins a running clock, its slot full, in the empty slot whose tick is furthest away', () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock, slots: 4, slotCapacity: 1 });
    const start = clock.time;
    const dues: number[] = [];
    pacer.add({ onTick: () => {} }); // slot 0: ticks at start + 0, 20, 40…
    clock.runUntil(start + 3);
    // Empty slots 1, 2, 3 are next due at +5, +10, +15: the last is furthest from now (+3).
    pacer.add({ onTick: (_tick, dueAt) => dues.push(dueAt - start) });
    clock.runUntil(start + 60);
    expect(dues).toEqual([15, 35, 55]);
  });

  it('with slots, catches up at most two ticks per slot after a stall, and tick numbers jump over the skipped ones', () => {
    const { clock, stallNext } = stallingClock();
    const pacer = new Pacer({ clock, slots: 5, slotCapacity: 1 });
    const streams = Array.from({ length: 5 }, () => new CountingStream());
    const numbers: number[] = [];
    pacer.observe((t) => numbers.push(t.tick));
    for (const s of streams) pacer.add(s);
    clock.runUntil(clock.time + 100);
    const before = streams.map((s) => s.calls);
    stallNext(205);
    clock.runUntil(clock.time + 1);
    // The stalled wake-up ran at most two ticks of each slot.
    const burst = streams.map((s, i) => s.calls - before[i]!);
    for (const n of burst) expect(n).toBeLessThanOrEqual(2);
    clock.runUntil(clock.time + 400);
    for (let i = 1; i < numbers.length; i++) expect(numbers[i]!).toBeGreaterThan(numbers[i - 1]!);
    const { ticks, skippedTicks } = pacer.stats;
    expect(skippedTicks).toBeGreaterThanOrEqual(5 * 8);
    // Every number was either run or skipped: the jumps add up to the skips.
    expect(numbers.at(-1)! + 1).toBe(ticks + skippedTicks);
    for (const s of streams) expect(s.twice).toBe(0);
    for (const s of streams) pacer.remove(s);
  });

  it('fills a slot up to its capacity before waking up for another: few calls, one wake-up per period', () => {
    const clock = new SimulatedClock(() => 0);
    const pacer = new Pacer({ clock, slots: 10, slotCapacity: 50 });
    const start = clock.time;
    const wakeUps: number[] = [];
    pacer.observe((t) => wakeUps.push(t.idealMs - start));
    const phaseOf = new Map<PacedStream, number>();
    const add = (): PacedStream => {
      const stream: PacedStream = { onTick: (_tick, dueAt) => phaseOf.set(stream, (dueAt - start) % 20) };
      pacer.add(stream);
      return stream;
    };
    const few = Array.from({ length: 3 }, add);
    clock.runUntil(start + 100);
    expect(wakeUps).toEqual([0, 20, 40, 60, 80, 100]);
    expect(new Set(few.map((s) => phaseOf.get(s)))).toEqual(new Set([0]));
    // 57 more: the first slot takes 50 in all, the next 10 go to one more slot.
    const more = Array.from({ length: 57 }, add);
    clock.runUntil(start + 200);
    const counts = new Map<number, number>();
    for (const s of [...few, ...more]) counts.set(phaseOf.get(s)!, (counts.get(phaseOf.get(s)!) ?? 0) + 1);
    expect([...counts.values()].sort((a, b) => a - b)).toEqual([10, 50]);
    for (const s of [...few, ...more]) pacer.remove(s);
  });
});
