/**
 * Rough timings of the TTS layer on this machine: `npx tsx bench/tts-cache.ts`.
 * Measures a miss (offline engine), a memory hit, a disk hit after a "restart", and the 24 kHz → 8 kHz
 * resampler. No network; writes only to a temporary folder it removes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resamplePcm16 } from '../src/media/resample.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import { CachedTts } from '../src/tts/tts-cache.js';

async function time(
  label: string,
  runs: number,
  fn: (i: number) => Promise<unknown> | unknown,
): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < runs; i++) await fn(i);
  const each = (performance.now() - start) / runs;
  console.log(`${label.padEnd(44)} ${each.toFixed(3).padStart(9)} ms/op  (${runs} runs)`);
}

const prompts = Array.from({ length: 200 }, (_, i) => `Thank you for calling. Your ticket number is ${i}.`);
const dir = await mkdtemp(join(tmpdir(), 'asteramisk-bench-'));
try {
  const engine = new OfflineTtsEngine();
  const first = new CachedTts(engine, { directory: dir });
  await time('miss (offline synth + disk write)', prompts.length, (i) => first.speak(prompts[i]!));
  await first.flush();
  await time('memory hit', prompts.length * 10, (i) => first.speak(prompts[i % prompts.length]!));
  const restarted = new CachedTts(engine, { directory: dir });
  await time('disk hit (new instance, same folder)', prompts.length, (i) => restarted.speak(prompts[i]!));
  const concurrent = new CachedTts(engine);
  await time('100 concurrent identical requests', 20, async (i) => {
    await Promise.all(Array.from({ length: 100 }, () => concurrent.speak(`concurrent ${i}`)));
  });
  console.log('stats after the restart:', restarted.stats());

  const tenSeconds = new Int16Array(240_000).map((_, n) =>
    Math.round(10_000 * Math.sin((2 * Math.PI * 440 * n) / 24_000)),
  );
  await time('resample 10 s 24 kHz → 8 kHz', 20, () => resamplePcm16(tenSeconds, 24_000, 8000));
} finally {
  await rm(dir, { recursive: true, force: true });
}
