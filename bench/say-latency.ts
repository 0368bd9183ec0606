/**
 * `ui.say()` → first RTP frame at the caller: the time from calling say() in a handler to the
 * first 20 ms frame of that speech reaching the simulated phone, through the real stack (TTS
 * cache → AudioPlayer on the shared 20 ms pacer → RtpSession → UDP → the simulator's
 * externalMedia leg → bridge → phone). Server and Simulator share this process and one clock;
 * loopback only. Prints, does not assert.
 *
 *   npx tsx bench/say-latency.ts [--says 200] [--calls 20] [--ms-per-char 65] [--in-thread]
 *
 * On one call whose media path is already open:
 * - cold: --says distinct sentences, each said for the first time: a TTS cache miss (a look-up in
 *   the cache folder, a temporary one, then synthesis by the offline engine);
 * - warm: the same sentences again: memory-cache hits;
 * - warm, clock running: the same again while a second call plays continuous audio. The shared
 *   pacer then already ticks, and a say waits for its next 20 ms tick; on an idle clock (the two
 *   passes before) the first frame goes out at once.
 * Then `first say of a call`: --calls new calls, each timed on its first (cached) say, which also
 * sets up the call's media path (bridge, externalMedia channel, RTP port) over ARI.
 * Each say is stopped once its first frame has arrived; says start at random moments, so they land
 * anywhere in the pacer's 20 ms period.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/logger.js';
import { tone } from '../src/media/tone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import type { SynthesizeOptions, TtsEngine } from '../src/tts/tts-engine.js';
import type { VoiceUI } from '../src/ui/voice-ui.js';
import {
  delay,
  describe,
  giveUpAfter,
  machine,
  ms,
  numberFlag,
  runBench,
  summarize,
} from './support/bench-util.js';
import { Ear } from './support/phone-ear.js';

const says = numberFlag('says', 200);
const calls = numberFlag('calls', 20);
const msPerChar = numberFlag('ms-per-char', 65);
const maxSeconds = numberFlag('max-seconds', 120);
const STEP_TIMEOUT_MS = 10_000;

/** The offline engine, timed. */
class TimedTts implements TtsEngine {
  readonly name = 'offline-timed';
  readonly cacheId: string;
  readonly synthMs: number[] = [];
  private readonly inner: OfflineTtsEngine;

  constructor() {
    this.inner = new OfflineTtsEngine({ msPerChar });
    this.cacheId = this.inner.cacheId;
  }

  async synthesize(text: string, options?: SynthesizeOptions): Promise<Int16Array> {
    const started = performance.now();
    const pcm = await this.inner.synthesize(text, options);
    this.synthMs.push(performance.now() - started);
    return pcm;
  }
}

function timeout(what: string): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS).unref();
  });
}

/** Places a call and resolves with its VoiceUI (the handler holds the call until `release`). */
async function openCall(
  sim: Simulator,
  server: Server,
  number: string,
): Promise<{ ui: VoiceUI; ear: Ear; release: () => void }> {
  const started = new Promise<VoiceUI>((resolve) => server.once('callStarted', resolve));
  const phone = await sim.call({ from: 'alice', to: number });
  const ear = new Ear(phone);
  const ui = await Promise.race([started, timeout('the call to start')]);
  await ui.answer();
  let release!: () => void;
  held.set(
    ui,
    new Promise<void>((resolve) => {
      release = resolve;
    }),
  );
  return { ui, ear, release };
}

/** Handlers wait here until the benchmark is done with their call. */
const held = new Map<VoiceUI, Promise<void>>();

/** say(text) → first frame at the phone, in ms; the say is then stopped. */
async function timeSay(ui: VoiceUI, ear: Ear, text: string): Promise<number> {
  const first = ear.nextFrame();
  const started = performance.now();
  const saying = ui.say(text);
  const at = await Promise.race([first, timeout(`the first frame of "${text}"`)]);
  ui.stopSpeaking();
  await saying;
  return at - started;
}

async function main(): Promise<void> {
  giveUpAfter('say-latency', maxSeconds);
  const host = machine();
  console.log(
    `say-latency: ${says} says cold and warm, ${calls} first says; offline TTS ${msPerChar} ms/char, ` +
      `TTS cache in memory + a temporary folder\nmachine: ${host}`,
  );
  const cacheDir = await mkdtemp(join(tmpdir(), 'asteramisk-say-bench-'));
  const sim = await Simulator.start();
  const tts = new TimedTts();
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: `say-bench-${process.pid}`,
    logger: silentLogger,
    tts,
    stt: false,
    ttsCacheDirectory: cacheDir,
    rtpPortMin: 24100,
    rtpPortMax: 24100 + calls + 10,
    // --in-thread: the media on the main thread instead of the media worker (the default).
    mediaWorker: !process.argv.includes('--in-thread'),
  });
  const NUMBER = '3000';
  await server.registerExtension(NUMBER, {
    voice: async (ui) => {
      // The benchmark drives the call from outside; the handler keeps it open until released.
      for (let i = 0; i < 100 && !held.has(ui); i++) await delay(10);
      await held.get(ui);
    },
  });

  try {
    const sentences = Array.from(
      { length: says },
      (_, i) => `Your ticket number is ${i + 1000}. Thank you for calling.`,
    );
    const main = await openCall(sim, server, NUMBER);
    // Opens the media path and warms the code paths, outside the measurement.
    await timeSay(main.ui, main.ear, 'Hello.');
    await timeSay(main.ui, main.ear, 'Hello.');

    const measure = async (label: string): Promise<number[]> => {
      const latencies: number[] = [];
      for (const sentence of sentences) {
        await delay(20 + Math.random() * 40);
        latencies.push(await timeSay(main.ui, main.ear, sentence));
      }
      console.log(`${label.padEnd(46)} ${describe(summarize(latencies))}`);
      return latencies;
    };
    const synthBefore = tts.synthMs.length;
    const cold = await measure('cold (cache miss: offline synthesis)');
    const synthCold = tts.synthMs.slice(synthBefore);
    console.log(`  of which the synthesis itself: ${describe(summarize(synthCold))}`);
    const synthBeforeWarm = tts.synthMs.length;
    const warm = await measure('warm (memory-cache hit)');
    console.log(`  engine calls during the warm pass: ${tts.synthMs.length - synthBeforeWarm}`);
    const background = await openCall(sim, server, NUMBER);
    const talking = background.ui.play(tone(440, 600_000, { amplitude: 0.2 }));
    await background.ear.nextFrame();
    const running = await measure('warm, clock running (another call talking)');
    background.ui.stopSpeaking();
    await talking;
    background.release();
    await background.ui.ended;

    const firstSays: number[] = [];
    for (let i = 0; i < calls; i++) {
      const call = await openCall(sim, server, NUMBER);
      await delay(20 + Math.random() * 40);
      firstSays.push(await timeSay(call.ui, call.ear, 'Hello.'));
      call.release();
      await call.ui.ended;
    }
    console.log(
      `${'first say of a call (opens the media path)'.padEnd(46)} ${describe(summarize(firstSays))}`,
    );
    main.release();
    await main.ui.ended;

    const c = summarize(cold);
    const w = summarize(warm);
    const r = summarize(running);
    const f = summarize(firstSays);
    console.log('');
    console.log(
      '| say → first RTP frame at the phone | cold p50 / p99 | warm p50 / p99 | warm, clock running p50 / p99 | first say of a call p50 / p99 | machine |',
    );
    console.log('|---|---|---|---|---|---|');
    console.log(
      `| offline TTS, ${msPerChar} ms/char, ${says} says | ${ms(c.p50)} / ${ms(c.p99)} | ${ms(w.p50)} / ${ms(w.p99)} | ` +
        `${ms(r.p50)} / ${ms(r.p99)} | ` +
        `${ms(f.p50)} / ${ms(f.p99)} (${calls} calls) | ${host} |`,
    );
  } finally {
    for (const ui of held.keys()) if (ui.active) void ui.hangup();
    await server.close();
    await sim.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

runBench(main);
