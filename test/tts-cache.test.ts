import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, SpeechEngineError } from '../src/errors.js';
import { encodeMulaw } from '../src/media/g711.js';
import {
  CachedTts,
  decodeCacheFile,
  encodeCacheFile,
  normalizeTtsText,
  type SynthesisInfo,
} from '../src/tts/tts-cache.js';
import type { SynthesizeOptions, TtsEngine } from '../src/tts/tts-engine.js';

/** A counting engine: `text` → one sample per character (value = char code), or a scripted failure. */
class CountingEngine implements TtsEngine {
  readonly name = 'counting';
  calls: { text: string; options: SynthesizeOptions }[] = [];
  failures = 0;
  /** When set, synthesize waits for it (to hold requests in flight). */
  gate: Promise<void> | undefined;
  /** Resolves on the next synthesize call. */
  private called: (() => void) | undefined;

  nextCall(): Promise<void> {
    return new Promise((resolve) => {
      this.called = resolve;
    });
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    this.calls.push({ text, options });
    this.called?.();
    if (this.gate) {
      const signal = options.signal;
      await new Promise<void>((resolve, reject) => {
        this.gate!.then(resolve);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    if (this.failures > 0) {
      this.failures--;
      throw new SpeechEngineError(this.name, 'scripted failure');
    }
    return Int16Array.from(text, (c) => c.charCodeAt(0));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'asteramisk-tts-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CachedTts in memory', () => {
  it('synthesizes a repeated prompt once', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    const a = await tts.speak('Hello');
    const b = await tts.speak('Hello');
    expect(engine.calls).toHaveLength(1);
    expect(b).toEqual(a);
    expect(tts.stats()).toMatchObject({ requests: 2, hits: 1, memoryHits: 1, misses: 1, synthCalls: 1 });
  });

  it('coalesces concurrent identical requests into one synthesis', async () => {
    const engine = new CountingEngine();
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    const first = tts.speak('Welcome to the demo');
    const second = tts.speak('Welcome   to the demo\n'); // same after whitespace normalization
    gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    expect(engine.calls).toHaveLength(1);
    expect(a).toEqual(b);
    expect(tts.stats()).toMatchObject({ synthCalls: 1, coalesced: 1, misses: 2 });
  });

  it('keys on engine, voice, language and text', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    await tts.speak('Hi', { voice: 'a' });
    await tts.speak('Hi', { voice: 'b' });
    await tts.speak('Hi', { voice: 'b', language: 'fr-FR' });
    await tts.speak('Hi', { voice: 'b', language: 'fr-FR' });
    expect(engine.calls.map((c) => c.options.voice)).toEqual(['a', 'b', 'b']);
    expect(engine.calls[2]!.options.language).toBe('fr-FR');
    expect(tts.cacheKey('Hi', { voice: 'a' })).toMatch(/^[0-9a-f]{64}$/);
    expect(tts.cacheKey('Hi', { voice: 'a' })).not.toBe(tts.cacheKey('Hi', { voice: 'b' }));
    const other = new CachedTts({ ...engine, name: 'other', synthesize: engine.synthesize.bind(engine) });
    expect(other.cacheKey('Hi', { voice: 'a' })).not.toBe(tts.cacheKey('Hi', { voice: 'a' }));
  });

  it('evicts least recently used entries beyond the byte cap', async () => {
    const engine = new CountingEngine();
    // Each 10-character prompt is 20 bytes; the cap holds two of them.
    const tts = new CachedTts(engine, { memoryBytes: 45 });
    await tts.speak('aaaaaaaaaa');
    await tts.speak('bbbbbbbbbb');
    await tts.speak('aaaaaaaaaa'); // hit: refreshes "a"
    await tts.speak('cccccccccc'); // evicts "b", the least recently used
    expect(tts.stats()).toMatchObject({ memoryEntries: 2, memoryBytes: 40 });
    await tts.speak('aaaaaaaaaa');
    expect(engine.calls).toHaveLength(3);
    await tts.speak('bbbbbbbbbb');
    expect(engine.calls.map((c) => c.text)).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc', 'bbbbbbbbbb']);
    expect(tts.stats().memoryBytes).toBeLessThanOrEqual(45);
  });

  it('does not keep utterances larger than the cap (0 disables the memory layer)', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine, { memoryBytes: 0 });
    await tts.speak('abc');
    await tts.speak('abc');
    expect(engine.calls).toHaveLength(2);
    expect(tts.stats()).toMatchObject({ memoryEntries: 0, memoryBytes: 0 });
  });

  it('does not cache errors: the next request tries again', async () => {
    const engine = new CountingEngine();
    engine.failures = 1;
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20, directory: dir });
    await expect(tts.speak('Oops')).rejects.toThrow(SpeechEngineError);
    expect(await tts.speak('Oops')).toEqual(Int16Array.from('Oops', (c) => c.charCodeAt(0)));
    expect(tts.stats()).toMatchObject({ synthCalls: 2, errors: 1 });
    await tts.flush();
  });

  it('gives every coalesced waiter the same error', async () => {
    const engine = new CountingEngine();
    engine.failures = 1;
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine);
    const both = Promise.allSettled([tts.speak('x'), tts.speak('x')]);
    gate.resolve();
    const results = await both;
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(engine.calls).toHaveLength(1);
  });

  it('returns copies, so a caller cannot corrupt the cache', async () => {
    const tts = new CachedTts(new CountingEngine());
    const a = await tts.speak('abc');
    a.fill(0);
    expect(await tts.speak('abc')).toEqual(Int16Array.from('abc', (c) => c.charCodeAt(0)));
  });

  it('answers blank text with silence and no engine call', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine);
    expect(await tts.speak('  \n ')).toHaveLength(0);
    expect(engine.calls).toHaveLength(0);
    expect(normalizeTtsText(' a \t b\n')).toBe('a b');
  });

  it('rejects a negative memory budget with ConfigError', () => {
    expect(() => new CachedTts(new CountingEngine(), { memoryBytes: -1 })).toThrow(ConfigError);
  });
});

describe('CachedTts µ-law', () => {
  /** PCM whose µ-law is not trivially 0xFF: the counting engine's char codes are tiny samples. */
  class LoudEngine extends CountingEngine {
    override async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
      const pcm = await super.synthesize(text, options);
      return pcm.map((v, i) => (i % 2 === 0 ? v * 200 : -v * 150));
    }
  }

  it('serves the µ-law of the same cached PCM, once encoded, from shared memory and without copying', async () => {
    const engine = new LoudEngine();
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    const ulaw = await tts.speakUlaw('Hello there');
    const pcm = await tts.speak('Hello there');
    expect(engine.calls).toHaveLength(1);
    expect(ulaw).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(ulaw)).toEqual(encodeMulaw(pcm));
    expect(ulaw.buffer).toBeInstanceOf(SharedArrayBuffer);
    const again = await tts.speakUlaw('Hello   there'); // same prompt once normalized
    expect(again).toBe(ulaw);
    expect(again.buffer).toBe(ulaw.buffer);
    expect(engine.calls).toHaveLength(1);
    expect(tts.stats()).toMatchObject({ requests: 3, hits: 2, memoryHits: 2, misses: 1, synthCalls: 1 });
  });

  it('keys µ-law like speak: another voice is another prompt', async () => {
    const engine = new LoudEngine();
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    const a = await tts.speakUlaw('Hi', { voice: 'a' });
    const b = await tts.speakUlaw('Hi', { voice: 'b' });
    expect(b).not.toBe(a);
    expect(engine.calls.map((c) => c.options.voice)).toEqual(['a', 'b']);
  });

  it('counts µ-law bytes in the memory budget and evicts them with their PCM', async () => {
    const engine = new LoudEngine();
    // A 10-character prompt is 20 bytes of PCM plus 10 of µ-law; the cap holds 100.
    const tts = new CachedTts(engine, { memoryBytes: 100 });
    await tts.speak('aaaaaaaaaa');
    expect(tts.stats()).toMatchObject({ memoryEntries: 1, memoryBytes: 20 });
    const a = await tts.speakUlaw('aaaaaaaaaa');
    expect(tts.stats()).toMatchObject({ memoryEntries: 1, memoryBytes: 30 });
    await tts.speakUlaw('bbbbbbbbbb');
    await tts.speakUlaw('cccccccccc');
    expect(tts.stats()).toMatchObject({ memoryEntries: 3, memoryBytes: 90 });
    // 20 more bytes of PCM: over the cap, so "a" (least recently used) goes, PCM and µ-law together.
    await tts.speak('dddddddddd');
    expect(tts.stats()).toMatchObject({ memoryEntries: 3, memoryBytes: 80 });
    // µ-law for "d" too: 90, within the cap.
    await tts.speakUlaw('dddddddddd');
    expect(tts.stats()).toMatchObject({ memoryEntries: 3, memoryBytes: 90 });
    expect(engine.calls).toHaveLength(4);
    const again = await tts.speakUlaw('aaaaaaaaaa');
    expect(engine.calls).toHaveLength(5);
    expect(again).not.toBe(a);
    expect(again).toEqual(a);
    // "a" back in (30 bytes) pushed out "b" (30 bytes): still 90.
    expect(tts.stats()).toMatchObject({ memoryEntries: 3, memoryBytes: 90 });
    await tts.speak('bbbbbbbbbb');
    expect(engine.calls).toHaveLength(6);
    tts.clearMemory();
    expect(tts.stats()).toMatchObject({ memoryEntries: 0, memoryBytes: 0 });
  });

  it('adding µ-law evicts older entries rather than going over the budget', async () => {
    const engine = new LoudEngine();
    const tts = new CachedTts(engine, { memoryBytes: 45 });
    await tts.speak('aaaaaaaaaa');
    await tts.speak('bbbbbbbbbb');
    expect(tts.stats()).toMatchObject({ memoryEntries: 2, memoryBytes: 40 });
    await tts.speakUlaw('bbbbbbbbbb'); // 50 > 45: "a" goes
    expect(tts.stats()).toMatchObject({ memoryEntries: 1, memoryBytes: 30 });
    await tts.speakUlaw('bbbbbbbbbb');
    await tts.speak('aaaaaaaaaa');
    expect(engine.calls.map((c) => c.text)).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb', 'aaaaaaaaaa']);
  });

  it('encodes without caching when PCM plus µ-law do not fit, or the memory layer is off', async () => {
    const engine = new LoudEngine();
    const tight = new CachedTts(engine, { memoryBytes: 25 }); // 20 bytes of PCM fit, 30 do not
    const first = await tight.speakUlaw('aaaaaaaaaa');
    const second = await tight.speakUlaw('aaaaaaaaaa');
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    expect(second.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(engine.calls).toHaveLength(1); // the PCM is still cached
    expect(tight.stats()).toMatchObject({ memoryEntries: 1, memoryBytes: 20 });

    const off = new CachedTts(engine, { memoryBytes: 0 });
    expect(Buffer.from(await off.speakUlaw('abc'))).toEqual(encodeMulaw(await off.speak('abc')));
    expect(off.stats()).toMatchObject({ memoryEntries: 0, memoryBytes: 0 });
  });

  it('coalesces speak and speakUlaw of one prompt into one synthesis; waiters share the µ-law', async () => {
    const engine = new LoudEngine();
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine, { memoryBytes: 1 << 20 });
    const called = engine.nextCall();
    const all = Promise.all([tts.speakUlaw('Welcome'), tts.speak('Welcome'), tts.speakUlaw('Welcome')]);
    await called;
    gate.resolve();
    const [u1, pcm, u2] = await all;
    expect(engine.calls).toHaveLength(1);
    expect(u2).toBe(u1);
    expect(Buffer.from(u1)).toEqual(encodeMulaw(pcm));
    expect(tts.stats()).toMatchObject({ requests: 3, coalesced: 2, misses: 3, synthCalls: 1 });
  });

  it('answers blank text with an empty array, rejects an aborted signal, and does not cache errors', async () => {
    const engine = new LoudEngine();
    const tts = new CachedTts(engine);
    const empty = await tts.speakUlaw(' \n ');
    expect(empty).toBeInstanceOf(Uint8Array);
    expect(empty).toHaveLength(0);
    const controller = new AbortController();
    controller.abort(new Error('caller hung up'));
    await expect(tts.speakUlaw('x', { signal: controller.signal })).rejects.toThrow('caller hung up');
    engine.failures = 1;
    await expect(tts.speakUlaw('Oops')).rejects.toThrow(SpeechEngineError);
    expect(await tts.speakUlaw('Oops')).toHaveLength(4);
    expect(engine.calls.map((c) => c.text)).toEqual(['Oops', 'Oops']);
  });

  it('cancels the synthesis when its only µ-law waiter aborts', async () => {
    const engine = new LoudEngine();
    engine.gate = new Promise(() => {});
    const tts = new CachedTts(engine);
    const controller = new AbortController();
    const called = engine.nextCall();
    const pending = tts.speakUlaw('never', { signal: controller.signal });
    await called;
    controller.abort(new Error('gone'));
    await expect(pending).rejects.toThrow('gone');
    await tts.flush();
    expect(tts.stats()).toMatchObject({ memoryEntries: 0, errors: 0 });
  });

  it('keeps PCM on disk: a restart serves the same µ-law from the WAV file', async () => {
    const engine = new LoudEngine();
    const first = new CachedTts(engine, { memoryBytes: 1 << 20, directory: dir });
    const ulaw = await first.speakUlaw('Please hold');
    await first.flush();
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    const pcm = decodeCacheFile(await readFile(join(dir, files[0]!)));
    expect(pcm).toBeDefined();
    expect(Buffer.from(ulaw)).toEqual(encodeMulaw(pcm!));

    const second = new CachedTts(engine, { memoryBytes: 1 << 20, directory: dir });
    const fromDisk = await second.speakUlaw('Please hold');
    expect(fromDisk).toEqual(ulaw);
    expect(await second.speakUlaw('Please hold')).toBe(fromDisk);
    expect(engine.calls).toHaveLength(1);
    expect(second.stats()).toMatchObject({
      diskHits: 1,
      memoryHits: 1,
      memoryBytes: 3 * 'Please hold'.length,
    });
    await second.flush();
  });
});

describe('CachedTts synthesis time', () => {
  /** The counting engine, 30 ms slower per call. */
  class SlowEngine extends CountingEngine {
    override async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return super.synthesize(text, options);
    }
  }

  it('sums engine time in stats and tells observers once per engine call, never for hits', async () => {
    const engine = new SlowEngine();
    const tts = new CachedTts(engine);
    const seen: SynthesisInfo[] = [];
    const off = tts.observeSyntheses((info) => seen.push(info));
    expect(tts.stats().synthSeconds).toBe(0);
    await tts.speak('Hello   there');
    await tts.speak('Hello there'); // memory hit: no engine call, no observation
    expect(seen).toEqual([{ seconds: expect.any(Number), outcome: 'ok', characters: 11 }]);
    expect(seen[0]!.seconds).toBeGreaterThanOrEqual(0.025);
    expect(seen[0]!.seconds).toBeLessThan(5);

    engine.failures = 1;
    await expect(tts.speak('Oops')).rejects.toThrow(SpeechEngineError);
    expect(seen.map((s) => s.outcome)).toEqual(['ok', 'error']);
    const stats = tts.stats();
    expect(stats).toMatchObject({ synthCalls: 2, errors: 1 });
    expect(stats.synthSeconds).toBeCloseTo(seen[0]!.seconds + seen[1]!.seconds, 9);

    off();
    await tts.speak('After');
    expect(seen).toHaveLength(2);
    expect(tts.stats().synthSeconds).toBeGreaterThan(stats.synthSeconds);
  });

  it('reports a cancelled synthesis as aborted, and survives a throwing observer', async () => {
    const engine = new CountingEngine();
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine);
    const seen: SynthesisInfo[] = [];
    tts.observeSyntheses(() => {
      throw new Error('observer bug');
    });
    tts.observeSyntheses((info) => seen.push(info));
    const controller = new AbortController();
    const called = engine.nextCall();
    const aborted = tts.speak('alone', { signal: controller.signal });
    await called;
    controller.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    await tts.flush();
    expect(seen.map((s) => s.outcome)).toEqual(['aborted']);
    expect(tts.stats().errors).toBe(0);
    gate.resolve();
    expect(await tts.speak('alone')).toHaveLength(5);
    expect(seen.map((s) => s.outcome)).toEqual(['aborted', 'ok']);
  });
});

describe('CachedTts aborts', () => {
  it('an aborted waiter rejects with its reason while another still gets the audio', async () => {
    const engine = new CountingEngine();
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine);
    const controller = new AbortController();
    const called = engine.nextCall();
    const aborted = tts.speak('shared', { signal: controller.signal });
    const kept = tts.speak('shared');
    await called;
    controller.abort(new Error('caller hung up'));
    await expect(aborted).rejects.toThrow('caller hung up');
    expect(engine.calls[0]!.options.signal?.aborted).toBe(false);
    gate.resolve();
    expect(await kept).toHaveLength(6);
    expect(engine.calls).toHaveLength(1);
  });

  it('cancels the synthesis when its only waiter aborts, and does not cache it', async () => {
    const engine = new CountingEngine();
    const gate = deferred();
    engine.gate = gate.promise;
    const tts = new CachedTts(engine);
    const controller = new AbortController();
    const called = engine.nextCall();
    const aborted = tts.speak('alone', { signal: controller.signal });
    await called;
    controller.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(engine.calls[0]!.options.signal?.aborted).toBe(true);
    gate.resolve();
    expect(await tts.speak('alone')).toHaveLength(5);
    expect(engine.calls).toHaveLength(2);
    expect(tts.stats().errors).toBe(0);
  });

  it('rejects at once with an already aborted signal', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine);
    await expect(tts.speak('x', { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early');
    expect(engine.calls).toHaveLength(0);
  });
});

describe('CachedTts on disk', () => {
  it('survives a restart: a new instance on the same folder does not synthesize again', async () => {
    const engine = new CountingEngine();
    const first = new CachedTts(engine, { memoryBytes: 1 << 20, directory: dir });
    const audio = await first.speak('Please hold', { voice: 'alloy' });
    await first.flush();
    const files = await readdir(dir);
    expect(files).toEqual([`${first.cacheKey('Please hold', { voice: 'alloy' })}.wav`]);
    expect((await readFile(join(dir, files[0]!))).toString('ascii', 0, 4)).toBe('RIFF');

    const second = new CachedTts(engine, { memoryBytes: 1 << 20, directory: dir });
    expect(await second.speak('Please hold', { voice: 'alloy' })).toEqual(audio);
    expect(engine.calls).toHaveLength(1);
    expect(second.stats()).toMatchObject({ hits: 1, diskHits: 1, misses: 0, synthCalls: 0 });
    // Now in memory too.
    await second.speak('Please hold', { voice: 'alloy' });
    expect(second.stats().memoryHits).toBe(1);
  });

  it('serves from disk with the memory layer off, while the write is still in flight', async () => {
    const engine = new CountingEngine();
    const tts = new CachedTts(engine, { memoryBytes: 0, directory: join(dir, 'nested', 'folder') });
    await Promise.all([tts.speak('one'), tts.speak('one')]);
    await tts.speak('one');
    await tts.flush();
    await tts.speak('one');
    expect(engine.calls).toHaveLength(1);
  });

  it('ignores a truncated file and synthesizes again, replacing it', async () => {
    const engine = new CountingEngine();
    const first = new CachedTts(engine, { directory: dir });
    await first.speak('Truncate me please');
    await first.flush();
    const path = first.filePath(first.cacheKey('Truncate me please'))!;
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 20));

    const second = new CachedTts(engine, { directory: dir });
    expect(await second.speak('Truncate me please')).toHaveLength(18);
    expect(engine.calls).toHaveLength(2);
    expect(second.stats()).toMatchObject({ corruptFiles: 1, synthCalls: 1 });
    await second.flush();

    const third = new CachedTts(engine, { directory: dir });
    await third.speak('Truncate me please');
    expect(engine.calls).toHaveLength(2);
    expect(third.stats().diskHits).toBe(1);
  });

  it('ignores a file whose samples were altered (checksum) or that is not a WAV', async () => {
    const engine = new CountingEngine();
    const first = new CachedTts(engine, { directory: dir });
    await first.speak('flip');
    await first.speak('garbage');
    await first.flush();
    const flipPath = first.filePath(first.cacheKey('flip'))!;
    const bytes = await readFile(flipPath);
    bytes[45] = bytes[45]! ^ 0xff;
    await writeFile(flipPath, bytes);
    await writeFile(first.filePath(first.cacheKey('garbage'))!, 'not audio at all');

    const second = new CachedTts(engine, { directory: dir });
    expect(await second.speak('flip')).toEqual(Int16Array.from('flip', (c) => c.charCodeAt(0)));
    await second.speak('garbage');
    expect(engine.calls).toHaveLength(4);
    expect(second.stats().corruptFiles).toBe(2);
    // The new audio replaced both files (and the writes are done before the folder is removed).
    await second.flush();
    const third = new CachedTts(engine, { directory: dir });
    await third.speak('flip');
    await third.speak('garbage');
    expect(engine.calls).toHaveLength(4);
    expect(third.stats()).toMatchObject({ diskHits: 2, corruptFiles: 0 });
  });

  it('still returns audio when the folder cannot be written', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, 'x');
    const tts = new CachedTts(new CountingEngine(), { directory: join(blocker, 'sub') });
    expect(await tts.speak('hello')).toHaveLength(5);
    await tts.flush();
    expect(tts.stats().diskWriteErrors).toBe(1);
  });

  it('leaves no temporary files behind', async () => {
    const tts = new CachedTts(new CountingEngine(), { directory: dir });
    await Promise.all(['a', 'b', 'c', 'a'].map((t) => tts.speak(t)));
    await tts.flush();
    const files = await readdir(dir);
    expect(files).toHaveLength(3);
    expect(files.every((f) => f.endsWith('.wav') && !f.startsWith('.'))).toBe(true);
  });

  it('encodes cache files as 8 kHz mono WAV with a checksum chunk', () => {
    const pcm = new Int16Array([1, -2, 3, 32767]);
    const file = encodeCacheFile(pcm);
    expect(file.readUInt32LE(24)).toBe(8000);
    expect(file.toString('ascii', 36, 40)).toBe('data');
    expect(file.toString('ascii', 52, 56)).toBe('asum');
    expect(decodeCacheFile(file)).toEqual(pcm);
    expect(decodeCacheFile(file.subarray(0, file.length - 1))).toBeUndefined();
  });
});
